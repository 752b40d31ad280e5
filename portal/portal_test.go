package portal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/sqlite"
	"github.com/keygate/keygate/web"
)

// clock is a settable clock, safe for the server's goroutines.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      *testing.T
	store  keys.Store
	dbPath string
	svc    *keys.Service
	portal *Portal
	srv    *httptest.Server
	clock  *clock
}

const base = "/_keygate/portal"

func newEnv(t *testing.T, mod func(*Options), disabled ...keys.Type) *env {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "k.db")
	st, err := sqlite.Open(ctx, dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tok, err := keys.NewTokens("kg")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, dbPath: dbPath, clock: &clock{t: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)}}
	var off [4]bool
	for _, d := range disabled {
		off[d] = true
	}
	e.svc, err = keys.NewService(ctx, st, tok, keys.Options{
		Now:      e.clock.Now,
		Disabled: off,
		Expirations: []keys.Expiration{{Name: "2w", After: 14 * 24 * time.Hour}, {Name: "1mo", After: 30 * 24 * time.Hour},
			{Name: "never", Never: true}},
		DefaultExpiration: "never",
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Service: e.svc, Usage: st, Path: base, Now: e.clock.Now, DefaultExpiration: "never"}
	if mod != nil {
		mod(&opts)
	}
	e.portal = New(opts)
	t.Cleanup(e.portal.Close)
	e.srv = httptest.NewServer(e.portal.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) user(id string) {
	e.t.Helper()
	if _, err := e.svc.UpsertUser(context.Background(), keys.UserInput{ID: id, Email: id + "@example.com"}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) org(id, name string, members map[string]string) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.svc.UpsertOrg(ctx, keys.OrgInput{ID: id, Name: name}); err != nil {
		e.t.Fatal(err)
	}
	for u, role := range members {
		if _, err := e.svc.PutMember(ctx, id, u, role); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) key(in keys.CreateKeyInput) (*keys.Key, string) {
	e.t.Helper()
	k, tok, err := e.svc.CreateKey(context.Background(), in)
	if err != nil {
		e.t.Fatal(err)
	}
	return k, tok
}

func (e *env) link(userID, orgID string) string {
	e.t.Helper()
	u, _, err := e.portal.NewLink(context.Background(), userID, orgID, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type response struct {
	status int
	header http.Header
	body   string
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) response {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return response{resp.StatusCode, resp.Header, string(body)}
}

// get fetches a path under the server, or a whole URL.
func (b *browser) get(path string) response {
	b.e.t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = b.e.srv.URL + path
	}
	req, _ := http.NewRequest(http.MethodGet, path, nil)
	return b.do(req)
}

// post posts a form; vals gets the page's CSRF token unless it has one.
func (b *browser) post(path string, vals url.Values, header ...string) response {
	b.e.t.Helper()
	if vals == nil {
		vals = url.Values{}
	}
	if _, ok := vals["csrf"]; !ok {
		vals.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

var linkTokenRE = regexp.MustCompile(`name="token" value="([^"]+)"`)

// open opens a link as a person does: the page, then its button, which
// posts the token back.
func (b *browser) open(link string) response {
	b.e.t.Helper()
	page := b.get(link)
	m := linkTokenRE.FindStringSubmatch(page.body)
	if page.status != http.StatusOK || m == nil {
		return page
	}
	return b.post(base+"/login", url.Values{"token": {html.UnescapeString(m[1])}})
}

// login opens a link for userID (and orgID) and returns the home page.
func (e *env) login(userID, orgID string) (*browser, response) {
	e.t.Helper()
	b := e.browser()
	r := b.open(e.link(userID, orgID))
	if r.status != http.StatusSeeOther || r.header.Get("Location") != base+"/" {
		e.t.Fatalf("open link: %d %v", r.status, r.header)
	}
	home := b.get(base + "/")
	if home.status != http.StatusOK {
		e.t.Fatalf("home: %d\n%s", home.status, home.body)
	}
	return b, home
}

func TestLinkIsSingleUseAndSetsStrictCookie(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PublicURL = "http://gw.example:8080/" })
	e.user("alice")
	link, exp, err := e.portal.NewLink(context.Background(), "alice", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(15 * time.Minute).Unix(); exp != want {
		t.Errorf("expires_at = %d, want %d (default link TTL)", exp, want)
	}
	if !regexp.MustCompile(`^http://gw\.example:8080/_keygate/portal/login\?token=[A-Za-z0-9_-]{43}$`).MatchString(link) {
		t.Fatalf("link = %q", link)
	}
	path := strings.TrimPrefix(link, "http://gw.example:8080")

	b := e.browser()
	r := b.open(path)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != base+"/" {
		t.Fatalf("open: %d, Location %q", r.status, r.header.Get("Location"))
	}
	var session string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, sessionCookie+"=") {
			session = c
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=" + base, "Max-Age=3600"} {
		if !strings.Contains(session, want) {
			t.Errorf("session cookie %q lacks %s", session, want)
		}
	}
	if strings.Contains(session, "Secure") {
		t.Errorf("plain-http cookie marked Secure: %q", session)
	}
	if home := b.get(base + "/"); home.status != http.StatusOK || !strings.Contains(home.body, "alice@example.com") {
		t.Fatalf("home: %d\n%s", home.status, home.body)
	}

	// A second open, from any browser, fails and says the link was used
	// (not that it expired: it has not).
	for _, c := range []*browser{b, e.browser()} {
		if r := c.open(path); r.status != http.StatusGone || !strings.Contains(r.body, "This link was already used") || strings.Contains(r.body, "expired") {
			t.Errorf("reused link: %d\n%s", r.status, r.body)
		}
	}
	// A forged one is neither used nor expired.
	if r := e.browser().open(base + "/login?token=" + strings.Repeat("A", 43)); r.status != http.StatusNotFound || !strings.Contains(r.body, "This link is not valid") {
		t.Errorf("forged link: %d\n%s", r.status, r.body)
	}
	if r := e.browser().get(base + "/"); r.status != http.StatusUnauthorized {
		t.Errorf("no session: %d", r.status)
	}
	// The used link is kept (marked used) until the sweep, to say so.
	if links, sessions := e.counts(); links != 1 || sessions != 1 {
		t.Errorf("links %d, sessions %d; want 1 (used), 1", links, sessions)
	}
}

func TestLinkExpires(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	u, _, err := e.portal.NewLink(context.Background(), "alice", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute)
	for range 2 { // opening an expired link does not make it "used"
		if r := e.browser().open(u); r.status != http.StatusGone || !strings.Contains(r.body, "This link has expired") || strings.Contains(r.body, "already used") {
			t.Fatalf("expired link: %d\n%s", r.status, r.body)
		}
	}
}

func TestSessionExpires(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.SessionTTL = 10 * time.Minute })
	e.user("alice")
	b, _ := e.login("alice", "")
	e.clock.Add(10 * time.Minute)
	if r := b.get(base + "/"); r.status != http.StatusUnauthorized {
		t.Fatalf("after session TTL: %d", r.status)
	}
	if err := e.portal.sessions.sweep(context.Background(), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, n := e.counts(); n != 0 {
		t.Errorf("%d sessions after sweep", n)
	}
}

func TestSecureCookie(t *testing.T) {
	for _, tt := range []struct {
		name, publicURL, proto string
	}{
		{"forwarded https", "", "https"},
		{"https public URL", "https://api.example.com", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.PublicURL = tt.publicURL })
			e.user("alice")
			u, _ := url.Parse(e.link("alice", ""))
			form := url.Values{"token": {u.Query().Get("token")}}
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+base+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.proto != "" {
				req.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			r := e.browser().do(req)
			if c := r.header.Get("Set-Cookie"); r.status != http.StatusSeeOther || !strings.Contains(c, "; Secure") {
				t.Fatalf("%d, cookie %q", r.status, c)
			}
		})
	}
}

