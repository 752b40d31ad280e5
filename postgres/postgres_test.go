package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/postgres/pgtest"
)

func open(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := Open(context.Background(), Options{DSN: dsn, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMigrateConcurrently: nodes started together on an empty database all
// come up, and the schema is applied once, its version recorded.
func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	const nodes = 6
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	dbs := make([]*DB, nodes)
	start := make(chan struct{})
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			dbs[i], errs[i] = Open(context.Background(), Options{DSN: dsn, MaxConns: 2})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
			continue
		}
		defer dbs[i].Close()
	}
	if t.Failed() {
		return
	}
	names, _ := fs.Glob(migrationFS, "migrations/*.sql")
	v, err := dbs[0].SchemaVersion(context.Background())
	if err != nil || v != names[len(names)-1] {
		t.Errorf("schema version = %q, %v; want %q", v, err, names[len(names)-1])
	}
	var n int
	if err := dbs[0].pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(names) {
		t.Errorf("schema_migrations rows = %d, %v; want %d", n, err, len(names))
	}
}

// TestOpenUnreachable: the start-up error names store.dsn and never the
// password.
func TestOpenUnreachable(t *testing.T) {
	for _, dsn := range []string{
		"postgres://keygate:s3cret@127.0.0.1:1/keygate?connect_timeout=1",
		"host=127.0.0.1 port=1 user=keygate password=s3cret connect_timeout=1",
		"postgres://keygate:s3cret@[::1", // not a DSN at all
	} {
		_, err := Open(context.Background(), Options{DSN: dsn, ConnectTimeout: time.Second})
		if err == nil {
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if !strings.Contains(err.Error(), "store.dsn") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) = %v; want an error naming store.dsn without the password", dsn, err)
		}
	}
}

