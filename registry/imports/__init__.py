"""Importing administrative-penalty records from a 双公示 template file (``registry import``).

Who does what:

- ``template``: reads a CSV, XLSX or JSONL file into rows keyed by the template's
  column names (or, for JSONL, the API's field names); a file it cannot read, or a
  header that is not the template's, stops the import before anything is checked.
- ``rows``: turns one row into the values of ``POST /v1/records`` (``RecordIn``) and
  the subject it is about, or a list of problems; pure, and it states no rule of its
  own: the record rules are ``credit.records.normalise`` and ``in_the_name_of``.
- ``lookups``: what the import asks the database, one statement per batch each.
- ``runner``: reads in batches, checks every row, skips the rows already recorded,
  writes the rest through ``credit.record_batch.create_records`` (the rules of
  ``create_record``, one leaf each, a few statements a batch), one transaction per
  batch, and waits for the checkpoint that signs them.
- ``jobs``: the same import as a background job of the service (``POST /v1/imports``),
  the file kept in the database until the job ends, so another server can take it up.
- ``problems``: what can be wrong with the whole file or with one row, in Chinese
  and English; ``report``: the refused rows as a CSV for people.

Nothing here writes records except through the use cases (``subjects.register``,
``record_batch.create_records``, ``records.create_record``), so an imported record is the
record the API would have made from the same values, with the same leaf.
"""
