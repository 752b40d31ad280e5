// Package pgtest gives tests a database of their own on the local Postgres.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ServerDSN is the server the tests use unless KEYGATE_TEST_POSTGRES names
// another: the CI machine's Postgres, trust auth on loopback.
const ServerDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// server returns the DSN of the maintenance database tests connect to.
func server() string {
	if dsn := os.Getenv("KEYGATE_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return ServerDSN
}

// NewDatabase creates an empty database with a unique name, drops it when
// the test ends, and returns its DSN. Without a reachable Postgres it fails
// the test when CI=true and skips it otherwise.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	return NewDatabaseFrom(tb, "")
}

// NewDatabaseFrom is NewDatabase with the new database a copy of template
// (see CreateTemplate); "" means an empty database.
func NewDatabaseFrom(tb testing.TB, template string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server())
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("Postgres is required in CI (CI=true) but %s is not reachable: %v", redact(server()), err)
		}
		tb.Skipf("no Postgres at %s (set KEYGATE_TEST_POSTGRES, or run .ci/run): %v", redact(server()), err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	name := "keygate_test_" + hex.EncodeToString(b[:])
	create := `CREATE DATABASE ` + name
	if template != "" {
		create += ` TEMPLATE ` + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server())
		if err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(server())
	if err != nil {
		tb.Fatalf("KEYGATE_TEST_POSTGRES must be a URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// redact drops a password from a DSN for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "KEYGATE_TEST_POSTGRES"
	}
	return u.Redacted()
}

// CreateTemplate creates a database for NewDatabaseFrom to copy, prepared
// by prepare(dsn) (which must close its connections), and returns its name
// and a function that drops it. Copying a migrated template is much faster
// than migrating every test's database. ok is false when Postgres is not
// reachable; NewDatabase then reports that to each test.
func CreateTemplate(prepare func(dsn string) error) (name string, drop func(), ok bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server())
	if err != nil {
		return "", nil, false, nil
	}
	defer conn.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	name = "keygate_tmpl_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		return "", nil, false, err
	}
	drop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, server()); err == nil {
			conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
			conn.Close(context.Background())
		}
	}
	u, err := url.Parse(server())
	if err != nil {
		drop()
		return "", nil, false, err
	}
	u.Path = "/" + name
	if err := prepare(u.String()); err != nil {
		drop()
		return "", nil, false, err
	}
	return name, drop, true, nil
}
