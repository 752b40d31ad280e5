// Package postgres is keygate's store on PostgreSQL, for several nodes
// sharing one database (SPEC §9). It implements keys.Store and broadcasts
// every change that affects validation with LISTEN/NOTIFY (see Listener).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/keygate/keygate/keys"
)

// Options configures Open.
type Options struct {
	// DSN is a libpq connection string: a URL or key=value pairs.
	DSN string
	// MaxConns caps the pool; 0 means 10.
	MaxConns int
	// ConnectTimeout bounds each connection attempt; 0 means 5s.
	ConnectTimeout time.Duration
}

// DB is the keys.Store on Postgres. Safe for concurrent use, by any number
// of goroutines and nodes.
type DB struct {
	pool pool   // marks errors of an unreachable Postgres (see unavailable.go)
	node string // names this process in its change notifications

	mu        sync.Mutex
	writeErr  error       // the last failed write, reported by Ping until a write succeeds
	listeners []*Listener // closed by Close
}

var _ keys.Store = (*DB)(nil)

// Open connects to Postgres and applies pending migrations under an
// advisory lock, so that nodes started together on an empty database all
// come up. It fails when the database cannot be reached at all.
func Open(ctx context.Context, o Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		// pgx's message may quote the DSN, password included: say only what kind of problem it is.
		return nil, errors.New("parse store.dsn: not a valid libpq URL or key=value connection string")
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 10
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	cfg.MaxConns = int32(o.MaxConns)
	cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	cfg.HealthCheckPeriod = 5 * time.Second
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to store.dsn: %w", err)
	}
	db := &DB{pool: pool{p}, node: newNodeID()}
	pctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	err = p.Ping(pctx)
	cancel()
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("connect to postgres (store.dsn, host %s): %w", cfg.ConnConfig.Host, err)
	}
	if err := db.migrate(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return db, nil
}

// Close stops the DB's listeners and closes the pool.
func (db *DB) Close() error {
	db.mu.Lock()
	ls := db.listeners
	db.listeners = nil
	db.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	db.pool.Close()
	return nil
}

// Ping reports whether Postgres answers and the last write did not fail.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second) // a load balancer's health check will not wait longer
	defer cancel()
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	var standby bool
	if err := db.pool.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&standby); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if standby {
		return errors.New("postgres: store.dsn names a read-only standby")
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.writeErr
}

// noteWrite records the outcome of a write for Ping: a write that failed
// because Postgres is unavailable, out of space or read-only (a standby
// after a failover) makes Ping fail until a write succeeds. Errors of the
// caller's making (not found, conflict, bad input) change nothing.
func (db *DB) noteWrite(err error) {
	if err != nil && !errors.Is(err, keys.ErrUnavailable) {
		return
	}
	db.mu.Lock()
	db.writeErr = err
	db.mu.Unlock()
}

// writeLock serialises Update transactions across every node: admin writes
// are rare, and one writer at a time gives each Update the isolation of
// SQLite's single writer without serialisation failures to retry.
const writeLock = 0x6b67_0001

// Update runs fn in one transaction, holding the cluster-wide write lock,
// and sends the changes fn recorded with Notify as part of the commit.
func (db *DB) Update(ctx context.Context, fn func(tx keys.Tx) error) error {
	err := retry(ctx, func() error {
		return pgx.BeginFunc(ctx, db.pool.Pool, func(ptx pgx.Tx) error {
			if _, err := ptx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLock); err != nil {
				return fmt.Errorf("take write lock: %w", err)
			}
			t := &tx{tx: ptx, node: db.node}
			if err := fn(t); err != nil {
				return err
			}
			return t.notify(ctx)
		})
	})
	err = unavailable(err)
	db.noteWrite(err)
	return err
}

// retry runs a transaction again, up to three times in all, when Postgres
// aborted it as a deadlock victim or a serialisation failure: an admin
// write's row locks and a usage flush's (last_used_at) can meet in opposite
// orders, and either is correct to run again.
func retry(ctx context.Context, run func() error) error {
	var err error
	for attempt := range 3 {
		if err = run(); !isRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
	return err
}

func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// tx is a keys.Tx over one Postgres transaction.
type tx struct {
	tx      pgx.Tx
	node    string
	changes []keys.Change
}

// Notify queues c; Update sends it just before the commit.
func (t *tx) Notify(c keys.Change) { t.changes = append(t.changes, c) }

// isUnique reports whether err is a unique violation.
func isUnique(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// isForeignKey reports whether err is a foreign-key violation.
func isForeignKey(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// notFound maps pgx's no-rows to keys.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return keys.ErrNotFound
	}
	return err
}

// querier is what reads need: the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}