func TestNewLinkErrors(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	e.user("bob")
	e.org("acme", "Acme", map[string]string{"alice": "Admin"})
	e.org("other", "Other", nil)
	if _, err := e.svc.SetUserEnabled(context.Background(), "bob", false); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		user, org string
		ttl       time.Duration
		field     string
	}{
		{"nobody", "", 0, "user_id"},
		{"bob", "", 0, "user_id"},
		{"alice", "ghost", 0, "org_id"},
		{"alice", "other", 0, "org_id"},
		{"alice", "", -time.Second, "ttl_seconds"},
	} {
		_, _, err := e.portal.NewLink(context.Background(), tt.user, tt.org, tt.ttl)
		var kerr *keys.Error
		if !errors.As(err, &kerr) || kerr.Code != keys.EInvalid || len(kerr.Fields[tt.field]) == 0 {
			t.Errorf("NewLink(%q, %q, %v) = %v, want a %s field error", tt.user, tt.org, tt.ttl, err, tt.field)
		}
	}
	if _, _, err := e.portal.NewLink(context.Background(), "alice", "acme", time.Minute); err != nil {
		t.Errorf("valid link: %v", err)
	}
}

var tokenRE = regexp.MustCompile(`kgp_[A-Za-z0-9]{20,}`)

func TestCreateShowsTokenOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	b, home := e.login("alice", "")
	if !strings.Contains(home.body, "No keys yet") {
		t.Errorf("fresh user's page:\n%s", home.body)
	}
	r := b.post(base+"/keys", url.Values{"scope": {"personal"}, "display_name": {"CI deploys"}, "expires_in": {"2w"}})
	if r.status != http.StatusOK {
		t.Fatalf("create: %d\n%s", r.status, r.body)
	}
	token := tokenRE.FindString(r.body)
	if token == "" || !strings.Contains(r.body, "You will not see it again") || !strings.Contains(r.body, `data-copy="token"`) {
		t.Fatalf("creation page lacks the token, warning or copy button:\n%s", r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	id, err := e.svc.Validate(context.Background(), token)
	if err != nil {
		t.Fatalf("token does not validate: %v", err)
	}
	k := id.Key
	if k.Type != keys.TypePersonal || k.UserID != "alice" || k.DisplayName != "CI deploys" ||
		k.ExpiresAt == nil || *k.ExpiresAt != e.clock.Now().Add(14*24*time.Hour).Unix() {
		t.Errorf("key = %+v", k)
	}
	ev, err := e.svc.ListAudit(context.Background(), keys.AuditFilter{KeyID: k.ID})
	if err != nil || len(ev) != 1 || ev[0].Actor != "portal:alice" || ev[0].Action != keys.ActionKeyCreated {
		t.Errorf("audit = %+v, %v", ev, err)
	}

	// Later pages show the hint, never the token.
	for _, p := range []string{base + "/", base + "/keys/" + k.ID, base + "/keys/" + k.ID + "/delete"} {
		r := b.get(p)
		if r.status != http.StatusOK || !strings.Contains(r.body, k.Display) {
			t.Errorf("%s: %d, no hint %s", p, r.status, k.Display)
		}
		if strings.Contains(r.body, token) {
			t.Errorf("%s shows the token", p)
		}
	}
}

func TestCreateInvalid(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	b, _ := e.login("alice", "")
	for _, vals := range []url.Values{
		{"scope": {"personal"}, "display_name": {"  "}, "expires_in": {"2w"}},
		{"scope": {"personal"}, "display_name": {"x"}, "expires_in": {"5y"}},
	} {
		r := b.post(base+"/keys", vals)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "The key was not created") || tokenRE.MatchString(r.body) {
			t.Errorf("%v: %d\n%s", vals, r.status, r.body)
		}
	}
	if r := b.post(base+"/keys", url.Values{"scope": {"generic"}, "display_name": {"x"}}); r.status != http.StatusNotFound {
		t.Errorf("generic scope: %d", r.status)
	}
	ks, _, _ := e.svc.ListKeys(context.Background(), keys.KeyFilter{Status: "all"})
	if len(ks) != 0 {
		t.Errorf("%d keys created", len(ks))
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	k, _ := e.key(keys.CreateKeyInput{UserID: "alice", DisplayName: "mine"})
	b, _ := e.login("alice", "")
	create := url.Values{"scope": {"personal"}, "display_name": {"evil"}}
	for _, tt := range []struct {
		name   string
		path   string
		vals   url.Values
		header []string
	}{
		{"create without token", "/keys", url.Values{"scope": {"personal"}, "display_name": {"evil"}, "csrf": nil}, nil},
		{"create with a wrong token", "/keys", url.Values{"scope": {"personal"}, "display_name": {"evil"}, "csrf": {b.csrf + "x"}}, nil},
		{"delete without token", "/keys/" + k.ID + "/delete", url.Values{"csrf": nil}, nil},
		{"delete with another session's token", "/keys/" + k.ID + "/delete", url.Values{"csrf": {web.NewToken()}}, nil},
		{"logout without token", "/logout", url.Values{"csrf": nil}, nil},
		{"create from another site", "/keys", create, []string{"Sec-Fetch-Site", "cross-site"}},
		{"create with a foreign origin", "/keys", create, []string{"Origin", "https://evil.example"}},
	} {
		csrf := b.csrf
		if r := b.post(base+tt.path, tt.vals, tt.header...); r.status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tt.name, r.status)
		}
		b.csrf = csrf
	}
	ks, _, _ := e.svc.ListKeys(context.Background(), keys.KeyFilter{Status: "all"})
	if len(ks) != 1 || ks[0].Archived() {
		t.Errorf("keys changed: %+v", ks)
	}
	if r := b.get(base + "/"); r.status != http.StatusOK {
		t.Errorf("still signed in: %d", r.status)
	}
	// Without a session a post is refused before the CSRF check.
	if r := e.browser().post(base+"/keys", create); r.status != http.StatusUnauthorized {
		t.Errorf("no session: %d", r.status)
	}
}

