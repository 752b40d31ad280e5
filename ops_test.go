package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects a child's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// opsNode is the real binary run as `keygate serve` with a config file.
type opsNode struct {
	*client
	stderr *lockedBuffer
	cmd    *exec.Cmd
}

// startBinary runs `keygate serve --config F` in a child process with the
// given YAML after the ports, store and token, and waits for the admin port.
func startBinary(t *testing.T, proxyYAML, extraYAML string) *opsNode {
	t.Helper()
	up := echoUpstream(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keygate.yaml")
	adminAddr, proxyAddr := freeAddr(t), freeAddr(t)
	yaml := fmt.Sprintf("proxy: {listen: %q, upstreams: [%q]%s}\nadmin: {listen: %q, token: %q}\n%s%s",
		proxyAddr, up.URL, proxyYAML, adminAddr, testAdminToken, testStoreYAML(t, filepath.Join(dir, "kg.db")), extraYAML)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KEYGATE_TEST_MAIN=1", "KEYGATE_TEST_ARGS=serve --config "+cfgPath)
	n := &opsNode{client: &client{t: t, admin: "http://" + adminAddr, proxy: "http://" + proxyAddr}, stderr: &lockedBuffer{}, cmd: cmd}
	cmd.Stderr = n.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Up, and past the cache warm-up at start, which tests reading
		// /readyz at once do not expect.
		resp, err := http.Get(n.admin + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), `"cache_warm":"unavailable"`) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("keygate never answered (or never warmed); stderr:\n%s", n.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return n
}

// fetch GETs url with an optional bearer token.
func fetch(t *testing.T, url, token string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// The operations of issue 15 §5 through the real binary: the health
// endpoint on the proxy port, /metrics on its own listener without a
// token (and still behind it on the admin port), the access log.
func TestOpsHealthMetricsAccessLog(t *testing.T) {
	metricsAddr := freeAddr(t)
	n := startBinary(t, ", health_path: /lb/health", fmt.Sprintf(`
log: {format: json, access: true}
metrics: {listen: %q}
usage: {flush_interval: 50ms}
`, metricsAddr))

	// Health: no key needed, never proxied, and the default path is off
	// once another is configured.
	if code, _, body := fetch(t, n.proxy+"/lb/health", ""); code != 200 || body != `{"status":"ok"}` {
		t.Errorf("GET /lb/health = %d %s, want 200 ok", code, body)
	}
	if code, _, _ := fetch(t, n.proxy+"/_keygate/health", ""); code != 401 {
		t.Errorf("GET /_keygate/health with health_path moved = %d, want 401 (proxied)", code)
	}
	code, _, body := fetch(t, n.admin+"/readyz", "")
	if code != 200 || !strings.Contains(body, `"store":"ok"`) {
		t.Errorf("/readyz = %d %s, want 200 naming store ok", code, body)
	}

	// Traffic for the access log and the metrics.
	key := n.must(201, "POST", "/v1/keys", map[string]any{})
	tok, id := key["token"].(string), key["id"].(string)
	if code, _ := n.get(tok, "/v1/things?x=1"); code != 200 {
		t.Fatalf("proxied request = %d", code)
	}

	// /metrics: open on metrics.listen, token-only on the admin port.
	code, _, body = fetch(t, "http://"+metricsAddr+"/metrics", "")
	if code != 200 || !strings.Contains(body, "keygate_requests_total") {
		t.Errorf("metrics.listen /metrics = %d, want 200 with keygate_requests_total:\n%.300s", code, body)
	}
	if code, _, _ := fetch(t, n.admin+"/metrics", ""); code != 401 {
		t.Errorf("admin /metrics without token = %d, want 401", code)
	}
	if code, _, _ := fetch(t, n.admin+"/metrics", testAdminToken); code != 200 {
		t.Errorf("admin /metrics with token = %d, want 200", code)
	}

	// The access log: one JSON line for the proxied request, with the key
	// id and never the token or the query.
	var line map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for line == nil && time.Now().Before(deadline) {
		for _, l := range strings.Split(n.stderr.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["path"] == "/v1/things" {
				line = m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if line == nil {
		t.Fatalf("no access log line for /v1/things in:\n%s", n.stderr)
	}
	if line["key_id"] != id || line["status"] != float64(200) || line["result"] != "allowed" || line["log"] != "access" {
		t.Errorf("access log line = %v, want key_id %s, status 200, result allowed", line, id)
	}
	if all := n.stderr.String(); strings.Contains(all, tok) || strings.Contains(all, "x=1") {
		t.Errorf("the log carries the token or the query:\n%s", all)
	}
	// Health probes are not access-logged: they are not API traffic.
	if strings.Contains(n.stderr.String(), `"path":"/lb/health"`) {
		t.Errorf("health probe in the access log")
	}
}

// A Redis limiter that cannot reach Redis: a warning at start naming the
// address, /readyz detail, readiness by limiter.redis_required, and no
// invented RateLimit-* headers on the requests it lets through.
func TestOpsRedisDown(t *testing.T) {
	for _, required := range []bool{false, true} {
		t.Run(fmt.Sprintf("redis_required=%v", required), func(t *testing.T) {
			n := startBinary(t, "", fmt.Sprintf(`
limiter: {backend: redis, redis_addr: "127.0.0.1:1", redis_required: %v, timeout: 20ms}
rate_limits: {generic: {limit: 5, window: 1m}}
`, required))
			logs := n.stderr.String()
			if !strings.Contains(logs, "Redis cannot be reached") || !strings.Contains(logs, "127.0.0.1:1") {
				t.Errorf("no start warning naming the Redis address:\n%s", logs)
			}
			wantCode, wantStatus := 200, `"status":"degraded"`
			if required {
				wantCode, wantStatus = 503, `"status":"unavailable"`
			}
			code, _, body := fetch(t, n.admin+"/readyz", "")
			if code != wantCode || !strings.Contains(body, wantStatus) || !strings.Contains(body, `"redis":"unavailable"`) || !strings.Contains(body, `"store":"ok"`) {
				t.Errorf("/readyz = %d %s, want %d %s with redis unavailable, store ok", code, body, wantCode, wantStatus)
			}
			if code, _, _ := fetch(t, n.proxy+"/_keygate/health", ""); code != wantCode {
				t.Errorf("proxy health = %d, want %d (as /readyz)", code, wantCode)
			}
			key := n.must(201, "POST", "/v1/keys", map[string]any{})
			code, h, _ := fetch(t, n.proxy+"/x", key["token"].(string))
			if code != 200 {
				t.Fatalf("request with on_error allow = %d, want 200", code)
			}
			for _, name := range []string{"Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset"} {
				if v := h.Get(name); v != "" {
					t.Errorf("%s = %q while Redis is down, want none", name, v)
				}
			}
		})
	}
}

// Opening the database names the path and the real reason.
func TestOpsStoreOpenErrors(t *testing.T) {
	if testStoreDriver() != "sqlite" {
		t.Skip("SQLite paths only")
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "dir", "kg.db")
	cfgPath := filepath.Join(dir, "keygate.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("proxy: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\", token: t}\nstore: {path: %q}\n", missing)), 0o600)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KEYGATE_TEST_MAIN=1", "KEYGATE_TEST_ARGS=serve --config "+cfgPath)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("serve with a missing directory succeeded:\n%s", out)
	}
	want := "store.path " + missing + ": directory " + filepath.Dir(missing) + " does not exist"
	if !strings.Contains(string(out), want) {
		t.Errorf("output %q\nwant it to contain %q", out, want)
	}

	// Permission: root may write anywhere, so the wording is checked on
	// the error keygate gets from the file system.
	err = explainSQLiteOpen(filepath.Join(dir, "kg.db"), &os.PathError{Op: "open", Path: "kg.db", Err: os.ErrPermission})
	if got := err.Error(); !strings.Contains(got, "permission denied") || !strings.Contains(got, filepath.Join(dir, "kg.db")) || !strings.Contains(got, "uid") {
		t.Errorf("permission error = %q, want path, permission denied and the uid", got)
	}
}

// last_used_at is never earlier than created_at through the whole path:
// usage is counted per minute, and a key made mid-minute and used at once
// falls in a bucket that starts before it existed.
func TestOpsLastUsedNotBeforeCreated(t *testing.T) {
	app := startApp(t, filepath.Join(t.TempDir(), "kg.db"), echoUpstream(t).URL, "")
	c := newClient(t, app)
	// Start a few seconds into a minute, so the bucket is before created_at.
	if s := time.Now().Second(); s < 2 || s > 55 {
		time.Sleep(time.Duration(62-s) * time.Second % time.Minute)
	}
	key := c.must(201, "POST", "/v1/keys", map[string]any{})
	if code, _ := c.get(key["token"].(string), "/"); code != 200 {
		t.Fatalf("proxied request = %d", code)
	}
	var got map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got = c.must(200, "GET", "/v1/keys/"+key["id"].(string), nil); got["last_used_at"] != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	used, ok := got["last_used_at"].(float64)
	if !ok {
		t.Fatalf("last_used_at never set: %v", got)
	}
	if created := got["created_at"].(float64); used < created {
		t.Errorf("last_used_at %v is before created_at %v", used, created)
	}
}
