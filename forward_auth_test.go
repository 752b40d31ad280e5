package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/config"
)

// The shipped forward-auth configurations (examples/forward-auth) run
// against the real servers here, changed only in their addresses and paths:
// the keygate, API and listen addresses of the files are replaced with
// free ports on 127.0.0.1.
const (
	exampleKeygate  = "127.0.0.1:8080"
	exampleUpstream = "127.0.0.1:3000"
)

// needBinary returns the path of a server binary, skipping the test when it
// is missing, or failing it under CI, which installs it (.ci/run).
func needBinary(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: CI installs it (apt-get install %s, see .ci/run)", name, pkg)
	}
	t.Skipf("%s not found: install the Debian package %s to run this test", name, pkg)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readExample returns a shipped file with its example addresses replaced,
// failing if one of them is missing (so that the test follows the file).
func readExample(t *testing.T, name string, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("examples", "forward-auth", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("%s no longer contains %q", name, replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	return s
}

// identityEcho is the API behind the proxy: it counts requests and answers
// with the headers it received.
type identityEcho struct {
	srv   *httptest.Server
	count atomic.Int64
}

func newIdentityEcho(t *testing.T) *identityEcho {
	e := &identityEcho{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.count.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "uri": r.RequestURI, "headers": r.Header})
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// startForwardAuthKeygate runs keygate from examples/forward-auth/keygate.yaml
// with free ports, a temporary database and the given forward_auth.limited_status.
func startForwardAuthKeygate(t *testing.T, limitedStatus int) *App {
	t.Helper()
	yaml := readExample(t, "keygate.yaml",
		`listen: "127.0.0.1:8080"`, `listen: "127.0.0.1:0"`,
		`listen: "127.0.0.1:9080"`, `listen: "127.0.0.1:0"`,
		`path: "keygate.db"`, fmt.Sprintf("path: %q", filepath.Join(t.TempDir(), "keygate.db")),
		"limited_status: 429", fmt.Sprintf("limited_status: %d", limitedStatus),
	)
	yaml += "\nusage:\n  flush_interval: 50ms\nlog:\n  level: warn\n"
	cfg, err := config.Parse(yaml, []string{"KEYGATE_ADMIN_TOKEN=" + testAdminToken})
	if err != nil {
		t.Fatal(err)
	}
	app := NewApp(cfg, io.Discard)
	if err := app.Open(context.Background()); err != nil {
		app.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

// startServer runs cmd until the test ends and waits for addr to accept.
func startServer(t *testing.T, cmd *exec.Cmd, addr, logPath string) {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		out.Close()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			b, _ := os.ReadFile(out.Name())
			l, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited: %s\n%s", cmd.Path, b, l)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s", cmd.Path, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startNginx runs nginx with examples/forward-auth/nginx.conf included in a
// minimal main configuration whose files all live in a temporary directory.
func startNginx(t *testing.T, keygate, upstream string) string {
	t.Helper()
	bin := needBinary(t, "nginx", "nginx-light")
	dir := t.TempDir()
	addr := freeAddr(t)
	site := readExample(t, "nginx.conf",
		"server "+exampleKeygate+";", "server "+keygate+";",
		"server "+exampleUpstream+";", "server "+upstream+";",
		"listen 80;", "listen "+addr+";",
	)
	if err := os.WriteFile(filepath.Join(dir, "keygate.conf"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	main := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/keygate.conf;
}
`, dir)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "error.log")
	if out, err := exec.Command(bin, "-t", "-p", dir, "-c", conf, "-e", logPath).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	startServer(t, exec.Command(bin, "-p", dir, "-c", conf, "-e", logPath), addr, logPath)
	return addr
}

// startCaddy runs caddy with examples/forward-auth/Caddyfile, its admin
// endpoint off and its state in a temporary directory.
func startCaddy(t *testing.T, keygate, upstream string) string {
	t.Helper()
	bin := needBinary(t, "caddy", "caddy")
	dir := t.TempDir()
	addr := freeAddr(t)
	site := readExample(t, "Caddyfile",
		exampleKeygate, keygate,
		exampleUpstream, upstream,
		":80 {", "http://"+addr+" {",
	)
	conf := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(conf, []byte("{\n\tadmin off\n}\n\n"+site), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	startServer(t, cmd, addr, "")
	return addr
}

func TestForwardAuthNginx(t *testing.T) {
	api := newIdentityEcho(t)
	app := startForwardAuthKeygate(t, 403)
	addr := startNginx(t, app.ProxyAddr(), api.srv.Listener.Addr().String())
	checkForwardAuth(t, app, api, "http://"+addr, true)
}

// When keygate cannot be asked, nginx answers keygate's 503 JSON, not its
// own 500 page.
func TestForwardAuthNginxKeygateDown(t *testing.T) {
	api := newIdentityEcho(t)
	addr := startNginx(t, freeAddr(t), api.srv.Listener.Addr().String())
	resp, err := http.Get("http://" + addr + "/v1/things")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := &fwdResponse{resp.StatusCode, resp.Header, body}
	r.apiError(t, 503, "store_unavailable")
	if api.count.Load() != 0 {
		t.Error("the API saw the request")
	}
}

func TestForwardAuthCaddy(t *testing.T) {
	api := newIdentityEcho(t)
	app := startForwardAuthKeygate(t, 429)
	addr := startCaddy(t, app.ProxyAddr(), api.srv.Listener.Addr().String())
	checkForwardAuth(t, app, api, "http://"+addr, false)
}

// fwdResponse is one answer through the reverse proxy.
type fwdResponse struct {
	status int
	header http.Header
	body   []byte
}

// seen returns the headers the API received, from its echo.
func (r *fwdResponse) seen(t *testing.T) http.Header {
	t.Helper()
	var e struct {
		Headers http.Header `json:"headers"`
	}
	if r.status != 200 {
		t.Fatalf("status %d, want 200 from the API: %s", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("body %q is not the API's echo: %v", r.body, err)
	}
	return e.Headers
}

// apiError checks a keygate JSON error answer and returns it.
func (r *fwdResponse) apiError(t *testing.T, status int, code string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	if m["error"] != code || m["message"] == "" {
		t.Fatalf("body %s, want error %q with a message", r.body, code)
	}
	return m
}

// checkForwardAuth runs the same checks through any of the reverse proxies.
// rateLimitHeaders says whether the proxy's configuration passes keygate's
// RateLimit-* headers on to allowed requests' responses.
func checkForwardAuth(t *testing.T, app *App, api *identityEcho, base string, rateLimitHeaders bool) {
	c := newClient(t, app)
	c.must(200, "PUT", "/v1/users/alice", map[string]any{"email": "alice@example.com", "rate_limit": map[string]any{"limit": 3, "window": "1m"}})
	key := c.must(201, "POST", "/v1/keys", map[string]any{"user_id": "alice", "metadata": map[string]any{"plan": "pro"}})
	id, token := key["id"].(string), key["token"].(string)

	do := func(method, path string, headers ...string) *fwdResponse {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Add(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return &fwdResponse{resp.StatusCode, resp.Header, body}
	}
	spoofs := []string{"X-Keygate-User-Id: admin", "X-Keygate-Org-Id: root", "X-Keygate-Org-Name: Root", "X-Keygate-Key-Id: forged"}

	// 1. A valid key: the API sees keygate's identity headers, and never the
	// client's own copies of them, nor the key.
	r := do("POST", "/v1/things?x=1", append([]string{"Authorization: Bearer " + token}, spoofs...)...)
	h := r.seen(t)
	for name, want := range map[string]string{
		"X-Keygate-Key-Id": id, "X-Keygate-Key-Type": "personal", "X-Keygate-User-Id": "alice",
		"X-Keygate-User-Email": "alice@example.com", "X-Keygate-Metadata": `{"plan":"pro"}`,
		"X-Keygate-Org-Id": "", "X-Keygate-Org-Name": "", "Authorization": "",
	} {
		if got := h.Values(name); want == "" && strings.Join(got, "") != "" || want != "" && (len(got) != 1 || got[0] != want) {
			t.Errorf("API saw %s = %q, want %q", name, got, want)
		}
	}
	if rateLimitHeaders && (r.header.Get("RateLimit-Limit") != "3" || r.header.Get("RateLimit-Remaining") != "2") {
		t.Errorf("RateLimit headers of an allowed request: %v", r.header)
	}

	// 2. Missing and invalid keys: keygate's 401 JSON; the API sees nothing.
	before := api.count.Load()
	r = do("GET", "/v1/things", spoofs...)
	r.apiError(t, 401, "missing_api_key")
	if got := r.header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != `Bearer realm="keygate"` {
		t.Errorf("missing key: WWW-Authenticate = %q", got)
	}
	r = do("GET", "/v1/things", "X-API-Key: kgp_not_a_real_key")
	r.apiError(t, 401, "invalid_api_key")
	if api.count.Load() != before {
		t.Errorf("the API saw %d refused requests", api.count.Load()-before)
	}

	// 3. A public path passes without a key, and without forged identity.
	h = do("GET", "/health", spoofs...).seen(t)
	for _, name := range []string{"X-Keygate-User-Id", "X-Keygate-Org-Id", "X-Keygate-Key-Id"} {
		if v := strings.Join(h.Values(name), ""); v != "" {
			t.Errorf("public path: API saw %s = %q", name, v)
		}
	}

	// 4. Over the limit (3 a minute, 1 used): 429 with Retry-After.
	do("GET", "/v1/a", "X-API-Key: "+token).seen(t)
	do("GET", "/v1/b?y=2", "Authorization: Bearer "+token).seen(t)
	before = api.count.Load()
	r = do("GET", "/v1/c", "Authorization: Bearer "+token)
	m := r.apiError(t, 429, "rate_limited")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" || fmt.Sprint(m["wait_seconds"]) != ra {
		t.Errorf("Retry-After = %q, wait_seconds = %v: want the same positive number", ra, m["wait_seconds"])
	}
	if api.count.Load() != before {
		t.Error("the API saw a rate-limited request")
	}
	if rateLimitHeaders && r.header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("RateLimit headers of a rate-limited request: %v", r.header)
	}
	if n := len(r.header.Values("Retry-After")); n != 1 {
		t.Errorf("%d Retry-After headers", n)
	}

	// 5. The self-service pages are keygate's, through the same proxy.
	before = api.count.Load()
	r = do("GET", "/_keygate/portal/")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || api.count.Load() != before {
		t.Errorf("portal: status %d, Content-Type %q, API saw it: %v", r.status, ct, api.count.Load() != before)
	}

	// 6. Usage counts each request once: 3 allowed, 1 rate limited.
	deadline := time.Now().Add(5 * time.Second)
	for {
		u := c.must(200, "GET", "/v1/usage?key_id="+id+"&interval=hour", nil)
		var allowed, limited float64
		for _, p := range u["points"].([]any) {
			allowed += p.(map[string]any)["allowed"].(float64)
			limited += p.(map[string]any)["rate_limited"].(float64)
		}
		if allowed == 3 && limited == 1 {
			break
		}
		if time.Now().After(deadline) || allowed > 3 || limited > 1 {
			t.Fatalf("usage: %v allowed, %v rate limited; want 3 and 1", allowed, limited)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The README shows the shipped forward-auth configurations verbatim, so what
// an operator copies from it is what these tests run.
func TestREADMEShowsForwardAuthConfigs(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nginx.conf", "Caddyfile", "traefik.yml", "envoy.yaml"} {
		b, err := os.ReadFile(filepath.Join("examples", "forward-auth", name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readme), string(b)) {
			t.Errorf("README.md does not show examples/forward-auth/%s as shipped", name)
		}
	}
}
