package postgres

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/keys/storetest"
	"github.com/keygate/keygate/postgres/pgtest"
)

// template is a migrated database each test copies (see TestMain).
var template string

func TestMain(m *testing.M) {
	name, drop, ok, err := pgtest.CreateTemplate(func(dsn string) error {
		db, err := Open(context.Background(), Options{DSN: dsn, MaxConns: 1})
		if err != nil {
			return err
		}
		return db.Close()
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "postgres tests: create template database:", err)
		os.Exit(1)
	}
	if ok {
		template = name
	}
	code := m.Run()
	if drop != nil {
		drop()
	}
	os.Exit(code)
}

// migrated returns a new database with the schema applied.
func migrated(t *testing.T) string {
	return pgtest.NewDatabaseFrom(t, template)
}

// TestConformance runs the storage contract's suite, the same one the
// SQLite store passes, each test on a database of its own.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keys.Store {
		db, err := Open(context.Background(), Options{DSN: migrated(t), MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}
