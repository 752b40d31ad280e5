-- The webhook outbox (SPEC §13): one row per event and endpoint, written in
-- the transaction of the change that caused it.
CREATE TABLE webhook_deliveries (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	id           TEXT NOT NULL UNIQUE,   -- webhook-id, the same on every attempt
	endpoint     TEXT NOT NULL,          -- the endpoint's URL
	type         TEXT NOT NULL,
	payload      TEXT NOT NULL,          -- the body sent
	created_at   INTEGER NOT NULL,       -- unix seconds
	status       TEXT NOT NULL DEFAULT 'pending',
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_at      INTEGER NOT NULL,       -- unix ms
	lease_until  INTEGER NOT NULL DEFAULT 0, -- unix ms; a sender holds the row until then
	last_error   TEXT NOT NULL DEFAULT '',
	delivered_at INTEGER
);
-- Due pending rows, for the senders (a partial index stays small).
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_status ON webhook_deliveries(status, seq);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint, seq);

-- Durable progress of the expiry scheduler: per notice, every key expiring
-- up to this time has had its event.
CREATE TABLE webhook_marks (
	name TEXT PRIMARY KEY,
	at   INTEGER NOT NULL
);

-- The expiry scheduler finds the next due key on this index instead of
-- walking every key.
CREATE INDEX api_keys_expires ON api_keys(expires_at) WHERE expires_at IS NOT NULL AND archived_at IS NULL;
