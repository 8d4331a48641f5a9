-- Public disclosure (registry/publish/): the feed, the web page and the exports
-- walk public items newest version first, keyset on the version's audit-log index.
CREATE INDEX credit_records_by_log_index ON credit_records (log_index DESC);
CREATE INDEX blacklist_by_log_index ON blacklist_entries (log_index DESC);
