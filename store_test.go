package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// holdLockEnv names the file TestHoldLockHelper read-locks.
const holdLockEnv = "KEYGATE_TEST_HOLD_LOCK"

// TestHoldLockHelper is not a test: run in a child process by holdLock, it
// read-locks the file named by holdLockEnv (fcntl locks are per process,
// so the gateway's own process cannot play the other local user) until its
// stdin closes.
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

func holdLock(t *testing.T, path string) (release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldLockHelper$")
	cmd.Env = append(os.Environ(), holdLockEnv+"="+path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
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

// A local user who holds a read lock on keygate.db-shm stalls every write.
// Before, /readyz stayed ok while admin writes failed after 10 s; now the
// node says it is not ready, counts the failure, and recovers when the lock
// goes.
func TestReadyzWhenWritesCannotCommit(t *testing.T) {
	if os.Getenv("KEYGATE_TEST_STORE") == "postgres" {
		t.Skip("SQLite files only")
	}
	dbPath := filepath.Join(t.TempDir(), "keygate.db")
	app := startApp(t, dbPath, echoUpstream(t).URL, "")
	ready := "http://" + app.AdminAddr() + "/readyz"
	if code := get(t, ready); code != http.StatusOK {
		t.Fatalf("readyz before: %d", code)
	}
	for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %o, want 600", filepath.Base(p), fi.Mode().Perm())
		}
	}

	release := holdLock(t, dbPath+"-shm")
	if code := get(t, ready); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with writes stalled: %d, want 503", code)
	}
	release()
	deadline := time.Now().Add(30 * time.Second)
	for get(t, ready) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("readyz did not recover after the lock went")
		}
		time.Sleep(100 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", "http://"+app.AdminAddr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^keygate_store_write_errors_total (\d+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no keygate_store_write_errors_total in /metrics")
	}
	if n, _ := strconv.Atoi(string(m[1])); n < 1 {
		t.Errorf("keygate_store_write_errors_total = %d, want ≥ 1", n)
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
