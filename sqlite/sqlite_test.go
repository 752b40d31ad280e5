package sqlite

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/keys/storetest"
)

// openTest opens a store in a fresh directory, closed after the test.
func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "keygate.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keys.Store { return openTest(t) })
}

func TestMigrationsRecordedOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	for i := 0; i < 2; i++ {
		st, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		var n int
		st.rdb.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n)
		var mode string
		st.rdb.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
		var fk int
		st.rdb.QueryRow(`PRAGMA foreign_keys`).Scan(&fk)
		st.Close()
		if names, _ := fs.Glob(migrationFS, "migrations/*.sql"); n != len(names) || mode != "wal" || fk != 1 {
			t.Fatalf("migrations=%d journal=%s foreign_keys=%d", n, mode, fk)
		}
	}
}
