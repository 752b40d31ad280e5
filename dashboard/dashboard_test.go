package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/sqlite"
)

const dashTestToken = "dash-test-token-0123456789"

type dashClock struct{ unix atomic.Int64 }

func (c *dashClock) Now() time.Time { return time.Unix(c.unix.Load(), 0) }

type dashEnv struct {
	t     *testing.T
	store keys.Store
	svc   *keys.Service
	url   string
	clock *dashClock
}

func newDashEnv(t *testing.T) *dashEnv { t.Helper(); return newDashEnvWith(t, nil) }

// newDashEnvWith is newDashEnv with mod changing the dashboard's options.
func newDashEnvWith(t *testing.T, mod func(*Options)) *dashEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tok, err := keys.NewTokens("kg")
	if err != nil {
		t.Fatal(err)
	}
	e := &dashEnv{t: t, store: st, clock: &dashClock{}}
	e.clock.unix.Store(time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC).Unix())
	e.svc, err = keys.NewService(ctx, st, tok, keys.Options{
		Now:         e.clock.Now,
		Expirations: []keys.Expiration{{Name: "2w", After: 14 * 24 * time.Hour}, {Name: "never", Never: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Admin.Token = dashTestToken
	srv := admin.New(admin.Options{Service: e.svc, Token: dashTestToken, Usage: st, Now: e.clock.Now, Throttle: admin.NewAuthThrottle(1<<30, time.Minute, e.clock.Now)})
	dopts := Options{Service: e.svc, Store: st, Token: dashTestToken, Settings: cfg.Redacted(), Now: e.clock.Now}
	if mod != nil {
		mod(&dopts)
	}
	New(dopts).Register(srv.Mux())
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e.url = ts.URL
	return e
}

type dashClient struct {
	e    *dashEnv
	c    *http.Client
	csrf string
}

type dashResp struct {
	status int
	header http.Header
	body   string
}

var (
	dashCSRFRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	dashFormRE = regexp.MustCompile(`name="form" value="([^"]+)"`)
)

func (e *dashEnv) client() *dashClient {
	jar, _ := cookiejar.New(nil)
	return &dashClient{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (c *dashClient) do(req *http.Request) dashResp {
	c.e.t.Helper()
	resp, err := c.c.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := dashCSRFRE.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return dashResp{resp.StatusCode, resp.Header, string(b)}
}

func (c *dashClient) get(path string) dashResp {
	c.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.e.url+path, nil)
	return c.do(req)
}

// post sends a form; the page's CSRF token is added unless vals has one.
func (c *dashClient) post(path string, vals url.Values, header ...string) dashResp {
	c.e.t.Helper()
	if vals == nil {
		vals = url.Values{}
	}
	if _, ok := vals["csrf"]; !ok {
		vals.Set("csrf", c.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, c.e.url+path, strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return c.do(req)
}

// login signs in through the form and returns the overview.
func (e *dashEnv) login() (*dashClient, dashResp) {
	e.t.Helper()
	c := e.client()
	form := dashFormRE.FindStringSubmatch(c.get("/login").body)
	if form == nil {
		e.t.Fatal("no login form")
	}
	r := c.post("/login", url.Values{"form": {form[1]}, "token": {dashTestToken}, "next": {"/"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		e.t.Fatalf("login: %d %v\n%s", r.status, r.header, r.body)
	}
	home := c.get("/")
	if home.status != http.StatusOK {
		e.t.Fatalf("overview: %d\n%s", home.status, home.body)
	}
	return c, home
}

func TestDashLogin(t *testing.T) {
	e := newDashEnv(t)
	c := e.client()
	r := c.get("/keys?type=org")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login?next=%2Fkeys%3Ftype%3Dorg" {
		t.Fatalf("signed out: %d %q", r.status, r.header.Get("Location"))
	}
	page := c.get("/login?next=%2Fkeys%3Ftype%3Dorg")
	form := dashFormRE.FindStringSubmatch(page.body)[1]
	if !strings.Contains(page.body, `value="/keys?type=org"`) {
		t.Errorf("next not kept:\n%s", page.body)
	}
	if r := c.post("/login", url.Values{"form": {form}, "token": {"wrong"}}); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "not the admin token") {
		t.Errorf("wrong token: %d", r.status)
	}
	// The browser keeps its form token across forms (a stray request
	// through the login page must not break the form on screen).
	if again := dashFormRE.FindStringSubmatch(c.get("/login").body)[1]; again != form {
		t.Errorf("form token changed: %q, then %q", form, again)
	}
	if r := c.get("/favicon.ico"); r.status != http.StatusNotFound {
		t.Errorf("favicon: %d", r.status)
	}
	if r := c.post("/login", url.Values{"token": {dashTestToken}}); r.status != http.StatusForbidden {
		t.Errorf("login without form token: %d", r.status)
	}
	if r := e.client().post("/login", url.Values{"form": {form}, "token": {dashTestToken}}); r.status != http.StatusForbidden {
		t.Errorf("login with another browser's form token: %d", r.status)
	}
	form = dashFormRE.FindStringSubmatch(c.get("/login").body)[1]
	r = c.post("/login", url.Values{"form": {form}, "token": {dashTestToken}, "next": {"/keys?type=org"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/keys?type=org" {
		t.Fatalf("login: %d %q", r.status, r.header.Get("Location"))
	}
	var session string
	for _, sc := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, dashCookie+"=") {
			session = sc
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"} {
		if !strings.Contains(session, want) {
			t.Errorf("session cookie %q lacks %s", session, want)
		}
	}
	if r := c.get("/keys?type=org"); r.status != http.StatusOK {
		t.Fatalf("signed in: %d", r.status)
	}

	// The session cookie is no API credential.
	req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/keys", nil)
	if r := c.do(req); r.status != http.StatusUnauthorized {
		t.Errorf("API with the dashboard cookie: %d", r.status)
	}

	if r := c.post("/logout", url.Values{"csrf": {"nope"}}); r.status != http.StatusForbidden {
		t.Errorf("logout without CSRF: %d", r.status)
	}
	if r := c.post("/logout", nil); r.status != http.StatusSeeOther {
		t.Errorf("logout: %d", r.status)
	}
	if r := c.get("/"); r.status != http.StatusSeeOther {
		t.Errorf("after logout: %d", r.status)
	}
}

func TestDashLoginNextIsLocal(t *testing.T) {
	e := newDashEnv(t)
	for _, next := range []string{"//evil.example/x", "https://evil.example", `/\evil.example`, "evil"} {
		c := e.client()
		form := dashFormRE.FindStringSubmatch(c.get("/login").body)[1]
		r := c.post("/login", url.Values{"form": {form}, "token": {dashTestToken}, "next": {next}})
		if r.header.Get("Location") != "/" {
			t.Errorf("next %q: Location %q", next, r.header.Get("Location"))
		}
	}
}

func TestDashSessionExpires(t *testing.T) {
	e := newDashEnv(t)
	c, _ := e.login()
	e.clock.unix.Add(int64(12 * time.Hour / time.Second))
	if r := c.get("/"); r.status != http.StatusSeeOther {
		t.Errorf("after 12h: %d", r.status)
	}
}

var dashTokenRE = regexp.MustCompile(`kg[pog]_[A-Za-z0-9]{20,}`)

func TestDashKeyLifecycle(t *testing.T) {
	e := newDashEnv(t)
	ctx := context.Background()
	if _, err := e.svc.UpsertUser(ctx, keys.UserInput{ID: "alice", Email: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	c, _ := e.login()
	if r := c.get("/keys/new?user_id=alice"); r.status != http.StatusOK || !strings.Contains(r.body, `value="alice"`) {
		t.Fatalf("new key form: %d", r.status)
	}
	r := c.post("/keys", url.Values{"type": {"personal"}, "user_id": {"alice"}, "display_name": {"billing sync"},
		"expires_in": {"2w"}, "metadata": {`{"plan": "pro"}`}})
	token := dashTokenRE.FindString(r.body)
	if r.status != http.StatusCreated || token == "" || !strings.Contains(r.body, "You will not see it again") {
		t.Fatalf("create: %d\n%s", r.status, r.body)
	}
	id, err := e.svc.Validate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	k := id.Key
	if k.DisplayName != "billing sync" || string(k.Metadata) != `{"plan":"pro"}` || k.ExpiresAt == nil {
		t.Errorf("key = %+v", k)
	}

	list := c.get("/keys")
	if !strings.Contains(list.body, `data-key-id="`+k.ID+`"`) || strings.Contains(list.body, token) {
		t.Fatalf("list lacks the key or shows the token")
	}
	for _, q := range []string{"q=" + url.QueryEscape(k.Display), "q=" + k.ID, "q=billing", "type=personal", "user_id=alice"} {
		if r := c.get("/keys?" + q); !strings.Contains(r.body, `data-key-id="`+k.ID+`"`) {
			t.Errorf("filter %s misses the key", q)
		}
	}
	for _, q := range []string{"q=nomatch", "type=org", "status=archived", "user_id=bob"} {
		if r := c.get("/keys?" + q); strings.Contains(r.body, `data-key-id="`+k.ID+`"`) {
			t.Errorf("filter %s shows the key", q)
		}
	}
	if r := c.get("/keys?type=bogus"); r.status != http.StatusBadRequest {
		t.Errorf("bad type filter: %d", r.status)
	}

	page := c.get("/keys/" + k.ID)
	for _, want := range []string{"billing sync", k.Display, "&#34;plan&#34;: &#34;pro&#34;", "by <code>admin</code>", "api_key.created",
		`<svg class="chart"`, "2026-03-28 12:00 UTC", `action="/keys/` + k.ID + `/archive"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("key page lacks %q", want)
		}
	}
	if strings.Contains(page.body, token) {
		t.Errorf("key page shows the token")
	}
	for _, rng := range []string{"1h", "7d", "30d"} {
		if r := c.get("/keys/" + k.ID + "?range=" + rng); r.status != http.StatusOK || !strings.Contains(r.body, `<svg class="chart"`) {
			t.Errorf("range %s: %d", rng, r.status)
		}
	}

	if r := c.post("/keys/"+k.ID+"/archive", nil); r.status != http.StatusSeeOther {
		t.Fatalf("archive: %d", r.status)
	}
	if r := c.get("/keys/" + k.ID); !strings.Contains(r.body, "Archived billing sync") || !strings.Contains(r.body, "api_key.archived") {
		t.Errorf("after archive:\n%s", r.body)
	}
	if _, err := e.svc.Validate(ctx, token); !errors.Is(err, keys.ErrInvalidKey) {
		t.Errorf("archived key validates: %v", err)
	}

	confirm := c.get("/keys/" + k.ID + "/delete")
	if !strings.Contains(confirm.body, "cannot be undone") || !strings.Contains(confirm.body, "usage data") || !strings.Contains(confirm.body, "audit events") {
		t.Errorf("confirmation does not say what is lost:\n%s", confirm.body)
	}
	if r := c.post("/keys/"+k.ID+"/delete", nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/keys" {
		t.Fatalf("delete: %d", r.status)
	}
	if _, err := e.svc.GetKey(ctx, k.ID); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("deleted key: %v", err)
	}
	if r := c.get("/keys/" + k.ID); r.status != http.StatusNotFound {
		t.Errorf("deleted key page: %d", r.status)
	}
	if r := c.get("/audit?key_id=" + k.ID); !strings.Contains(r.body, "api_key.deleted") || !strings.Contains(r.body, "api_key.created") {
		t.Errorf("audit trail gone")
	}
}

func TestDashCreateInvalid(t *testing.T) {
	e := newDashEnv(t)
	c, _ := e.login()
	r := c.post("/keys", url.Values{"type": {"personal"}, "user_id": {"ghost"}, "metadata": {"[1]"}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "must be a JSON object") || dashTokenRE.MatchString(r.body) {
		t.Errorf("invalid create: %d\n%s", r.status, r.body)
	}
	if !strings.Contains(r.body, "[1]</textarea>") {
		t.Errorf("form input not kept")
	}
}

func TestDashCSRF(t *testing.T) {
	e := newDashEnv(t)
	ctx := context.Background()
	e.svc.UpsertUser(ctx, keys.UserInput{ID: "alice"})
	k, _, err := e.svc.CreateKey(ctx, keys.CreateKeyInput{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := e.login()
	for _, tt := range []struct {
		path   string
		vals   url.Values
		header []string
	}{
		{"/keys/" + k.ID + "/archive", url.Values{"csrf": nil}, nil},
		{"/keys/" + k.ID + "/archive", url.Values{"csrf": {"forged"}}, nil},
		{"/keys/" + k.ID + "/delete", url.Values{"csrf": nil}, nil},
		{"/users/alice/block", url.Values{"csrf": {strings.Repeat("A", 43)}}, nil},
		{"/keys", url.Values{"csrf": nil, "user_id": {"alice"}}, nil},
		{"/keys/" + k.ID + "/delete", nil, []string{"Sec-Fetch-Site", "cross-site"}},
		{"/users/alice/block", nil, []string{"Origin", "http://evil.example"}},
	} {
		if r := c.post(tt.path, tt.vals, tt.header...); r.status != http.StatusForbidden {
			t.Errorf("POST %s %v %v: %d, want 403", tt.path, tt.vals, tt.header, r.status)
		}
	}
	got, err := e.svc.GetKey(ctx, k.ID)
	if err != nil || got.Archived() {
		t.Errorf("key changed: %+v %v", got, err)
	}
	if u, _ := e.svc.GetUser(ctx, "alice"); !u.Enabled {
		t.Errorf("user blocked")
	}
	if ks, _, _ := e.svc.ListKeys(ctx, keys.KeyFilter{Status: "all"}); len(ks) != 1 {
		t.Errorf("%d keys", len(ks))
	}
	// Signed out, a post is refused too.
	if r := e.client().post("/keys/"+k.ID+"/archive", url.Values{"csrf": {c.csrf}}); r.status != http.StatusUnauthorized {
		t.Errorf("signed-out post: %d", r.status)
	}
}

func TestDashEscaping(t *testing.T) {
	e := newDashEnv(t)
	ctx := context.Background()
	const evil = `<script>alert(1)</script>`
	e.svc.UpsertUser(ctx, keys.UserInput{ID: "alice", Email: evil, Metadata: []byte(`{"n":"` + evil + `"}`)})
	e.svc.UpsertOrg(ctx, keys.OrgInput{ID: "acme", Name: evil})
	e.svc.PutMember(ctx, "acme", "alice", evil)
	k, _, err := e.svc.CreateKey(ctx, keys.CreateKeyInput{UserID: "alice", DisplayName: evil, Metadata: []byte(`{"x":"` + evil + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := e.login()
	for _, p := range []string{"/keys", "/keys/" + k.ID, "/keys/" + k.ID + "/delete", "/users", "/users/alice", "/orgs", "/orgs/acme", "/audit"} {
		r := c.get(p)
		if r.status != http.StatusOK {
			t.Errorf("%s: %d", p, r.status)
		}
		if strings.Contains(r.body, "<script>alert") {
			t.Errorf("%s renders the script unescaped", p)
		}
		if !strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") && !strings.Contains(r.body, `\u003cscript\u003e`) {
			t.Errorf("%s lacks the escaped text", p)
		}
	}
}

func TestDashUsersAndOrgs(t *testing.T) {
	e := newDashEnv(t)
	ctx := context.Background()
	e.svc.UpsertUser(ctx, keys.UserInput{ID: "alice", Email: "alice@example.com", RateLimit: &keys.RateLimit{Limit: 100, Window: time.Minute}})
	e.svc.UpsertOrg(ctx, keys.OrgInput{ID: "acme", Name: "Acme Inc"})
	e.svc.PutMember(ctx, "acme", "alice", "Owner")
	pk, ptok, _ := e.svc.CreateKey(ctx, keys.CreateKeyInput{UserID: "alice", DisplayName: "laptop"})
	ok, _, _ := e.svc.CreateKey(ctx, keys.CreateKeyInput{OrgID: "acme", UserID: "alice", DisplayName: "deploy"})
	now := e.clock.Now().Unix()
	e.store.AddUsage(ctx, []keys.UsageCount{{KeyID: pk.ID, Minute: now - 60, Allowed: 17, RateLimited: 3}, {KeyID: ok.ID, Minute: now - 60, Allowed: 5}})
	c, _ := e.login()

	if r := c.get("/users"); !strings.Contains(r.body, `href="/users/alice"`) {
		t.Errorf("user list")
	}
	if r := c.get("/users?id=alice"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/users/alice" {
		t.Errorf("open user: %d %q", r.status, r.header.Get("Location"))
	}
	u := c.get("/users/alice")
	for _, want := range []string{"alice@example.com", "100 requests per 1m", "Acme Inc</a> (Owner)", `data-key-id="` + pk.ID + `"`,
		"17 allowed, 3 rate limited", "Block user"} {
		if !strings.Contains(u.body, want) {
			t.Errorf("user page lacks %q", want)
		}
	}
	if strings.Contains(u.body, `data-key-id="`+ok.ID) {
		t.Errorf("user page lists the org key among personal keys")
	}
	if r := c.post("/users/alice/block", nil); r.status != http.StatusSeeOther {
		t.Fatalf("block: %d", r.status)
	}
	if _, err := e.svc.Validate(ctx, ptok); !errors.Is(err, keys.ErrInvalidKey) {
		t.Errorf("blocked user's key validates: %v", err)
	}
	if r := c.get("/users/alice"); !strings.Contains(r.body, "Blocked alice") || !strings.Contains(r.body, "Unblock user") {
		t.Errorf("after block:\n%s", r.body)
	}
	if r := c.post("/users/alice/unblock", nil); r.status != http.StatusSeeOther {
		t.Fatalf("unblock: %d", r.status)
	}
	if _, err := e.svc.Validate(ctx, ptok); err != nil {
		t.Errorf("unblocked user's key: %v", err)
	}
	ev, _ := e.svc.ListAudit(ctx, keys.AuditFilter{UserID: "alice", Action: keys.ActionUserBlocked})
	if len(ev) != 1 || ev[0].Actor != "admin" {
		t.Errorf("audit = %+v", ev)
	}
	if r := c.get("/users/nobody"); r.status != http.StatusNotFound {
		t.Errorf("unknown user: %d", r.status)
	}
	if r := c.post("/users/nobody/block", nil); r.status != http.StatusNotFound {
		t.Errorf("block unknown user: %d", r.status)
	}

	o := c.get("/orgs/acme")
	for _, want := range []string{"Acme Inc", `href="/users/alice"`, "Owner", `data-key-id="` + ok.ID + `"`, "5 allowed, 0 rate limited"} {
		if !strings.Contains(o.body, want) {
			t.Errorf("org page lacks %q", want)
		}
	}
	if r := c.get("/orgs"); !strings.Contains(r.body, `href="/orgs/acme"`) {
		t.Errorf("org list")
	}
	if r := c.get("/orgs/ghost"); r.status != http.StatusNotFound {
		t.Errorf("unknown org: %d", r.status)
	}
}

func TestDashOverview(t *testing.T) {
	e := newDashEnv(t)
	ctx := context.Background()
	e.svc.UpsertUser(ctx, keys.UserInput{ID: "alice"})
	e.svc.UpsertOrg(ctx, keys.OrgInput{ID: "acme", Name: "Acme"})
	a, _, _ := e.svc.CreateKey(ctx, keys.CreateKeyInput{UserID: "alice", DisplayName: "busy key"})
	o, _, _ := e.svc.CreateKey(ctx, keys.CreateKeyInput{OrgID: "acme"})
	g, _, _ := e.svc.CreateKey(ctx, keys.CreateKeyInput{})
	e.svc.ArchiveKey(ctx, g.ID)
	now := e.clock.Now().Unix()
	e.store.AddUsage(ctx, []keys.UsageCount{
		{KeyID: a.ID, Minute: now - 3600, Allowed: 30, RateLimited: 4},
		{KeyID: o.ID, Minute: now - 60, Allowed: 8},
		{KeyID: g.ID, Minute: now - 7200, Allowed: 1},
	})
	_, home := e.login()
	for _, want := range []string{
		"All requests, last 24 hours: 39 allowed, 4 rate limited",
		`href="/keys?type=personal&amp;status=active">1</a>`,
		`href="/keys?type=generic&amp;status=archived">1</a>`,
		`<a href="/keys/` + a.ID + `">busy key (` + a.Display + `)</a></td><td class="num">30</td><td class="num">4</td>`,
		`<a href="/users/alice">alice</a>`,
		`<a href="/orgs/acme">acme</a>`,
	} {
		if !strings.Contains(home.body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
}

func TestDashTrafficAllKeys(t *testing.T) {
	e := newDashEnv(t)
	ctx := context.Background()
	now := e.clock.Now().Unix()
	var counts []keys.UsageCount
	for i := 0; i < 51; i++ {
		k, _, err := e.svc.CreateKey(ctx, keys.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, keys.UsageCount{KeyID: k.ID, Minute: now - 60, Allowed: int64(i + 1)})
	}
	e.store.AddUsage(ctx, counts)
	_, home := e.login()
	// Every key counts: 1+2+…+51 = 1326.
	if !strings.Contains(home.body, "Allowed (1.3k)") || !strings.Contains(home.body, "1.3k allowed") {
		t.Errorf("fallback chart:\n%s", home.body)
	}
}

func TestDashPaginationAndAudit(t *testing.T) {
	e := newDashEnv(t)
	ctx := context.Background()
	for i := 0; i < dashPageSize+5; i++ {
		if _, _, err := e.svc.CreateKey(ctx, keys.CreateKeyInput{DisplayName: fmt.Sprintf("k%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := e.login()
	rows := regexp.MustCompile(`data-key-id="`)
	p1 := c.get("/keys?type=generic")
	if n := len(rows.FindAllString(p1.body, -1)); n != dashPageSize {
		t.Fatalf("page 1: %d rows", n)
	}
	next := regexp.MustCompile(`href="(\?[^"]*cursor=[^"]*)" rel="next"`).FindStringSubmatch(p1.body)
	if next == nil || !strings.Contains(next[1], "type=generic") {
		t.Fatalf("no next link keeping the filter")
	}
	p2 := c.get("/keys" + strings.ReplaceAll(next[1], "&amp;", "&"))
	if n := len(rows.FindAllString(p2.body, -1)); n != 5 || !strings.Contains(p2.body, ">k00<") || strings.Contains(p2.body, `rel="next"`) {
		t.Errorf("page 2: %d rows", n)
	}

	a := c.get("/audit?action=api_key.created")
	if n := strings.Count(a.body, "<td>api_key.created</td>"); n != 55 {
		t.Errorf("audit filtered: %d created events", n)
	}
	if strings.Contains(a.body, `rel="next"`) {
		t.Errorf("older link with all events shown")
	}
	if r := c.get("/audit?before=x"); r.status != http.StatusBadRequest {
		t.Errorf("bad before: %d", r.status)
	}
}

func TestDashSettings(t *testing.T) {
	e := newDashEnv(t)
	c, _ := e.login()
	r := c.get("/settings")
	if !strings.Contains(r.body, "<code>admin.token</code></td><td><code>[redacted]</code>") || strings.Contains(r.body, dashTestToken) {
		t.Errorf("settings:\n%s", r.body)
	}
	if !strings.Contains(r.body, "<code>portal.path</code></td><td><code>&#34;/_keygate/portal&#34;</code>") {
		t.Errorf("settings lack portal.path")
	}
}

func TestDashNotFoundAndHeaders(t *testing.T) {
	e := newDashEnv(t)
	c, home := e.login()
	if home.header.Get("Content-Security-Policy") == "" || home.header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", home.header)
	}
	for _, p := range []string{"/nope", "/keys/" + strings.Repeat("0", 32), "/keys/xyz"} {
		if r := c.get(p); r.status != http.StatusNotFound {
			t.Errorf("%s: %d", p, r.status)
		}
	}
	if r := c.get("/static/admin.css"); r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("css: %d", r.status)
	}
	if r := c.get("/healthz"); r.status != http.StatusOK {
		t.Errorf("healthz: %d", r.status)
	}
}

// FuzzSafeNext checks that the login redirect never leaves the host.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/keys?type=org", "//evil.example", `/\evil`, "https://evil.example", "", "/a\r\nSet-Cookie: x", "/%2F/evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") ||
			strings.ContainsAny(got, "\\\r\n") {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		if got != next && got != "/" {
			t.Fatalf("safeNext(%q) = %q: changed but not reset", next, got)
		}
	})
}
