-- Cache warm-up at start (RecentIdentities): the unarchived keys, most
-- recently used first, then never-used ones newest first, read straight off
-- this index, so the read stays fast with a million keys.
CREATE INDEX api_keys_recent ON api_keys(last_used_at DESC NULLS LAST, seq DESC) WHERE archived_at IS NULL;
