package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserOwnerForms drives the owner forms of the dashboard at phone
// width (390 px): create and edit a user and an org, add a member, change
// their role and remove them through the confirmation page. Every page
// type is saved as admin-*-phone.png and checked to fit the phone: no
// sideways scrolling of the page (tables and charts scroll in their own
// boxes), the nav on one row, key hints on one line.
func TestBrowserOwnerForms(t *testing.T) {
	app := startBrowserApp(t, `
rate_limits:
  personal: {limit: 20, window: 1m}
`)
	ctx := newBrowser(t)
	c := newClient(t, app)
	p := &browserTab{t: t, ctx: ctx, dir: screenshotDir(t)}
	admin := "http://" + app.AdminAddr()

	p.do("phone size", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	p.do("open login", chromedp.Navigate(admin+"/login"), chromedp.WaitVisible(chromedp.CSS(`input[name="token"]`)))
	fits := func(what string) {
		t.Helper()
		if w := tabRun(p, "page width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
			t.Errorf("%s: the page is %d px wide on a 390 px screen", what, w)
		}
		if h := tabRun(p, "nav height", chromedp.Evaluate[int](`(document.querySelector('.nav') || {offsetHeight: 0}).offsetHeight`)); h > 40 {
			t.Errorf("%s: the nav is %d px high (more than one row)", what, h)
		}
	}
	fits("login")
	p.shot("admin-login-phone.png")
	p.do("sign in",
		chromedp.SendKeys(chromedp.CSS(`input[name="token"]`), testAdminToken),
		chromedp.Click(chromedp.CSS(`main button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.chart-narrow svg.chart`)),
	)

	// Empty states say how to start.
	p.do("users, none yet", chromedp.Navigate(admin+"/users"), chromedp.WaitVisible(chromedp.CSS(`p.empty`)))
	if got := p.text("p.empty"); !strings.Contains(got, "No users yet") || !strings.Contains(got, "PUT /v1/users/{id}") {
		t.Errorf("users empty state: %q", got)
	}

	// Create a user with the form.
	p.do("new user",
		chromedp.Click(chromedp.CSS(`a[href="/users/new"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#owner-form input[name="id"]`)),
	)
	fits("new user form")
	p.do("fill in the user",
		chromedp.SendKeys(chromedp.CSS(`input[name="id"]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), "alice@example.com"),
		chromedp.SendKeys(chromedp.CSS(`input[name="limit"]`), "1000"),
		chromedp.SendKeys(chromedp.CSS(`input[name="window"]`), "1m"),
		chromedp.SetValue(chromedp.CSS(`textarea[name="metadata"]`), `{"plan": "pro"}`),
	)
	p.shot("admin-owner-form-phone.png")
	p.do("create the user", chromedp.Click(chromedp.CSS(`#owner-form button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	if got := p.text(".flash"); got != "User alice created." {
		t.Errorf("flash after create: %q", got)
	}
	u := c.must(200, "GET", "/v1/users/alice", nil)
	if u["email"] != "alice@example.com" || u["enabled"] != true {
		t.Errorf("created user: %v", u)
	}
	if rl, _ := u["rate_limit"].(map[string]any); rl["limit"] != float64(1000) || rl["window"] != "1m" {
		t.Errorf("created user's rate limit: %v (want window as written, 1m)", u["rate_limit"])
	}

	// Edit: block them.
	p.do("edit user",
		chromedp.Click(chromedp.CSS(`a[href="/users/alice/edit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name="enabled"]`)),
		chromedp.Click(chromedp.CSS(`input[name="enabled"]`)),
		chromedp.Click(chromedp.CSS(`#owner-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	if got := p.text("main h1"); !strings.Contains(got, "blocked") {
		t.Errorf("after unchecking enabled: heading %q", got)
	}
	c.must(200, "POST", "/v1/users/alice/unblock", nil)

	// A key with traffic, for the key pages and the charts.
	key := c.must(201, "POST", "/v1/keys", map[string]any{"user_id": "alice", "display_name": "Checkout service"})
	keyID, token := key["id"].(string), key["token"].(string)
	for i := 0; i < 24; i++ {
		c.get(token, "/orders")
	}
	waitUsage(t, c, keyID, 24)

	// An org, a member, a role change, a removal behind a confirmation.
	p.do("new org",
		chromedp.Navigate(admin+"/orgs/new"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="id"]`), "acme"),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "Acme Inc"),
		chromedp.Click(chromedp.CSS(`#owner-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#add-member`)),
	)
	if got := p.text("#members + p.empty, #members ~ p.empty"); !strings.Contains(got, "No members yet") {
		t.Errorf("members empty state: %q", got)
	}
	p.do("add member",
		chromedp.SendKeys(chromedp.CSS(`#add-member input[name="user_id"]`), "alice"),
		chromedp.SetValue(chromedp.CSS(`#add-member input[name="role"]`), "Admin"),
		chromedp.Click(chromedp.CSS(`#add-member button`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-member="alice"]`)),
	)
	// The add's flash is on screen: remove it, so the wait below is for the
	// page the role change leads to.
	tabRun(p, "clear flash", chromedp.Evaluate[bool](`(document.querySelector('.flash').remove(), true)`))
	p.do("change role",
		chromedp.SetValue(chromedp.CSS(`tr[data-member="alice"] input[name="role"]`), "Owner"),
		chromedp.Click(chromedp.CSS(`tr[data-member="alice"] .role-form button`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	if got := p.text(".flash"); got != "alice is now Owner in acme." {
		t.Errorf("flash after role change: %q", got)
	}
	if m := c.must(200, "GET", "/v1/orgs/acme", nil); fmtAny(m["members"]) == "" || !strings.Contains(fmtAny(m["members"]), "role=Owner") {
		t.Errorf("role not changed: %v", m["members"])
	}
	fits("org")
	p.shot("admin-org-phone.png")
	p.do("remove member",
		chromedp.Click(chromedp.CSS(`tr[data-member="alice"] a.danger`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-form`)),
	)
	if got := p.text("main h1"); got != "Remove alice from Acme Inc?" {
		t.Errorf("confirmation heading %q", got)
	}
	fits("confirmation")
	p.shot("admin-confirm-phone.png")
	if m := c.must(200, "GET", "/v1/orgs/acme", nil); len(m["members"].([]any)) != 1 {
		t.Fatalf("the confirmation page removed the member already")
	}
	p.do("confirm removal", chromedp.Click(chromedp.CSS(`#confirm-form button`)), chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	if m := c.must(200, "GET", "/v1/orgs/acme", nil); len(m["members"].([]any)) != 0 {
		t.Errorf("member not removed: %v", m["members"])
	}

	// Every page type at phone width.
	for _, pg := range []struct{ path, wait, file string }{
		{"/", ".chart-narrow svg.chart", "admin-overview-phone.png"},
		{"/keys", "table.list", "admin-keys-phone.png"},
		{"/keys/" + keyID, ".chart-narrow svg.chart", "admin-key-phone.png"},
		{"/keys/new", "select[name=\"expires_in\"]", "admin-key-new-phone.png"},
		{"/users", "table.list", "admin-users-phone.png"},
		{"/users/alice", ".chart-narrow svg.chart", "admin-user-phone.png"},
		{"/orgs", "table.list", "admin-orgs-phone.png"},
		{"/audit", "table.list", "admin-audit-phone.png"},
		{"/settings", "table.settings", "admin-settings-phone.png"},
	} {
		p.do("open "+pg.path, chromedp.Navigate(admin+pg.path), chromedp.WaitVisible(chromedp.CSS(pg.wait)))
		fits(pg.path)
		p.shot(pg.file)
	}
	// Key hints stay on one line (they used to break a character a line).
	p.do("keys list", chromedp.Navigate(admin+"/keys"), chromedp.WaitVisible(chromedp.CSS(`table.list code`)))
	if h := tabRun(p, "key hint height", chromedp.Evaluate[int](`document.querySelector('table.list code').offsetHeight`)); h > 24 {
		t.Errorf("a key hint is %d px high: it wraps", h)
	}
	// Chart text keeps its size: the chart shown is the one drawn for a
	// phone, at (about) its drawn size, whole and with its latest bucket.
	p.do("key page", chromedp.Navigate(admin+"/keys/"+keyID), chromedp.WaitVisible(chromedp.CSS(`.chart-narrow svg.chart`)))
	scale := tabRun(p, "chart scale", chromedp.Evaluate[float64](`(() => { const s = document.querySelector('.chart-narrow svg.chart'); return s.getBoundingClientRect().width / s.viewBox.baseVal.width })()`))
	if scale < 0.9 {
		t.Errorf("the phone chart is drawn at %.2f of its size: its text shrinks", scale)
	}
	if w := tabRun(p, "wide chart", chromedp.Evaluate[float64](`document.querySelector('.chart-wide svg.chart').getBoundingClientRect().width`)); w != 0 {
		t.Errorf("the wide chart is shown on a phone too (%v px)", w)
	}
}

// fmtAny renders a decoded JSON value for a loose check.
func fmtAny(v any) string {
	switch x := v.(type) {
	case []any:
		var parts []string
		for _, e := range x {
			parts = append(parts, fmtAny(e))
		}
		return strings.Join(parts, " ")
	case map[string]any:
		var parts []string
		for k, e := range x {
			parts = append(parts, k+"="+fmtAny(e))
		}
		return strings.Join(parts, " ")
	case string:
		return x
	}
	return ""
}
