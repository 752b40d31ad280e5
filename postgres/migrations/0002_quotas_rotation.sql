-- Quotas (SPEC §12): an owner's own quota (NULL: the key type's) and the
-- use counted per owner and period; rotation (SPEC §11): links between a
-- rolled key and its successor. As sqlite/migrations/0003.
ALTER TABLE users ADD COLUMN q_limit BIGINT, ADD COLUMN q_period BIGINT;
ALTER TABLE orgs ADD COLUMN q_limit BIGINT, ADD COLUMN q_period BIGINT;
ALTER TABLE api_keys ADD COLUMN q_limit BIGINT, ADD COLUMN q_period BIGINT,
	ADD COLUMN rolled_from TEXT COLLATE "C", ADD COLUMN rolled_to TEXT COLLATE "C";

-- period: 1 day, 2 month, 3 total; start: the period's first second (0 for total).
CREATE TABLE quota_usage (
	owner  TEXT COLLATE "C" NOT NULL,
	period BIGINT NOT NULL,
	start  BIGINT NOT NULL,
	used   BIGINT NOT NULL,
	PRIMARY KEY (owner, period, start)
);