func TestOthersKeysAreInvisible(t *testing.T) {
	e := newEnv(t, nil)
	for _, u := range []string{"alice", "bob", "carol"} {
		e.user(u)
	}
	e.org("acme", "Acme", map[string]string{"alice": "Admin", "carol": "Member"})
	e.org("globex", "Globex", map[string]string{"bob": "Owner", "alice": "Owner"})
	mine, _ := e.key(keys.CreateKeyInput{UserID: "alice", DisplayName: "alice-key"})
	bobs, bobTok := e.key(keys.CreateKeyInput{UserID: "bob", DisplayName: "bob-key"})
	acme, _ := e.key(keys.CreateKeyInput{OrgID: "acme", UserID: "carol", DisplayName: "acme-key"})
	globex, _ := e.key(keys.CreateKeyInput{OrgID: "globex", DisplayName: "globex-key"})
	generic, _ := e.key(keys.CreateKeyInput{DisplayName: "generic-key"})

	b, home := e.login("alice", "acme")
	for _, want := range []string{"alice-key", "acme-key", "Keys of Acme", "created by carol"} {
		if !strings.Contains(home.body, want) {
			t.Errorf("home lacks %q", want)
		}
	}
	for _, k := range []*keys.Key{bobs, globex, generic} {
		if strings.Contains(home.body, k.DisplayName) || strings.Contains(home.body, k.ID) {
			t.Errorf("home shows %s", k.DisplayName)
		}
		for _, p := range []string{"/keys/" + k.ID, "/keys/" + k.ID + "/delete"} {
			if r := b.get(base + p); r.status != http.StatusNotFound {
				t.Errorf("GET %s (%s): %d", p, k.DisplayName, r.status)
			}
		}
		if r := b.post(base+"/keys/"+k.ID+"/delete", nil); r.status != http.StatusNotFound {
			t.Errorf("delete %s: %d", k.DisplayName, r.status)
		}
	}
	if _, err := e.svc.Validate(context.Background(), bobTok); err != nil {
		t.Errorf("bob's key stopped working: %v", err)
	}
	for _, id := range []string{"nothex", strings.Repeat("0", 32)} {
		if r := b.post(base+"/keys/"+id+"/delete", nil); r.status != http.StatusNotFound {
			t.Errorf("delete %s: %d", id, r.status)
		}
	}
	if r := b.get(base + "/keys/" + mine.ID); r.status != http.StatusOK {
		t.Errorf("own key page: %d", r.status)
	}

	// carol is a Member of acme: no org section, no access to its keys.
	c, home := e.login("carol", "acme")
	if strings.Contains(home.body, "Keys of Acme") || strings.Contains(home.body, "acme-key") {
		t.Errorf("member sees the org's keys")
	}
	if r := c.post(base+"/keys/"+acme.ID+"/delete", nil); r.status != http.StatusNotFound {
		t.Errorf("member deletes org key: %d", r.status)
	}
	if r := c.post(base+"/keys", url.Values{"scope": {"org"}, "display_name": {"x"}}); r.status != http.StatusNotFound {
		t.Errorf("member creates org key: %d", r.status)
	}
}

