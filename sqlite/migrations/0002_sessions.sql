-- Portal links and the sessions of the dashboard and the portal, stored by
-- token hash so that they work on every node and survive restarts.
CREATE TABLE portal_links (
	hash       BLOB PRIMARY KEY, -- SHA-256 of the link token
	user_id    TEXT NOT NULL,
	org_id     TEXT NOT NULL DEFAULT '',
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX portal_links_expires ON portal_links(expires_at);

CREATE TABLE sessions (
	hash       BLOB PRIMARY KEY, -- SHA-256 of the session token
	kind       TEXT NOT NULL,    -- dashboard or portal
	user_id    TEXT NOT NULL DEFAULT '',
	org_id     TEXT NOT NULL DEFAULT '',
	csrf       TEXT NOT NULL,
	flash      TEXT NOT NULL DEFAULT '',
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_expires ON sessions(expires_at);

-- One row that Ping rewrites to prove that writes commit.
CREATE TABLE health (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	at INTEGER NOT NULL
);
