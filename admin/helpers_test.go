package admin_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/admin/openapicheck"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
	"github.com/keygate/keygate/quota"
	"github.com/keygate/keygate/sqlite"
)

const testToken = "test-admin-token"

// t0 is the tests' "now": a whole hour, so hourly usage ranges align.
var t0 = time.Unix(1_800_000_000, 0)

// clock is a settable clock, safe for concurrent use.
type clock struct{ unix atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(c.unix.Load(), 0) }
func (c *clock) Set(t time.Time)         { c.unix.Store(t.Unix()) }
func (c *clock) Advance(d time.Duration) { c.unix.Add(int64(d / time.Second)) }

// testChecker validates through the service; limited and fail make it
// answer as an over-limit owner or a failing store would.
type testChecker struct {
	svc     *keys.Service
	limited atomic.Bool
	fail    atomic.Bool
	quota   atomic.Pointer[quota.Result] // the quota result to answer; nil: none
	cost    atomic.Int64                 // the last cost asked for
}

func (c *testChecker) CheckCost(ctx context.Context, token string, cost int64) (*keys.Identity, limiter.Result, quota.Result, error) {
	c.cost.Store(cost)
	if c.fail.Load() {
		return nil, limiter.Result{}, quota.Result{}, errors.New("sqlite: disk I/O error")
	}
	id, err := c.svc.Validate(ctx, token)
	if err != nil {
		return nil, limiter.Result{}, quota.Result{}, err
	}
	if c.limited.Load() {
		return id, limiter.Result{Limit: 10, Reset: 3 * time.Second, RetryAfter: 1500 * time.Millisecond}, quota.Result{}, limiter.ErrLimited
	}
	rate := limiter.Result{Allowed: true, Limit: 10, Remaining: 9, Reset: 5500 * time.Millisecond}
	if q := c.quota.Load(); q != nil {
		if !q.Allowed {
			return id, rate, *q, quota.ErrExceeded
		}
		return id, rate, *q, nil
	}
	return id, rate, quota.Result{}, nil
}

// testLinker mints fake portal links and counts its calls.
type testLinker struct {
	mu    sync.Mutex
	calls []string
	now   func() time.Time
}

func (l *testLinker) NewLink(ctx context.Context, userID, orgID string, ttl time.Duration) (string, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, userID+"/"+orgID+"/"+ttl.String())
	return "http://127.0.0.1:8080/_keygate/portal/login?t=abc", l.now().Add(ttl).Unix(), nil
}

func (l *testLinker) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

// env is an admin Server on a real listener over a real SQLite store.
type env struct {
	t       *testing.T
	url     string
	dbPath  string
	store   keys.Store
	svc     *keys.Service
	srv     *admin.Server
	clock   *clock
	checker *testChecker
	linker  *testLinker
	ready   atomic.Value // error or nil, for /readyz
}

