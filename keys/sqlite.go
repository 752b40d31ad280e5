package keys

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// SQLite is the Store on SQLite. Writes go through one connection in
// immediate transactions, so writers queue instead of failing with
// "database is locked"; reads use a separate pool and, thanks to WAL, never
// wait for writers. Safe for concurrent use.
type SQLite struct {
	path string
	wdb  *sql.DB // one connection, BEGIN IMMEDIATE
	rdb  *sql.DB // read-only pool

	lookupStmt *sql.Stmt // lookupQuery on rdb: the cache-miss path
}

// OpenSQLite opens (creating if needed) the database at path and applies
// pending migrations.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if path == "" {
		return nil, fmt.Errorf("open sqlite: empty path")
	}
	// Pragmas go in the DSN so that go-sqlite3 sets them on every new
	// connection, not only on the first one.
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_cache_size", "-4000") // 4 MB page cache per connection (4 readers): RSS stays bounded; the OS caches the rest
	wq := url.Values{}
	for k, v := range q {
		wq[k] = v
	}
	wq.Set("_txlock", "immediate")
	rq := url.Values{}
	for k, v := range q {
		rq[k] = v
	}
	rq.Set("mode", "ro")
	s := &SQLite{path: path}
	var err error
	if s.wdb, err = sql.Open("sqlite3", "file:"+path+"?"+wq.Encode()); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetMaxIdleConns(1)
	if err := s.migrate(ctx); err != nil {
		s.wdb.Close()
		return nil, err
	}
	if s.rdb, err = sql.Open("sqlite3", "file:"+path+"?"+rq.Encode()); err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s.rdb.SetMaxOpenConns(4)
	s.rdb.SetMaxIdleConns(4)
	s.rdb.SetConnMaxLifetime(0)
	if s.lookupStmt, err = s.rdb.PrepareContext(ctx, lookupQuery); err != nil {
		s.Close()
		return nil, fmt.Errorf("prepare key lookup: %w", err)
	}
	return s, nil
}

// Close closes both pools.
func (s *SQLite) Close() error {
	if s.lookupStmt != nil {
		s.lookupStmt.Close()
	}
	err1 := s.rdb.Close()
	err2 := s.wdb.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

// Ping checks that the database answers.
func (s *SQLite) Ping(ctx context.Context) error { return s.rdb.PingContext(ctx) }

// migrate applies each embedded migration not yet recorded, each in its own
// transaction together with its record.
func (s *SQLite) migrate(ctx context.Context) error {
	if _, err := s.wdb.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := s.writeTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			body, err := fs.ReadFile(migrationFS, name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, strftime('%s','now'))`, name)
			return err
		}); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

// writeTx runs fn in an immediate transaction on the write connection.
func (s *SQLite) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// placeholders returns "?,?,…" with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
