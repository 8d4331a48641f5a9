"""Credit records, the serious-dishonesty list, objections and credit repair (use cases).

Each module validates, applies the pure rules of ``registry.domain`` and writes
through ``audited_write``. Audited tables (object type → table):
``credit_record`` → credit_records, ``blacklist_entry`` → blacklist_entries,
``objection`` → objections, ``repair`` → repairs.
"""
