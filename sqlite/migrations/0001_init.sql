CREATE TABLE users (
	id         TEXT PRIMARY KEY,
	email      TEXT NOT NULL DEFAULT '',
	enabled    INTEGER NOT NULL DEFAULT 1,
	metadata   TEXT NOT NULL DEFAULT '{}',
	rl_limit   INTEGER,          -- NULL: no override
	rl_window_ms INTEGER,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE TABLE orgs (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL DEFAULT '',
	metadata   TEXT NOT NULL DEFAULT '{}',
	rl_limit   INTEGER,
	rl_window_ms INTEGER,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE TABLE memberships (
	org_id     TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	role       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

-- Keys outlive their owners (archived, for history), so owner ids are plain text.
CREATE TABLE api_keys (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT, -- cursor order
	id           TEXT NOT NULL UNIQUE,
	hash         BLOB NOT NULL UNIQUE,              -- SHA-256 of the token
	type         INTEGER NOT NULL,
	user_id      TEXT NOT NULL DEFAULT '',
	org_id       TEXT NOT NULL DEFAULT '',
	display_name TEXT NOT NULL DEFAULT '',
	display      TEXT NOT NULL,
	metadata     TEXT NOT NULL DEFAULT '{}',
	imported     INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER,
	archived_at  INTEGER,
	last_used_at INTEGER
);
CREATE INDEX api_keys_user ON api_keys(user_id, seq);
CREATE INDEX api_keys_org ON api_keys(org_id, seq);

CREATE TABLE usage_minute (
	key_id       TEXT NOT NULL,
	t            INTEGER NOT NULL, -- unix seconds, start of the minute
	allowed      INTEGER NOT NULL DEFAULT 0,
	rate_limited INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (key_id, t)
) WITHOUT ROWID;
CREATE INDEX usage_minute_t ON usage_minute(t);

CREATE TABLE usage_hour (
	key_id       TEXT NOT NULL,
	t            INTEGER NOT NULL, -- unix seconds, start of the hour
	allowed      INTEGER NOT NULL DEFAULT 0,
	rate_limited INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (key_id, t)
) WITHOUT ROWID;
CREATE INDEX usage_hour_t ON usage_hour(t);

CREATE TABLE audit_events (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	at      INTEGER NOT NULL,
	action  TEXT NOT NULL,
	actor   TEXT NOT NULL,
	key_id  TEXT NOT NULL DEFAULT '',
	user_id TEXT NOT NULL DEFAULT '',
	org_id  TEXT NOT NULL DEFAULT '',
	details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_key ON audit_events(key_id, id);
CREATE INDEX audit_user ON audit_events(user_id, id);
CREATE INDEX audit_org ON audit_events(org_id, id);
