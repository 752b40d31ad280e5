-- Quotas (SPEC §12): an owner's own quota (NULL: the key type's) and the
-- use counted per owner and period; rotation (SPEC §11): links between a
-- rolled key and its successor.
ALTER TABLE users ADD COLUMN q_limit INTEGER;
ALTER TABLE users ADD COLUMN q_period INTEGER;
ALTER TABLE orgs ADD COLUMN q_limit INTEGER;
ALTER TABLE orgs ADD COLUMN q_period INTEGER;
ALTER TABLE api_keys ADD COLUMN q_limit INTEGER;
ALTER TABLE api_keys ADD COLUMN q_period INTEGER;
ALTER TABLE api_keys ADD COLUMN rolled_from TEXT;
ALTER TABLE api_keys ADD COLUMN rolled_to TEXT;

-- period: 1 day, 2 month, 3 total; start: the period's first second (0 for total).
CREATE TABLE quota_usage (
	owner  TEXT NOT NULL,
	period INTEGER NOT NULL,
	start  INTEGER NOT NULL,
	used   INTEGER NOT NULL,
	PRIMARY KEY (owner, period, start)
) WITHOUT ROWID;
