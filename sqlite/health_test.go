package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// The database holds emails, metadata and the audit log: owner-only files,
// whatever the umask, and files left 0644 by older versions are fixed.
func TestFileModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "keygate.db")
	st, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(context.Background()); err != nil { // a write: -wal and -shm exist
		t.Fatal(err)
	}
	checkModes(t, path)
	st.Close()

	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Chmod(p, 0o644)
	}
	st, err = Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkModes(t, path)
}

func checkModes(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if os.IsNotExist(err) && !strings.HasSuffix(p, ".db") {
			continue // removed at close after a checkpoint
		}
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(p), m)
		}
	}
}

// holdLockEnv names the file the helper process read-locks.
const holdLockEnv = "KEYGATE_TEST_HOLD_LOCK"

// TestHoldLockHelper is not a test: run by holdLock in a child process, it
// takes a read lock on the whole file named by holdLockEnv (fcntl locks are
// per process, so the test's own process cannot stand in for another user
// on the host) and holds it until its stdin closes.
func TestHoldLockHelper(t *testing.T) {
	path := os.Getenv(holdLockEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLKW, &syscall.Flock_t{Type: syscall.F_RDLCK}); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("locked\n")
	io.Copy(io.Discard, os.Stdin)
}

// holdLock read-locks path from another process until release is called.
func holdLock(t *testing.T, path string) (release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldLockHelper$")
	cmd.Env = append(os.Environ(), holdLockEnv+"="+path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "locked\n" {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("lock helper: %q", line)
	}
	done := false
	release = func() {
		if !done {
			done = true
			stdin.Close()
			cmd.Wait()
		}
	}
	t.Cleanup(release)
	return release
}

// A local user holding a read lock on -shm stalls every write: Ping must
// say so (and the log and WriteErrors), and recover once the lock goes.
func TestPingDetectsWritesThatCannotCommit(t *testing.T) {
	var logs bytes.Buffer
	path := filepath.Join(t.TempDir(), "keygate.db")
	st, err := Open(context.Background(), path, Options{BusyTimeout: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("healthy store: %v", err)
	}
	release := holdLock(t, path+"-shm")

	err = st.Update(ctx, func(tx keys.Tx) error { return tx.PutUser(ctx, &keys.User{ID: "alice", Enabled: true}) })
	if err == nil {
		t.Fatal("a write committed under a held -shm lock; the test does not reproduce the stall")
	}
	if err := st.Ping(ctx); err == nil {
		t.Fatal("Ping is healthy while writes cannot commit")
	}
	if st.WriteErrors() == 0 {
		t.Error("WriteErrors = 0 after failed writes")
	}
	if !strings.Contains(logs.String(), "store write failed") {
		t.Errorf("no log line for the failed write:\n%s", logs.String())
	}

	release()
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping after the lock went: %v", err)
	}
	if !strings.Contains(logs.String(), "store writes commit again") {
		t.Errorf("no log line for the recovery:\n%s", logs.String())
	}
}

// Domain answers (not found, conflict) say nothing about the store's
// health.
func TestCallerErrorsKeepStoreHealthy(t *testing.T) {
	st := openTest(t)
	ctx := context.Background()
	err := st.Update(ctx, func(tx keys.Tx) error { return tx.DeleteUser(ctx, "nobody") })
	if err == nil {
		t.Fatal("deleted a missing user")
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping after a not-found: %v", err)
	}
	if n := st.WriteErrors(); n != 0 {
		t.Fatalf("WriteErrors = %d after a not-found", n)
	}
}
