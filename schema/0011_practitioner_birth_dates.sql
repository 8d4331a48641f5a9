-- A practitioner's birth date, for documents whose number does not carry one (passports,
-- travel permits, `other`, the old foreign permanent-residence card): without it nobody
-- could tell whether the holder is a minor, and nothing about a minor may be disclosed
-- (registry/domain/disclosure.py). Personal data: stored only encrypted, like the number
-- (registry/pii.py, its own associated data so the two blobs cannot be swapped). NULL when
-- the number carries the birth date (GB 11643 layouts) and for rows from before this
-- migration. Left out of a subject's audited body while NULL (registry/tlog/leaf.py
-- LATE_COLUMNS), so those rows still match their audited versions.
ALTER TABLE subjects ADD COLUMN birth_date_cipher bytea;