func TestOrgKeys(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	e.org("acme", "Acme", map[string]string{"alice": "Owner"})
	b, _ := e.login("alice", "acme")
	r := b.post(base+"/keys", url.Values{"scope": {"org"}, "display_name": {"deploy bot"}, "expires_in": {"never"}})
	token := regexp.MustCompile(`kgo_[A-Za-z0-9]+`).FindString(r.body)
	if r.status != http.StatusOK || token == "" {
		t.Fatalf("create org key: %d\n%s", r.status, r.body)
	}
	id, err := e.svc.Validate(context.Background(), token)
	if err != nil || id.Key.Type != keys.TypeOrg || id.Key.OrgID != "acme" || id.Key.UserID != "alice" || id.Key.ExpiresAt != nil {
		t.Fatalf("org key = %+v, %v", id, err)
	}
	b.get(base + "/")
	if r := b.post(base+"/keys/"+id.Key.ID+"/delete", nil); r.status != http.StatusSeeOther {
		t.Fatalf("delete org key: %d", r.status)
	}
	if _, err := e.svc.Validate(context.Background(), token); !errors.Is(err, keys.ErrInvalidKey) {
		t.Errorf("deleted org key validates: %v", err)
	}

	// Losing the role takes the section away at once.
	if _, err := e.svc.PutMember(context.Background(), "acme", "alice", "Member"); err != nil {
		t.Fatal(err)
	}
	if r := b.get(base + "/"); strings.Contains(r.body, "Keys of Acme") {
		t.Errorf("org section still shown to a Member")
	}
}

