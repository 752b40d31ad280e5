package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/admin/openapicheck"
	"github.com/keygate/keygate/config"
)

// TestMain lets a test run the real binary's main: the test executable
// re-runs itself with KEYGATE_TEST_MAIN=1 and the gateway's arguments.
func TestMain(m *testing.M) {
	if os.Getenv("KEYGATE_TEST_MAIN") == "1" {
		os.Args = append([]string{"keygate"}, strings.Fields(os.Getenv("KEYGATE_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const testAdminToken = "test-admin-token-0123456789"

// echoUpstream answers every request with what it received, as JSON.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "uri": r.RequestURI, "headers": r.Header, "body_len": len(body)})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// startApp runs a whole keygate on 127.0.0.1:0 with the database at dbPath
// (on the store of KEYGATE_TEST_STORE, see testStoreYAML).
func startApp(t *testing.T, dbPath, upstream, extraYAML string) *App {
	t.Helper()
	yaml := fmt.Sprintf(`
proxy:
  listen: "127.0.0.1:0"
  upstreams: [%q]
admin:
  listen: "127.0.0.1:0"
  token: %q
%susage:
  flush_interval: 50ms
log:
  level: warn
%s`, upstream, testAdminToken, testStoreYAML(t, dbPath), extraYAML)
	cfg, err := config.Parse(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	app := NewApp(cfg, io.Discard)
	// Every admin call of the end-to-end tests is validated against the
	// OpenAPI document.
	app.WrapAdmin = func(h http.Handler) http.Handler { return openapicheck.Middleware(t, h) }
	if err := app.Open(context.Background()); err != nil {
		app.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	// Tests that read /readyz at once expect the warm-up (of a few keys at
	// most) to be over.
	<-app.warmReady()
	return app
}

type client struct {
	t     *testing.T
	admin string
	proxy string
}

func newClient(t *testing.T, app *App) *client {
	return &client{t: t, admin: "http://" + app.AdminAddr(), proxy: "http://" + app.ProxyAddr()}
}

// call makes an admin API call and decodes the JSON answer into a map.
func (c *client) call(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.admin+path, r)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

func (c *client) must(want int, method, path string, body any) map[string]any {
	c.t.Helper()
	code, out := c.call(method, path, body)
	if code != want {
		c.t.Fatalf("%s %s = %d, want %d: %v", method, path, code, want, out)
	}
	return out
}

// get sends a request through the proxy with token and returns the status
// and the echoed request (or the error body).
func (c *client) get(token, path string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.proxy+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func header(echo map[string]any, name string) string {
	h, _ := echo["headers"].(map[string]any)
	v, _ := h[name].([]any)
	if len(v) == 0 {
		return ""
	}
	s, _ := v[0].(string)
	return s
}

func TestEndToEndKeyLifecycle(t *testing.T) {
	up := echoUpstream(t)
	app := startApp(t, filepath.Join(t.TempDir(), "kg.db"), up.URL, "keys:\n  org: {invalidate_on_creator_leave: true}\n")
	c := newClient(t, app)
	c.must(200, "PUT", "/v1/users/alice", map[string]any{"email": "alice@example.com"})
	c.must(200, "PUT", "/v1/orgs/acme", map[string]any{"name": "Acme Inc"})
	c.must(200, "PUT", "/v1/orgs/acme/members/alice", map[string]any{"role": "Admin"})

	tests := []struct {
		name    string
		body    map[string]any
		typ     string
		headers map[string]string
	}{
		{"personal", map[string]any{"type": "personal", "user_id": "alice"}, "personal",
			map[string]string{"X-Keygate-User-Id": "alice", "X-Keygate-User-Email": "alice@example.com", "X-Keygate-Org-Id": ""}},
		{"org", map[string]any{"type": "org", "org_id": "acme", "user_id": "alice"}, "org",
			map[string]string{"X-Keygate-Org-Id": "acme", "X-Keygate-Org-Name": "Acme Inc", "X-Keygate-User-Id": "alice"}},
		{"generic", map[string]any{"type": "generic"}, "generic",
			map[string]string{"X-Keygate-User-Id": "", "X-Keygate-Org-Id": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, app)
			tt.body["display_name"] = "e2e " + tt.name
			tt.body["metadata"] = map[string]any{"plan": "pro", "city": "Zürich"}
			created := c.must(201, "POST", "/v1/keys", tt.body)
			id, token := created["id"].(string), created["token"].(string)
			if created["type"] != tt.typ || token == "" || len(id) != 32 {
				t.Fatalf("created = %v", created)
			}
			got := c.must(200, "GET", "/v1/keys/"+id, nil)
			if _, leaked := got["token"]; leaked {
				t.Fatal("GET returns the token")
			}
			list := c.must(200, "GET", "/v1/keys?type="+tt.typ, nil)
			if !strings.Contains(fmt.Sprint(list["keys"]), id) {
				t.Fatalf("list misses %s", id)
			}
			code, echo := c.get(token, "/hello?x=1")
			if code != 200 {
				t.Fatalf("proxy = %d %v", code, echo)
			}
			if header(echo, "X-Keygate-Key-Id") != id || header(echo, "X-Keygate-Key-Type") != tt.typ {
				t.Fatalf("identity headers: %v", echo["headers"])
			}
			if got := header(echo, "X-Keygate-Metadata"); got != `{"city":"Z\u00fcrich","plan":"pro"}` {
				t.Fatalf("metadata header = %q", got)
			}
			if header(echo, "Authorization") != "" {
				t.Fatal("credential forwarded")
			}
			for name, want := range tt.headers {
				if got := header(echo, name); got != want {
					t.Fatalf("%s = %q, want %q", name, got, want)
				}
			}
			c.must(200, "PATCH", "/v1/keys/"+id, map[string]any{"metadata": map[string]any{"plan": "free"}})
			if _, echo := c.get(token, "/"); header(echo, "X-Keygate-Metadata") != `{"plan":"free"}` {
				t.Fatalf("metadata after update = %q", header(echo, "X-Keygate-Metadata"))
			}
			v := c.must(200, "POST", "/v1/validate", map[string]any{"api_key": token})
			if k, _ := v["key"].(map[string]any); k["id"] != id {
				t.Fatalf("validate = %v", v)
			}
			c.must(200, "POST", "/v1/keys/"+id+"/archive", nil)
			if code, body := c.get(token, "/"); code != 401 || body["error"] != "invalid_api_key" {
				t.Fatalf("archived key: %d %v", code, body)
			}
			c.must(401, "POST", "/v1/validate", map[string]any{"api_key": token})
			c.must(204, "DELETE", "/v1/keys/"+id, nil)
			c.must(404, "GET", "/v1/keys/"+id, nil)
			audit := c.must(200, "GET", "/v1/audit?key_id="+id, nil)
			if !strings.Contains(fmt.Sprint(audit["events"]), "api_key.deleted") {
				t.Fatalf("audit after delete: %v", audit)
			}
		})
	}
}

func TestEndToEndInvalidation(t *testing.T) {
	up := echoUpstream(t)
	db := filepath.Join(t.TempDir(), "kg.db")
	app := startApp(t, db, up.URL, "keys:\n  org: {invalidate_on_creator_leave: true}\n")
	c := newClient(t, app)
	newKey := func(body map[string]any) string {
		t.Helper()
		token := c.must(201, "POST", "/v1/keys", body)["token"].(string)
		if code, out := c.get(token, "/"); code != 200 {
			t.Fatalf("fresh key: %d %v", code, out)
		}
		return token
	}
	expect := func(token string, code int, errCode string) {
		t.Helper()
		got, body := c.get(token, "/")
		if got != code || (errCode != "" && body["error"] != errCode) {
			t.Fatalf("got %d %v, want %d %s", got, body, code, errCode)
		}
	}
	c.must(200, "PUT", "/v1/users/bob", map[string]any{"email": "bob@example.com"})
	bob := newKey(map[string]any{"user_id": "bob"})
	c.must(200, "POST", "/v1/users/bob/block", nil)
	expect(bob, 401, "invalid_api_key")
	c.must(200, "POST", "/v1/users/bob/unblock", nil)
	expect(bob, 200, "")

	c.must(200, "PUT", "/v1/orgs/acme", map[string]any{"name": "Acme"})
	c.must(200, "PUT", "/v1/orgs/acme/members/bob", map[string]any{"role": "Member"})
	bobOrg := newKey(map[string]any{"org_id": "acme", "user_id": "bob"})
	plainOrg := newKey(map[string]any{"org_id": "acme"})
	c.must(204, "DELETE", "/v1/orgs/acme/members/bob", nil)
	expect(bobOrg, 401, "invalid_api_key") // creator left, setting on
	expect(plainOrg, 200, "")
	c.must(204, "DELETE", "/v1/orgs/acme", nil)
	expect(plainOrg, 401, "invalid_api_key")
	c.must(200, "PUT", "/v1/orgs/acme", map[string]any{"name": "Acme again"})
	expect(plainOrg, 401, "invalid_api_key") // archived for good

	c.must(204, "DELETE", "/v1/users/bob", nil)
	expect(bob, 401, "invalid_api_key")
	c.must(200, "PUT", "/v1/users/bob", map[string]any{"email": "bob@example.com"})
	expect(bob, 401, "invalid_api_key") // archived for good

	soon := time.Now().Add(2 * time.Second).Unix()
	exp := newKey(map[string]any{"expires_at": soon})
	for time.Now().Unix() < soon {
		time.Sleep(100 * time.Millisecond)
	}
	expect(exp, 401, "expired_api_key")

	generic := newKey(map[string]any{})
	app.Close()
	// A type disabled in config fails validation, and works again once re-enabled.
	app2 := startApp(t, db, up.URL, "keys:\n  generic: {enabled: false}\n")
	c = newClient(t, app2)
	expect(generic, 401, "invalid_api_key")
	app2.Close()
	app3 := startApp(t, db, up.URL, "")
	c = newClient(t, app3)
	expect(generic, 200, "")
}

// TestServeSIGTERM runs the real binary's main, sends traffic, stops it with
// SIGTERM and checks it exits 0 having flushed every request's usage.
func TestServeSIGTERM(t *testing.T) {
	up := echoUpstream(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keygate.yaml")
	adminAddr, proxyAddr := freeAddr(t), freeAddr(t)
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
proxy: {listen: %q, upstreams: [%q]}
admin: {listen: %q, token: %q}
%susage: {flush_interval: 1h}
`, proxyAddr, up.URL, adminAddr, testAdminToken, testStoreYAML(t, filepath.Join(dir, "kg.db")))), 0o600)
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "KEYGATE_TEST_MAIN=1", "KEYGATE_TEST_ARGS=serve --config "+cfgPath)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		waitReady(t, "http://"+adminAddr+"/readyz")
		return cmd
	}
	cmd := start()
	c := &client{t: t, admin: "http://" + adminAddr, proxy: "http://" + proxyAddr}
	// Several keys, each with its own count, across users and a generic key.
	counts := []int{37, 5, 12}
	var ids, tokens []string
	for i := range counts {
		body := map[string]any{}
		if i < 2 {
			uid := fmt.Sprintf("u%d", i)
			c.must(200, "PUT", "/v1/users/"+uid, map[string]any{"email": uid + "@example.com"})
			body["user_id"] = uid
		}
		key := c.must(201, "POST", "/v1/keys", body)
		ids, tokens = append(ids, key["id"].(string)), append(tokens, key["token"].(string))
	}
	for i, n := range counts {
		for j := 0; j < n; j++ {
			if code, _ := c.get(tokens[i], "/"); code != 200 {
				t.Fatalf("key %d request %d: %d", i, j, code)
			}
		}
	}
	// flush_interval is 1h: only the shutdown flush can save these counts.
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	start()
	for i, n := range counts {
		u := c.must(200, "GET", "/v1/usage?key_id="+ids[i]+"&interval=day", nil)
		if u["total"] != float64(n) {
			t.Fatalf("key %d: usage total after restart = %v, want %d", i, u["total"], n)
		}
	}
	u := c.must(200, "GET", "/v1/usage?user_id=u0&interval=hour", nil)
	if u["total"] != float64(counts[0]) {
		t.Fatalf("user u0: usage total = %v, want %d", u["total"], counts[0])
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	return addr
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

func TestLoopbackIfUnspecified(t *testing.T) {
	for in, want := range map[string]string{
		"[::]:8080":      "127.0.0.1:8080",
		"0.0.0.0:8080":   "127.0.0.1:8080",
		":8080":          "127.0.0.1:8080",
		"127.0.0.1:9000": "127.0.0.1:9000",
		"10.1.2.3:80":    "10.1.2.3:80",
		"[::1]:8080":     "[::1]:8080",
	} {
		if got := loopbackIfUnspecified(in); got != want {
			t.Errorf("loopbackIfUnspecified(%q) = %q, want %q", in, got, want)
		}
	}
}
