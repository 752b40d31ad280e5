-- keygate's schema on Postgres: the same tables and meanings as SQLite's
-- (sqlite/migrations), in Postgres types. Ids compare in byte order
-- (COLLATE "C"), as SQLite's do, so that list cursors agree.

CREATE TABLE users (
	id           TEXT COLLATE "C" PRIMARY KEY,
	email        TEXT NOT NULL DEFAULT '',
	enabled      BOOLEAN NOT NULL DEFAULT TRUE,
	metadata     TEXT NOT NULL DEFAULT '{}',
	rl_limit     BIGINT,           -- NULL: no override
	rl_window_ms BIGINT,
	created_at   BIGINT NOT NULL,
	updated_at   BIGINT NOT NULL
);

CREATE TABLE orgs (
	id           TEXT COLLATE "C" PRIMARY KEY,
	name         TEXT NOT NULL DEFAULT '',
	metadata     TEXT NOT NULL DEFAULT '{}',
	rl_limit     BIGINT,
	rl_window_ms BIGINT,
	created_at   BIGINT NOT NULL,
	updated_at   BIGINT NOT NULL
);

CREATE TABLE memberships (
	org_id     TEXT COLLATE "C" NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	user_id    TEXT COLLATE "C" NOT NULL REFERENCES users(id),
	role       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

-- Keys outlive their owners (archived, for history), so owner ids are plain text.
CREATE TABLE api_keys (
	seq          BIGSERIAL PRIMARY KEY,             -- cursor order
	id           TEXT COLLATE "C" NOT NULL UNIQUE,
	hash         BYTEA NOT NULL UNIQUE,             -- SHA-256 of the token
	type         SMALLINT NOT NULL,
	user_id      TEXT COLLATE "C" NOT NULL DEFAULT '',
	org_id       TEXT COLLATE "C" NOT NULL DEFAULT '',
	display_name TEXT NOT NULL DEFAULT '',
	display      TEXT NOT NULL,
	metadata     TEXT NOT NULL DEFAULT '{}',
	imported     BOOLEAN NOT NULL DEFAULT FALSE,
	created_at   BIGINT NOT NULL,
	expires_at   BIGINT,
	archived_at  BIGINT,
	last_used_at BIGINT
);
CREATE INDEX api_keys_user ON api_keys(user_id, seq);
CREATE INDEX api_keys_org ON api_keys(org_id, seq);
CREATE INDEX api_keys_imported ON api_keys(imported) WHERE imported;

CREATE TABLE usage_minute (
	key_id       TEXT COLLATE "C" NOT NULL,
	t            BIGINT NOT NULL, -- unix seconds, start of the minute
	allowed      BIGINT NOT NULL DEFAULT 0,
	rate_limited BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (key_id, t)
);
CREATE INDEX usage_minute_t ON usage_minute(t);

CREATE TABLE usage_hour (
	key_id       TEXT COLLATE "C" NOT NULL,
	t            BIGINT NOT NULL, -- unix seconds, start of the hour
	allowed      BIGINT NOT NULL DEFAULT 0,
	rate_limited BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (key_id, t)
);
CREATE INDEX usage_hour_t ON usage_hour(t);

CREATE TABLE audit_events (
	id      BIGSERIAL PRIMARY KEY,
	at      BIGINT NOT NULL,
	action  TEXT NOT NULL,
	actor   TEXT NOT NULL,
	key_id  TEXT COLLATE "C" NOT NULL DEFAULT '',
	user_id TEXT COLLATE "C" NOT NULL DEFAULT '',
	org_id  TEXT COLLATE "C" NOT NULL DEFAULT '',
	details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_key ON audit_events(key_id, id);
CREATE INDEX audit_user ON audit_events(user_id, id);
CREATE INDEX audit_org ON audit_events(org_id, id);
CREATE INDEX audit_action ON audit_events(action, id);

-- Links and sessions are kept by the SHA-256 of their token only.
CREATE TABLE portal_links (
	hash       BYTEA PRIMARY KEY,
	user_id    TEXT NOT NULL,
	org_id     TEXT NOT NULL DEFAULT '',
	expires_at BIGINT NOT NULL
);

CREATE TABLE sessions (
	hash       BYTEA PRIMARY KEY,
	kind       TEXT NOT NULL,
	user_id    TEXT NOT NULL DEFAULT '',
	org_id     TEXT NOT NULL DEFAULT '',
	csrf       TEXT NOT NULL,
	flash      TEXT NOT NULL DEFAULT '',
	expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions(expires_at);

-- The audit log is append-only: the database itself refuses to change it.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_events is append-only';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
	FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
