-- Cache warm-up at start (RecentIdentities): the unarchived keys that have
-- been used, most recently used first, read straight off this index
-- backwards, so the read stays fast with a million keys (and keys never used
-- cost the index nothing).
CREATE INDEX api_keys_recent ON api_keys(last_used_at, seq) WHERE archived_at IS NULL AND last_used_at IS NOT NULL;