func TestDisabledTypesHideSections(t *testing.T) {
	e := newEnv(t, nil, keys.TypeOrg)
	e.user("alice")
	e.org("acme", "Acme", map[string]string{"alice": "Owner"})
	_, home := e.login("alice", "acme")
	if strings.Contains(home.body, "Keys of Acme") || !strings.Contains(home.body, "Your API keys") {
		t.Errorf("org disabled: wrong sections\n%s", home.body)
	}

	e = newEnv(t, nil, keys.TypePersonal)
	e.user("alice")
	e.org("acme", "Acme", map[string]string{"alice": "Owner"})
	e.key(keys.CreateKeyInput{OrgID: "acme", DisplayName: "x"})
	b, home := e.login("alice", "acme")
	if !strings.Contains(home.body, "Keys of Acme") || strings.Contains(home.body, "Your API keys") {
		t.Errorf("personal disabled: wrong sections\n%s", home.body)
	}
	if r := b.post(base+"/keys", url.Values{"scope": {"personal"}, "display_name": {"x"}}); r.status != http.StatusNotFound {
		t.Errorf("create personal while disabled: %d", r.status)
	}
}

func TestDeleteArchives(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	k, tok := e.key(keys.CreateKeyInput{UserID: "alice", DisplayName: "old"})
	b, _ := e.login("alice", "")
	confirm := b.get(base + "/keys/" + k.ID + "/delete")
	if confirm.status != http.StatusOK || !strings.Contains(confirm.body, "will be rejected") {
		t.Fatalf("confirm page: %d\n%s", confirm.status, confirm.body)
	}
	r := b.post(base+"/keys/"+k.ID+"/delete", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != base+"/" {
		t.Fatalf("delete: %d %v", r.status, r.header)
	}
	home := b.get(base + "/")
	if !strings.Contains(home.body, "Deleted old") || strings.Contains(home.body, "/keys/"+k.ID) {
		t.Errorf("home after delete:\n%s", home.body)
	}
	if again := b.get(base + "/"); strings.Contains(again.body, "Deleted old") {
		t.Errorf("flash shown twice")
	}
	got, err := e.svc.GetKey(context.Background(), k.ID)
	if err != nil || !got.Archived() {
		t.Fatalf("key not archived: %+v %v", got, err)
	}
	if _, err := e.svc.Validate(context.Background(), tok); !errors.Is(err, keys.ErrInvalidKey) {
		t.Errorf("archived key validates: %v", err)
	}
	ev, _ := e.svc.ListAudit(context.Background(), keys.AuditFilter{KeyID: k.ID, Action: keys.ActionKeyArchived})
	if len(ev) != 1 || ev[0].Actor != "portal:alice" {
		t.Errorf("audit = %+v", ev)
	}
	if r := b.post(base+"/keys/"+k.ID+"/delete", nil); r.status != http.StatusNotFound {
		t.Errorf("second delete: %d", r.status)
	}
}

func TestEscaping(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Title = "<b>Acme</b> keys"; o.AccentColor = "red;}</style><script>" })
	e.user("alice")
	const evil = `<script>alert(1)</script>`
	e.org("acme", evil, map[string]string{"alice": "Owner"})
	k, _ := e.key(keys.CreateKeyInput{UserID: "alice", DisplayName: evil, Metadata: []byte(`{"x":"` + `<script>alert(1)<\/script>` + `"}`)})
	b, home := e.login("alice", "acme")
	for _, r := range []response{home, b.get(base + "/keys/" + k.ID), b.get(base + "/keys/" + k.ID + "/delete")} {
		if strings.Contains(r.body, "<script>alert") || strings.Contains(r.body, "<b>Acme") {
			t.Errorf("unescaped:\n%s", r.body)
		}
		if !strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("escaped name missing:\n%s", r.body)
		}
	}
	css := b.get(base + "/static/portal.css")
	if strings.Contains(css.body, "script") || !strings.Contains(css.body, "--accent: #4f46e5") {
		t.Errorf("bad accent colour reached the CSS")
	}
}

