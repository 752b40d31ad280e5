package main

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/keygate/keygate/postgres/pgtest"
)

// The end-to-end tests run on the store KEYGATE_TEST_STORE names: sqlite
// (the default) or postgres. TestEndToEndOnPostgres re-runs them all on
// Postgres, so that one `go test ./...` covers both stores.
func testStoreDriver() string {
	if os.Getenv("KEYGATE_TEST_STORE") == "postgres" {
		return "postgres"
	}
	return "sqlite"
}

var (
	testDBsMu sync.Mutex
	testDBs   = map[string]string{} // dbPath → DSN, so a restarted App finds its data
)

// testStoreYAML returns the store section for an App whose data lives at
// dbPath: that SQLite file, or a Postgres database made for it (the same
// one each time the test names dbPath, dropped when the test ends).
func testStoreYAML(t *testing.T, dbPath string) string {
	t.Helper()
	if testStoreDriver() == "sqlite" {
		return fmt.Sprintf("store:\n  path: %q\n", dbPath)
	}
	testDBsMu.Lock()
	dsn, ok := testDBs[dbPath]
	testDBsMu.Unlock()
	if !ok {
		dsn = pgtest.NewDatabase(t)
		testDBsMu.Lock()
		testDBs[dbPath] = dsn
		testDBsMu.Unlock()
		t.Cleanup(func() {
			testDBsMu.Lock()
			delete(testDBs, dbPath)
			testDBsMu.Unlock()
		})
	}
	return fmt.Sprintf("store:\n  driver: postgres\n  dsn: %q\n", dsn)
}

// endToEndTests are the tests that start whole gateways on a store.
const endToEndTests = `^(TestEndToEnd.*|TestServeSIGTERM|TestBrowser.*)$`

// TestEndToEndOnPostgres runs every end-to-end test again with
// store.driver: postgres, in a child process of this test binary.
func TestEndToEndOnPostgres(t *testing.T) {
	if testStoreDriver() == "postgres" {
		t.Skip("already running on postgres")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	pgtest.NewDatabase(t) // skips, or fails in CI, without a Postgres
	args := []string{"-test.run", endToEndTests, "-test.count=1"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KEYGATE_TEST_STORE=postgres")
	out, err := cmd.CombinedOutput()
	if err != nil || testing.Verbose() {
		t.Logf("end-to-end tests on postgres:\n%s", out)
	}
	if err != nil {
		t.Fatalf("end-to-end tests failed on postgres: %v", err)
	}
}
