package main

// Browser tests: the admin dashboard and the self-service pages driven in
// real headless Chromium through a whole keygate. Each main page is saved
// as a PNG in $KEYGATE_SCREENSHOTS (default: a temporary directory).

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// newBrowser starts headless Chromium with a fresh profile, or skips the
// test when there is none (fails it on CI).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browser tests need Chromium at %s: %v", chromiumPath, err)
		}
		t.Skipf("browser tests need Chromium at %s (apt-get install chromium); skipping: %v", chromiumPath, err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// Start the browser on this long-lived context: steps run under their
	// own timeouts, and a browser started under one would die with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return ctx
}

// stepTimeout bounds one browser step, so that a page that never shows what
// a step waits for fails the test quickly.
const stepTimeout = 20 * time.Second

// screenshotDir is where the PNGs go.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KEYGATE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// browserTab wraps a browser tab with failing helpers.
type browserTab struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func (p *browserTab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.fail(what, err)
	}
}

func tabRun[T any](p *browserTab, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.fail(what, err)
	}
	return v
}

// fail ends the test with where the tab is and what it shows.
func (p *browserTab) fail(what string, err error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	p.t.Fatalf("%s: %v\nat %s, showing:\n%s", what, err, loc, text)
}

func (p *browserTab) text(sel string) string {
	p.t.Helper()
	return tabRun(p, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

func (p *browserTab) location() string {
	p.t.Helper()
	return tabRun(p, "location", chromedp.Location())
}

func (p *browserTab) html() string {
	p.t.Helper()
	return tabRun(p, "html", chromedp.OuterHTML(chromedp.CSS("html")))
}

// shot saves a full-page PNG as name.
func (p *browserTab) shot(name string) {
	p.t.Helper()
	png := tabRun(p, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(p.dir, name), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// startBrowserApp runs a whole keygate with the portal branded as in the
// screenshots; portal links name the proxy port it really bound.
func startBrowserApp(t *testing.T, extraYAML string) *App {
	t.Helper()
	return startApp(t, filepath.Join(t.TempDir(), "k.db"), echoUpstream(t).URL, `
portal:
  title: "Acme API keys"
  accent_color: "#0f766e"
`+extraYAML)
}

// waitUsage waits until the usage flush has recorded total requests of key.
func waitUsage(t *testing.T, c *client, keyID string, total int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		u := c.must(200, "GET", "/v1/usage?key_id="+keyID, nil)
		if u["total"] == float64(total) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage of %s = %v, want %d", keyID, u["total"], total)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBrowserAdminDashboard(t *testing.T) {
	app := startBrowserApp(t, `
rate_limits:
  personal: {limit: 20, window: 1m}
`)
	// Cleanups run last first: the browser closes before the gateway.
	ctx := newBrowser(t)
	c := newClient(t, app)
	c.must(200, "PUT", "/v1/users/alice", map[string]any{"email": "alice@example.com", "metadata": map[string]any{"plan": "pro"}})
	c.must(200, "PUT", "/v1/orgs/acme", map[string]any{"name": "Acme Inc"})
	c.must(200, "PUT", "/v1/orgs/acme/members/alice", map[string]any{"role": "Owner"})
	p := &browserTab{t: t, ctx: ctx, dir: screenshotDir(t)}
	admin := "http://" + app.AdminAddr()

	// Signed out, every page leads to the login form.
	p.do("open dashboard", chromedp.Navigate(admin+"/keys"), chromedp.WaitVisible(chromedp.CSS(`input[name="token"]`)))
	if loc := p.location(); !strings.HasPrefix(loc, admin+"/login?next=") {
		t.Fatalf("signed out: at %s", loc)
	}
	p.shot("admin-login.png")
	p.do("sign in",
		chromedp.SendKeys(chromedp.CSS(`input[name="token"]`), testAdminToken),
		chromedp.Click(chromedp.CSS(`main button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form.filters`)),
	)
	if loc := p.location(); loc != admin+"/keys" {
		t.Errorf("after login: at %s, want the page asked for", loc)
	}

	// Create a key.
	p.do("create key",
		chromedp.Navigate(admin+"/keys/new?user_id=alice"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="display_name"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="display_name"]`), "Checkout service"),
		chromedp.SetValue(chromedp.CSS(`select[name="expires_in"]`), "3mo"),
		chromedp.SetValue(chromedp.CSS(`textarea[name="metadata"]`), `{"team": "payments"}`),
		chromedp.Click(chromedp.CSS(`main button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	token := tabRun(p, "token", chromedp.Value(chromedp.ID("token")))
	if !strings.HasPrefix(token, "kgp_") {
		t.Fatalf("token %q", token)
	}
	if loc := p.location(); strings.Contains(loc, token) || loc != admin+"/keys" {
		t.Errorf("creation page at %s", loc)
	}
	p.shot("admin-key-created.png")
	href := tabRun(p, "key link", chromedp.Evaluate[string](`document.querySelector('main a[href^="/keys/"]').getAttribute('href')`))
	keyID := strings.TrimPrefix(href, "/keys/")

	// Traffic through the proxy: 20 allowed, then rate limited.
	for i := 0; i < 26; i++ {
		code, _ := c.get(token, "/orders")
		if want := map[bool]int{true: 200, false: 429}[i < 20]; code != want {
			t.Fatalf("request %d through the proxy: %d, want %d", i, code, want)
		}
	}
	waitUsage(t, c, keyID, 26)

	// See it in the list, open its page.
	p.do("list",
		chromedp.Navigate(admin+"/keys?q=Checkout"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-key-id="`+keyID+`"]`)),
	)
	if strings.Contains(p.html(), token) {
		t.Fatal("the key list shows the token")
	}
	p.shot("admin-keys.png")
	p.do("open key",
		chromedp.Click(chromedp.CSS(`tr[data-key-id="`+keyID+`"] a[href="/keys/`+keyID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`svg.chart`)),
	)
	if got := p.text("main h1"); !strings.Contains(got, "Checkout service") || !strings.Contains(got, "active") {
		t.Errorf("key page heading %q", got)
	}
	if html := p.html(); strings.Contains(html, token) || !strings.Contains(html, "20 allowed, 6 rate limited") {
		t.Errorf("key page shows the token or lacks the usage")
	}
	p.shot("admin-key.png")

	// Archive it: the proxy rejects it from then on.
	p.do("archive",
		chromedp.Click(chromedp.CSS(`form[action="/keys/`+keyID+`/archive"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	if got := p.text("main h1"); !strings.Contains(got, "archived") {
		t.Errorf("after archive: heading %q", got)
	}
	if code, body := c.get(token, "/orders"); code != 401 || body["error"] != "invalid_api_key" {
		t.Errorf("archived key through the proxy: %d %v", code, body)
	}
	p.do("delete confirmation", chromedp.Navigate(admin+"/keys/"+keyID+"/delete"), chromedp.WaitVisible(chromedp.CSS(`form.actions`)))
	if !strings.Contains(p.text("main"), "usage data") {
		t.Errorf("delete confirmation does not say what is lost")
	}
	p.shot("admin-key-delete.png")

	for _, pg := range []struct{ path, wait, file string }{
		{"/", "svg.chart", "admin-overview.png"},
		{"/users/alice", "svg.chart", "admin-user.png"},
		{"/orgs/acme", "svg.chart", "admin-org.png"},
		{"/audit", "table.list", "admin-audit.png"},
		{"/settings", "table.settings", "admin-settings.png"},
	} {
		p.do("open "+pg.path, chromedp.Navigate(admin+pg.path), chromedp.WaitVisible(chromedp.CSS(pg.wait)))
		p.shot(pg.file)
	}
	if html := p.html(); strings.Contains(html, testAdminToken) || !strings.Contains(html, "[redacted]") {
		t.Errorf("settings page shows the admin token or no redaction")
	}

	p.do("sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), chromedp.WaitVisible(chromedp.CSS(`input[name="token"]`)))
	p.do("after sign out", chromedp.Navigate(admin+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name="token"]`)))
}

func TestBrowserPortal(t *testing.T) {
	app := startBrowserApp(t, "")
	ctx := newBrowser(t)
	c := newClient(t, app)
	c.must(200, "PUT", "/v1/users/alice", map[string]any{"email": "alice@example.com"})
	c.must(200, "PUT", "/v1/users/bob", map[string]any{"email": "bob@example.com"})
	c.must(200, "PUT", "/v1/orgs/acme", map[string]any{"name": "Acme Inc"})
	c.must(200, "PUT", "/v1/orgs/acme/members/alice", map[string]any{"role": "Admin"})
	bobs := c.must(201, "POST", "/v1/keys", map[string]any{"user_id": "bob", "display_name": "Bob's secret project"})
	c.must(201, "POST", "/v1/keys", map[string]any{"org_id": "acme", "display_name": "Acme deploy bot"})
	p := &browserTab{t: t, ctx: ctx, dir: screenshotDir(t)}
	proxy := "http://" + app.ProxyAddr()
	base := proxy + "/_keygate/portal"

	link := c.must(201, "POST", "/v1/portal-links", map[string]any{"user_id": "alice", "org_id": "acme"})
	linkURL, _ := link["url"].(string)
	if !strings.HasPrefix(linkURL, base+"/login?token=") {
		t.Fatalf("portal link %q does not start with %s/login?token=", linkURL, base)
	}
	// Let the copy button write to the clipboard and the test read it back.
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: perm}, Setting: "granted", Origin: proxy,
		}); err != nil {
			t.Fatalf("grant %s: %v", perm, err)
		}
	}

	// Opening the link signs in and drops the token from the address bar.
	// The link's page has a button: only its post signs in (link scanners
	// fetch URLs, they do not press buttons).
	p.do("open link", chromedp.Navigate(linkURL), chromedp.WaitVisible(chromedp.CSS(`#open`)))
	p.do("continue", chromedp.Click(chromedp.CSS(`#open`), chromedp.NodeVisible), chromedp.WaitVisible(chromedp.CSS(`#personal`)))
	if loc := p.location(); loc != base+"/" {
		t.Errorf("after the link: at %s", loc)
	}
	if html := p.html(); !strings.Contains(html, "Keys of Acme Inc") || !strings.Contains(html, "Acme deploy bot") ||
		strings.Contains(html, "Bob's secret project") {
		t.Errorf("portal shows the wrong keys")
	}

	// Create a key; the token is shown once and copied with the button.
	p.do("create key",
		chromedp.SendKeys(chromedp.CSS(`#personal input[name="display_name"]`), "My laptop"),
		chromedp.SetValue(chromedp.CSS(`#personal select[name="expires_in"]`), "3mo"),
		chromedp.Click(chromedp.CSS(`#personal button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	token := tabRun(p, "token", chromedp.Value(chromedp.ID("token")))
	if !strings.HasPrefix(token, "kgp_") {
		t.Fatalf("token %q", token)
	}
	if loc := p.location(); strings.Contains(loc, token) {
		t.Errorf("token in the URL %s", loc)
	}
	if !strings.Contains(p.text("main"), "You will not see it again") {
		t.Errorf("no warning that the token is shown once")
	}
	p.do("copy", chromedp.Click(chromedp.CSS(`button[data-copy="token"]`)))
	copied := tabRun(p, "read clipboard", chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if copied != token {
		t.Errorf("clipboard %q, want the token", copied)
	}
	if got := p.text(`button[data-copy="token"]`); got != "Copied" {
		t.Errorf("copy button says %q", got)
	}
	p.shot("portal-key-created.png")

	// The token works through the proxy, as alice.
	for i := 0; i < 7; i++ {
		code, echo := c.get(token, "/v1/things")
		if code != 200 || header(echo, "X-Keygate-User-Id") != "alice" {
			t.Fatalf("new key through the proxy: %d %v", code, echo)
		}
	}
	var keyID string
	p.do("done", chromedp.Click(chromedp.CSS(`main a.button`)), chromedp.WaitVisible(chromedp.CSS(`#personal li.key`)))
	keyID = tabRun(p, "key id", chromedp.Evaluate[string](`document.querySelector('#personal li.key').dataset.keyId`))
	waitUsage(t, c, keyID, 7)
	p.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#personal li.key svg.sparkline`)))
	if strings.Contains(p.html(), token) {
		t.Fatal("the key list shows the token")
	}
	p.shot("portal-home.png")
	p.do("phone size", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#personal li.key`)))
	p.shot("portal-home-phone.png")
	p.do("desktop size", chromedp.ResetViewport())

	p.do("key page", chromedp.Click(chromedp.CSS(`#personal li.key a.key-name`)), chromedp.WaitVisible(chromedp.CSS(`svg.chart`)))
	if !strings.Contains(p.html(), "7 allowed, 0 rate limited") {
		t.Errorf("key page lacks the usage")
	}
	p.shot("portal-key.png")

	// Another user's key cannot be touched, even with a hand-made form.
	bobID, _ := bobs["id"].(string)
	p.do("forge delete", chromedp.Evaluate[chromedp.Void](`(() => {
		const f = document.createElement('form');
		f.method = 'post';
		f.action = '`+"/_keygate/portal/keys/"+`' + `+"`"+bobID+"`"+` + '/delete';
		const i = document.createElement('input');
		i.name = 'csrf';
		i.value = document.querySelector('input[name=csrf]').value;
		f.appendChild(i);
		document.body.appendChild(f);
		f.submit();
	})()`), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
	if got := p.text("main h1"); got != "Not found" {
		t.Errorf("deleting bob's key: %q", got)
	}
	if k := c.must(200, "GET", "/v1/keys/"+bobID, nil); k["archived_at"] != nil {
		t.Errorf("bob's key archived")
	}

	// Delete (archive) it: the proxy rejects it from then on.
	p.do("delete",
		chromedp.Navigate(base+"/keys/"+keyID+"/delete"),
		chromedp.WaitVisible(chromedp.CSS(`form.actions`)),
	)
	p.shot("portal-key-delete.png")
	p.do("confirm delete", chromedp.Click(chromedp.CSS(`form.actions button.danger`)), chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	if !strings.Contains(p.text(".flash"), "Deleted My laptop") {
		t.Errorf("flash %q", p.text(".flash"))
	}
	if n := tabRun(p, "count keys", chromedp.Evaluate[int](`document.querySelectorAll('#personal li.key').length`)); n != 0 {
		t.Errorf("%d personal keys listed after delete", n)
	}
	if code, body := c.get(token, "/v1/things"); code != http.StatusUnauthorized || body["error"] != "invalid_api_key" {
		t.Errorf("deleted key through the proxy: %d %v", code, body)
	}
	audit := c.must(200, "GET", "/v1/audit?key_id="+keyID, nil)
	events, _ := audit["events"].([]any)
	if len(events) != 2 || events[0].(map[string]any)["actor"] != "portal:alice" {
		t.Errorf("audit %v", events)
	}

	// The link works once: its page still shows, its button no longer signs in.
	p.do("reopen link", chromedp.Navigate(linkURL), chromedp.WaitVisible(chromedp.CSS(`#open`)))
	p.do("continue again", chromedp.Click(chromedp.CSS(`#open`), chromedp.NodeVisible), chromedp.WaitNotPresent(chromedp.CSS(`#open`)))
	if text := tabRun(p, "used link page", chromedp.Evaluate[string](`document.body.innerText`)); !strings.Contains(text, "This link was already used") {
		t.Errorf("second open of the link says %q, want \"This link was already used\"", text)
	}
	p.shot("portal-link-used.png")
}

// TestBrowserPortalCrossSiteLink opens a portal link from another site, as
// users do from the operator's app. Browsers withhold SameSite=Strict cookies
// for the rest of a cross-site navigation, redirect included; the portal must
// still end up signed in.
func TestBrowserPortalCrossSiteLink(t *testing.T) {
	app := startBrowserApp(t, "")
	ctx := newBrowser(t)
	c := newClient(t, app)
	c.must(200, "PUT", "/v1/users/alice", map[string]any{"email": "alice@example.com"})
	link := c.must(201, "POST", "/v1/portal-links", map[string]any{"user_id": "alice"})
	linkURL, _ := link["url"].(string)

	// The operator's app: another site (localhost, not 127.0.0.1).
	appSite := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><a id="keys" href="%s">Manage API keys</a>`, html.EscapeString(linkURL))
	}))
	t.Cleanup(appSite.Close)
	appURL := strings.Replace(appSite.URL, "127.0.0.1", "localhost", 1)

	p := &browserTab{t: t, ctx: ctx, dir: screenshotDir(t)}
	p.do("follow the link from the app",
		chromedp.Navigate(appURL),
		chromedp.Click(chromedp.ID("keys")),
		chromedp.WaitVisible(chromedp.CSS(`#open`)),
	)
	p.do("continue",
		chromedp.Click(chromedp.CSS(`#open`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS(`#personal`)),
	)
	if loc := p.location(); loc != "http://"+app.ProxyAddr()+"/_keygate/portal/" {
		t.Errorf("at %s", loc)
	}
}