// newEnv starts a server; mod may change its options before New.
func newEnv(t *testing.T, mod func(*admin.Options)) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, dbPath: filepath.Join(t.TempDir(), "keygate.db"), clock: &clock{}}
	e.clock.Set(t0)
	var err error
	if e.store, err = sqlite.Open(ctx, e.dbPath, sqlite.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	tokens, err := keys.NewTokens("kg")
	if err != nil {
		t.Fatal(err)
	}
	e.svc, err = keys.NewService(ctx, e.store, tokens, keys.Options{
		Now: e.clock.Now,
		Expirations: []keys.Expiration{
			{Name: "2w", After: 14 * 24 * time.Hour}, {Name: "1mo", After: 30 * 24 * time.Hour}, {Name: "never", Never: true},
		},
		DefaultExpiration: "never",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.checker = &testChecker{svc: e.svc}
	e.linker = &testLinker{now: e.clock.Now}
	opts := admin.Options{
		Service:     e.svc,
		Token:       testToken,
		Checker:     e.checker,
		Usage:       e.store,
		Metrics:     func(w io.Writer) { io.WriteString(w, "# TYPE keygate_up gauge\nkeygate_up 1\n") },
		Ready:       func(context.Context) error { err, _ := e.ready.Load().(error); return err },
		PortalLinks: e.linker,
		Now:         e.clock.Now,
		// Tests send wrong tokens on purpose; TestAuthThrottle sets its own.
		Throttle: admin.NewAuthThrottle(1<<30, time.Minute, e.clock.Now),
	}
	if mod != nil {
		mod(&opts)
	}
	e.srv = admin.New(opts)
	// Every exchange of the tests is validated against the OpenAPI document.
	ts := httptest.NewServer(openapicheck.Middleware(t, e.srv.Handler()))
	t.Cleanup(ts.Close)
	e.url = ts.URL
	return e
}

// resp is an answer, read whole.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// obj decodes the answer as a JSON object.
func (r *resp) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// callAs sends a request with Authorization set to auth (none when "").
func (e *env) callAs(auth, method, path, body string) *resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &resp{status: res.StatusCode, header: res.Header, body: b}
}

// call sends an authorized request.
func (e *env) call(method, path, body string) *resp {
	e.t.Helper()
	return e.callAs("Bearer "+testToken, method, path, body)
}

// must sends an authorized request, fails unless it answers want and
// returns the answer as a JSON object (nil for 204).
func (e *env) must(want int, method, path, body string) map[string]any {
	e.t.Helper()
	r := e.call(method, path, body)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	if r.status == http.StatusNoContent {
		if len(r.body) != 0 {
			e.t.Fatalf("%s %s: 204 with a body: %s", method, path, r.body)
		}
		return nil
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	return r.obj(e.t)
}

func (e *env) user(id string) {
	e.t.Helper()
	e.must(200, "PUT", "/v1/users/"+id, `{"email": "`+id+`@example.com"}`)
}

func (e *env) org(id string, members ...string) {
	e.t.Helper()
	e.must(200, "PUT", "/v1/orgs/"+id, `{"name": "Org `+id+`"}`)
	for _, m := range members {
		e.must(200, "PUT", "/v1/orgs/"+id+"/members/"+m, `{"role": "Admin"}`)
	}
}

// key creates a key and returns its id and token.
func (e *env) key(body string) (id, token string) {
	e.t.Helper()
	m := e.must(201, "POST", "/v1/keys", body)
	return m["id"].(string), m["token"].(string)
}

// dump returns every row of every table, read through a separate
// read-only connection, so tests can show a call changed nothing.
func (e *env) dump() string {
	e.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+e.dbPath+"?mode=ro")
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		e.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 5 {
		e.t.Fatalf("dump: only tables %v", tables)
	}
	var b strings.Builder
	for _, table := range tables {
		fmt.Fprintf(&b, "== %s\n", table)
		rows, err := db.Query(`SELECT * FROM ` + table + ` ORDER BY 1, 2`)
		if err != nil {
			e.t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatal(err)
			}
			fmt.Fprintf(&b, "%v\n", vals)
		}
		if err := rows.Err(); err != nil {
			e.t.Fatal(err)
		}
		rows.Close()
	}
	return b.String()
}

// num returns a JSON number field as int64.
func num(t *testing.T, m map[string]any, field string) int64 {
	t.Helper()
	f, ok := m[field].(float64)
	if !ok {
		t.Fatalf("%s = %#v, want a number (in %v)", field, m[field], m)
	}
	return int64(f)
}

// list returns a JSON array field, failing when it is absent or null.
func list(t *testing.T, m map[string]any, field string) []any {
	t.Helper()
	v, ok := m[field]
	if !ok {
		t.Fatalf("%s missing in %v", field, m)
	}
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("%s = %#v, want an array", field, v)
	}
	return l
}

// cursor returns next_cursor, failing when it is absent.
func cursor(t *testing.T, m map[string]any) string {
	t.Helper()
	c, ok := m["next_cursor"].(string)
	if !ok {
		t.Fatalf("next_cursor = %#v, want a string", m["next_cursor"])
	}
	return c
}

// decodeAndClose decodes a JSON answer into v and closes its body.
func decodeAndClose(res *http.Response, v any) error {
	defer res.Body.Close()
	return json.NewDecoder(res.Body).Decode(v)
}
