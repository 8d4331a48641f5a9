-- The public page's search (registry/publish/page.py) reads public items two ways: it
-- gathers the items of the subjects it finds (``_gathered``: per subject, its items in
-- publication today below a log index), or walks the newest items and keeps those whose
-- subject it finds (``_walked``). Through the general indexes both visit the heap for
-- every item only to read its state and days: about 14 µs an item when gathering (16 ms
-- for a term of 1,100 subjects at 100,000) and 2 µs when walking (6 ms of a 2,700-item
-- window). These indexes hold exactly what those steps read, for the items in the
-- disclosed state only (the predicate is the state part of ``Publication.shown_sql``,
-- registry/domain/disclosure.py; tests/test_search.py checks that the two agree), so
-- both become index-only scans of the public items. The blacklist is walked rarely and
-- is small: only its gathering has one.
CREATE INDEX credit_records_public_by_subject ON credit_records (subject_id)
    INCLUDE (log_index, id, publicity_start, publicity_end)
    WHERE status = 'published' AND published;
CREATE INDEX credit_records_public_by_log_index ON credit_records (log_index)
    INCLUDE (id, subject_id, publicity_start, publicity_end)
    WHERE status = 'published' AND published;
CREATE INDEX blacklist_listed_by_subject ON blacklist_entries (subject_id)
    INCLUDE (log_index, id, listed_on, planned_removal_on)
    WHERE state = 'listed';