// TestAuditAppendOnly: the database itself refuses to change audit events.
func TestAuditAppendOnly(t *testing.T) {
	db := open(t, pgtest.NewDatabase(t))
	ctx := context.Background()
	if err := db.Update(ctx, func(tx keys.Tx) error {
		return tx.InsertAudit(ctx, keys.AuditEvent{At: 1, Action: keys.ActionUserUpserted, Actor: "admin", UserID: "u1"})
	}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit_events SET actor = 'x'`, `DELETE FROM audit_events`} {
		if _, err := db.pool.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", q, err)
		}
	}
}

// TestNotifyOnCommitOnly: a committed Update reaches other nodes' listeners
// (not its own), a rolled-back one sends nothing, and big changes arrive
// whole across several notifications.
func TestNotifyOnCommitOnly(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	got := make(chan keys.Change, 100)
	listen := func(db *DB, ch chan keys.Change) {
		l, err := db.Listen(ctx, ListenOptions{Apply: func(c keys.Change) { ch <- c }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
	}
	own := make(chan keys.Change, 100)
	listen(b, got)
	listen(a, own)

	boom := errors.New("boom")
	if err := a.Update(ctx, func(tx keys.Tx) error {
		tx.Notify(keys.Change{KeyIDs: []string{"rolled-back"}})
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	many := make([]string, 2000)
	for i := range many {
		many[i] = fmt.Sprintf("key_%020d", i)
	}
	var hashes [][32]byte
	for i := range 300 {
		hashes = append(hashes, [32]byte{byte(i), byte(i >> 8)})
	}
	if err := a.Update(ctx, func(tx keys.Tx) error {
		tx.Notify(keys.Change{UserID: "u1", OrgID: "o1"})
		tx.Notify(keys.Change{KeyIDs: many, Hashes: hashes, Imported: 300})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var all keys.Change
	deadline := time.After(5 * time.Second)
	for len(all.KeyIDs) < len(many) || len(all.Hashes) < len(hashes) {
		select {
		case c := <-got:
			if len(c.KeyIDs) == 1 && c.KeyIDs[0] == "rolled-back" {
				t.Fatal("a rolled-back change was delivered")
			}
			if c.UserID != "" {
				all.UserID, all.OrgID = c.UserID, c.OrgID
			}
			all.KeyIDs = append(all.KeyIDs, c.KeyIDs...)
			all.Hashes = append(all.Hashes, c.Hashes...)
			all.Imported += c.Imported
		case <-deadline:
			t.Fatalf("got %d key ids and %d hashes, want %d and %d", len(all.KeyIDs), len(all.Hashes), len(many), len(hashes))
		}
	}
	if all.UserID != "u1" || all.OrgID != "o1" || all.Imported != 300 || all.KeyIDs[1999] != many[1999] || all.Hashes[299] != hashes[299] {
		t.Errorf("reassembled change = user %q org %q imported %d", all.UserID, all.OrgID, all.Imported)
	}
	select {
	case c := <-own:
		t.Errorf("the sending node received its own change %+v", c)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestListenerReconnects: when the channel's connection dies the listener
// reconnects by itself and calls Reset, then delivers changes again.
func TestListenerReconnects(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	got := make(chan keys.Change, 10)
	reset := make(chan struct{}, 10)
	l, err := b.Listen(ctx, ListenOptions{Apply: func(c keys.Change) { got <- c }, Reset: func() { reset <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Kill the listening backend from another connection.
	if _, err := a.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reset:
	case <-time.After(10 * time.Second):
		t.Fatal("no Reset after the channel was lost")
	}
	if !l.Connected() {
		t.Error("Connected() = false after Reset")
	}
	if err := a.Update(ctx, func(tx keys.Tx) error { tx.Notify(keys.Change{KeyIDs: []string{"k1"}}); return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if len(c.KeyIDs) != 1 || c.KeyIDs[0] != "k1" {
			t.Errorf("got %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change delivered after reconnecting")
	}
}

func TestPayloadsFit(t *testing.T) {
	c := keys.Change{UserID: strings.Repeat("u", 255), KeyIDs: make([]string, 5000)}
	for i := range c.KeyIDs {
		c.KeyIDs[i] = strings.Repeat("\u2028", 40) // escapes to 6 bytes each in JSON
	}
	n := 0
	for _, p := range payloads("node", c) {
		if len(p) >= 8000 {
			t.Fatalf("payload of %d bytes", len(p))
		}
		got, ok, err := decode("other", p)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		n += len(got.KeyIDs)
	}
	if n != 5000 {
		t.Errorf("delivered %d ids, want 5000", n)
	}
}

// TestUnavailable: errors that say Postgres cannot serve are marked
// keys.ErrUnavailable; the caller's errors are not.
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "53100"}, true},
		{&pgconn.PgError{Code: "25006"}, true},
		{&pgconn.PgError{Code: "23505"}, false},
		{keys.ErrNotFound, false},
		{keys.FieldError("user_id", "bad"), false},
		{fmt.Errorf("x: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{context.DeadlineExceeded, true},
	} {
		if got := errors.Is(unavailable(tc.err), keys.ErrUnavailable); got != tc.want {
			t.Errorf("unavailable(%v) marked = %v, want %v", tc.err, got, tc.want)
		}
	}
	if unavailable(nil) != nil {
		t.Error("unavailable(nil) != nil")
	}
}

// TestRetry: deadlock victims and serialisation failures run again, up to
// three times; other errors and success return at once.
func TestRetry(t *testing.T) {
	for _, tc := range []struct {
		err   error
		calls int
	}{
		{nil, 1},
		{&pgconn.PgError{Code: "40P01"}, 3},
		{&pgconn.PgError{Code: "40001"}, 3},
		{&pgconn.PgError{Code: "23505"}, 1},
		{keys.ErrNotFound, 1},
	} {
		calls := 0
		err := retry(context.Background(), func() error { calls++; return tc.err })
		if calls != tc.calls || !errors.Is(err, tc.err) {
			t.Errorf("retry(%v): %d calls, err %v; want %d calls", tc.err, calls, err, tc.calls)
		}
	}
	calls := 0
	if err := retry(context.Background(), func() error {
		calls++
		if calls == 1 {
			return &pgconn.PgError{Code: "40P01"}
		}
		return nil
	}); err != nil || calls != 2 {
		t.Errorf("a deadlock victim that succeeds the second time: %v after %d calls", err, calls)
	}
}
