// Package sqlite is keygate's store on SQLite: the single-node
// implementation of keys.Store.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/mattn/go-sqlite3" // also registers the "sqlite3" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Options configure a Store. The zero value is usable.
type Options struct {
	// BusyTimeout is how long a write waits for a lock held by another
	// connection or process before it fails; 0 means 10s.
	BusyTimeout time.Duration
	// Logger receives failed writes; nil discards them.
	Logger *slog.Logger
}

// Store is keys.Store on SQLite. Writes go through one connection in
// immediate transactions, so writers queue instead of failing with
// "database is locked"; reads use a separate pool and, thanks to WAL, never
// wait for writers. Safe for concurrent use.
type Store struct {
	path string
	log  *slog.Logger
	wdb  *sql.DB // one connection, BEGIN IMMEDIATE
	rdb  *sql.DB // read-only pool

	lookupStmt *sql.Stmt // lookupQuery on rdb: the cache-miss path

	// Write health, for Ping: the error of the last write when it failed
	// for a reason other than the caller's (nil once a write succeeds).
	mu          sync.Mutex
	lastErr     error
	probe       chan struct{} // closed when the running write probe ends; nil when none runs
	writeErrors atomic.Int64
}

var _ keys.Store = (*Store)(nil)

// fileMode is the mode of the database and its -wal and -shm files: they
// hold emails, metadata and the audit log, and a local user who can open
// -shm can stall every write.
const fileMode = 0o600

// Open opens (creating if needed) the database at path, makes it and its
// -wal and -shm files owner-only, and applies pending migrations.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("open sqlite: empty path")
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// SQLite creates -wal and -shm with the database file's mode, so
	// creating the database owner-only (whatever the umask) covers all three;
	// files left by older versions are fixed here too.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	f.Close()
	if err := restrict(path); err != nil {
		return nil, err
	}
	// Pragmas go in the DSN so that go-sqlite3 sets them on every new
	// connection, not only on the first one.
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_busy_timeout", strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10))
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
	s := &Store{path: path, log: opts.Logger}
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
	// WAL mode has created -wal and -shm by now.
	if err := restrict(path); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// restrict sets the database's files that exist to fileMode.
func restrict(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, fileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("open sqlite: restrict %s to the owner: %w", p, err)
		}
	}
	return nil
}

// Close closes both pools.
func (s *Store) Close() error {
	if s.lookupStmt != nil {
		s.lookupStmt.Close()
	}
	var err1 error
	if s.rdb != nil {
		err1 = s.rdb.Close()
	}
	err2 := s.wdb.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

// pingWait bounds how long Ping waits for its write probe.
const pingWait = 3 * time.Second

// Ping checks that reads work and that a write commits: it rewrites the
// health row, one probe at a time, and fails with the last write's error
// while writes fail.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	s.mu.Lock()
	done := s.probe
	if done == nil {
		done = make(chan struct{})
		s.probe = done
		go func() {
			// Not the caller's context: an abandoned probe still records
			// whether writes commit.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s.writeTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO health (id, at) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET at = excluded.at`, time.Now().Unix())
				return err
			})
			s.mu.Lock()
			s.probe = nil
			s.mu.Unlock()
			close(done)
		}()
	}
	s.mu.Unlock()
	wait := time.NewTimer(pingWait)
	defer wait.Stop()
	select {
	case <-done:
	case <-wait.C:
		// Stalled, not failed yet: it counts and shows all the same, since
		// every write behind it waits too.
		err := fmt.Errorf("sqlite: a write has not committed within %s (is another process holding a lock on %s or its -wal or -shm file?)", pingWait, s.path)
		s.writeErrors.Add(1)
		s.log.Error("store write stalled", "store", "sqlite", "path", s.path, "err", err)
		return err
	case <-ctx.Done():
		return fmt.Errorf("sqlite: write probe: %w", ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr != nil {
		return fmt.Errorf("sqlite: writes fail: %w", s.lastErr)
	}
	return nil
}

// WriteErrors returns how many writes have failed for a reason other than
// the caller's (not found, conflict, bad input), or stalled past Ping's
// wait, for metrics.
func (s *Store) WriteErrors() int64 { return s.writeErrors.Load() }

// migrate applies each embedded migration not yet recorded, each in its own
// transaction together with its record.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.wdb.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create migrations table in %s: %w", s.path, err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		// Recorded under the name keygate has always used, so that
		// databases made before the store moved to this package stay
		// as they are.
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

// writeTx runs fn in an immediate transaction on the write connection and
// keeps the write health Ping reports.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	err := s.runTx(ctx, fn)
	if err != nil && (callerError(err) || ctx.Err() != nil) {
		return err // the caller's doing, not the store's health
	}
	s.mu.Lock()
	prev := s.lastErr
	s.lastErr = err
	s.mu.Unlock()
	if err != nil {
		s.writeErrors.Add(1)
		s.log.Error("store write failed", "store", "sqlite", "path", s.path, "err", err)
	} else if prev != nil {
		s.log.Info("store writes commit again", "store", "sqlite", "path", s.path)
	}
	return err
}

func (s *Store) runTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
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

// callerError reports whether err is a domain answer (missing record,
// conflict, bad input) rather than a failure of the store.
func callerError(err error) bool {
	var e *keys.Error
	return errors.Is(err, keys.ErrNotFound) || errors.Is(err, keys.ErrConflict) || errors.As(err, &e) || errors.Is(err, errCaller)
}

// errCaller marks errors a Tx returns for a misuse by its caller.
var errCaller = errors.New("invalid store call")

// placeholders returns "?,?,…" with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}