func TestBranding(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Title, o.LogoURL, o.AccentColor = "Acme API", "https://cdn.example/logo.png", "#0a7"
	})
	e.user("alice")
	b, home := e.login("alice", "")
	for _, want := range []string{"<title>API keys · Acme API</title>", `src="https://cdn.example/logo.png"`, `name="viewport"`} {
		if !strings.Contains(home.body, want) {
			t.Errorf("home lacks %s", want)
		}
	}
	if css := b.get(base + "/static/portal.css"); css.status != http.StatusOK || !strings.Contains(css.body, "--accent: #0a7") ||
		!strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("css: %d %q", css.status, css.header.Get("Content-Type"))
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"} {
		if home.header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	// A javascript: logo is neutralized by the template.
	e2 := newEnv(t, func(o *Options) { o.LogoURL = "javascript:alert(1)" })
	e2.user("alice")
	if _, home := e2.login("alice", ""); strings.Contains(home.body, "javascript:") {
		t.Errorf("javascript: URL rendered")
	}
}

func TestBlockedUserLosesSession(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	b, _ := e.login("alice", "")
	if _, err := e.svc.SetUserEnabled(context.Background(), "alice", false); err != nil {
		t.Fatal(err)
	}
	if r := b.get(base + "/"); r.status != http.StatusForbidden {
		t.Fatalf("blocked: %d", r.status)
	}
	if _, err := e.svc.SetUserEnabled(context.Background(), "alice", true); err != nil {
		t.Fatal(err)
	}
	if r := b.get(base + "/"); r.status != http.StatusUnauthorized {
		t.Errorf("session survived blocking: %d", r.status)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	b, _ := e.login("alice", "")
	r := b.post(base+"/logout", nil)
	if r.status != http.StatusOK || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d %v", r.status, r.header)
	}
	if _, n := e.counts(); n != 0 {
		t.Errorf("%d sessions left", n)
	}
	if r := b.get(base + "/"); r.status != http.StatusUnauthorized {
		t.Errorf("after logout: %d", r.status)
	}
}

