"""The JSON bodies of the API as msgspec Structs: what a request may hold (their
constraints are the first check of every write) and what an answer holds.

Below the routes (registry/api) on purpose: the importer (registry/imports) builds the
same request bodies from a file's rows, and the bureau views extend the record's items,
without reaching up into the HTTP layer.
"""