// TestCrossSiteLinkContinues pins the hop: a browser that held back the
// Strict cookie on the redirect after a cross-site link gets a same-site
// reload instead of "session ended".
func TestCrossSiteLinkContinues(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+base+"/", nil)
	req.AddCookie(&http.Cookie{Name: hopCookie, Value: "1"})
	r := e.browser().do(req)
	if r.status != http.StatusOK || !strings.Contains(r.body, `<meta http-equiv="refresh" content="0">`) ||
		!strings.Contains(r.header.Get("Set-Cookie"), hopCookie+"=;") {
		t.Fatalf("hop: %d %v\n%s", r.status, r.header, r.body)
	}
}

func TestKeyPageChart(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	k, _ := e.key(keys.CreateKeyInput{UserID: "alice", DisplayName: "busy"})
	e.clock.Add(5 * time.Minute) // usage comes after the key (last_used_at ≥ created_at)
	now := e.clock.Now().Unix()
	if err := e.store.AddUsage(context.Background(), []keys.UsageCount{
		{KeyID: k.ID, Minute: now - 120, Allowed: 41, RateLimited: 2},
	}); err != nil {
		t.Fatal(err)
	}
	b, home := e.login("alice", "")
	if !strings.Contains(home.body, `aria-label="Requests in the last 24 hours: 43 requests, 2 rate limited"`) {
		t.Errorf("no sparkline:\n%s", home.body)
	}
	if !strings.Contains(home.body, "last used 2026-03-14 12:03 UTC") {
		t.Errorf("no last use")
	}
	for _, rng := range []string{"1h", "24h", "7d", "30d", ""} {
		r := b.get(base + "/keys/" + k.ID + "?range=" + rng)
		if r.status != http.StatusOK || !strings.Contains(r.body, "41 allowed, 2 rate limited") {
			t.Errorf("range %q: %d", rng, r.status)
		}
	}
}

func TestPaths(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Path = base + "/" })
	for _, tt := range []struct {
		path   string
		status int
	}{
		{base, http.StatusSeeOther},
		{base + "/nope", http.StatusNotFound},
		{base + "/keys/../login", http.StatusNotFound},
		{"/elsewhere", http.StatusNotFound},
		{base + "/static/copy.js", http.StatusOK},
	} {
		if r := e.browser().get(tt.path); r.status != tt.status {
			t.Errorf("GET %s: %d, want %d", tt.path, r.status, tt.status)
		}
	}
}

func TestExpirationLabel(t *testing.T) {
	for in, want := range map[string]string{"2w": "2 weeks", "1mo": "1 month", "3mo": "3 months", "1y": "1 year", "never": "Never", "36h": "36h", "1d": "1 day"} {
		if got := expirationLabel(in); got != want {
			t.Errorf("expirationLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// counts returns how many portal links and sessions the store holds,
// read straight from the database file.
func (e *env) counts() (links, sessions int) {
	e.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+e.dbPath+"?mode=ro")
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM portal_links), (SELECT COUNT(*) FROM sessions WHERE kind = 'portal')`).Scan(&links, &sessions); err != nil {
		e.t.Fatal(err)
	}
	return links, sessions
}

// Issue 10.15: a single-use link was consumed by the first GET, so mail
// scanners and chat unfurlers burned it. A GET now shows a page; only its
// button's POST signs in.
func TestLinkSurvivesScanners(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	link := e.link("alice", "")
	for i := 0; i < 3; i++ { // a scanner, an unfurler, a preview
		r := e.browser().get(link)
		if r.status != http.StatusOK || !strings.Contains(r.body, `id="open"`) || len(r.header.Values("Set-Cookie")) != 0 {
			t.Fatalf("GET %d: %d, cookies %q", i, r.status, r.header.Values("Set-Cookie"))
		}
	}
	if links, sessions := e.counts(); links != 1 || sessions != 0 {
		t.Fatalf("after GETs: links %d, sessions %d; want 1, 0", links, sessions)
	}
	b := e.browser()
	if r := b.open(link); r.status != http.StatusSeeOther {
		t.Fatalf("the person's open: %d", r.status)
	}
	if home := b.get(base + "/"); home.status != http.StatusOK {
		t.Fatalf("home: %d", home.status)
	}
	if r := e.browser().open(link); r.status != http.StatusGone {
		t.Errorf("second POST: %d, want 410", r.status)
	}
}

// Issue 10.9: one portal session could create thousands of keys. Caps on
// active keys (per user, per org) and on creations per hour, shown on the
// page.
func TestPortalCreationCaps(t *testing.T) {
	t.Run("active keys", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.MaxUserKeys = 2 })
		e.user("alice")
		b, home := e.login("alice", "")
		if !strings.Contains(home.body, "Up to 2 active keys (0 now)") {
			t.Errorf("home does not state the cap:\n%s", home.body)
		}
		for i := 0; i < 2; i++ {
			if r := b.post(base+"/keys", url.Values{"scope": {"personal"}, "display_name": {fmt.Sprint("k", i)}, "expires_in": {"never"}}); r.status != http.StatusOK {
				t.Fatalf("create %d: %d", i, r.status)
			}
		}
		r := b.post(base+"/keys", url.Values{"scope": {"personal"}, "display_name": {"k3"}, "expires_in": {"never"}})
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "2 active keys, the most allowed") {
			t.Fatalf("third create: %d\n%s", r.status, r.body)
		}
	})
	t.Run("per hour", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.CreatesPerHour = 2 })
		e.user("alice")
		b, home := e.login("alice", "")
		if !strings.Contains(home.body, "create up to 2 keys an hour") {
			t.Errorf("home does not state the rate:\n%s", home.body)
		}
		create := func() response {
			return b.post(base+"/keys", url.Values{"scope": {"personal"}, "display_name": {"k"}, "expires_in": {"never"}})
		}
		create()
		create()
		if r := create(); r.status != http.StatusBadRequest || !strings.Contains(r.body, "at most 2 keys an hour") {
			t.Fatalf("third create: %d\n%s", r.status, r.body)
		}
		e.clock.Add(31 * time.Minute)
		if r := create(); r.status != http.StatusOK {
			t.Fatalf("after half an hour: %d", r.status)
		}
	})
}
