package portal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/usage"
	"github.com/keygate/keygate/web"
)

// Cookie names. The session cookie is SameSite=Strict; hopCookie (Lax, no
// secret) only marks the minute after a link was opened, see noSession.
const (
	sessionCookie = "keygate_portal"
	hopCookie     = "keygate_portal_hop"
)

// maxFormBytes bounds a form post.
const maxFormBytes = 64 << 10

// csp allows nothing but this origin's stylesheet and script, images (the
// operator's logo) and forms posted back here.
const csp = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data: https: http:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (p *Portal) routes() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", p.home)
	m.HandleFunc("GET /login", p.openLink) // a page: link scanners cannot burn the link
	m.HandleFunc("POST /login", p.login)
	m.HandleFunc("GET /keys/{id}", p.keyPage)
	m.HandleFunc("GET /keys/{id}/delete", p.confirmDelete)
	m.HandleFunc("POST /keys", p.post(p.createKey))
	m.HandleFunc("POST /keys/{id}/delete", p.post(p.deleteKey))
	m.HandleFunc("POST /keys/{id}/roll", p.post(p.rollKey))
	m.HandleFunc("POST /logout", p.post(p.logout))
	m.HandleFunc("GET /static/portal.css", p.asset("text/css; charset=utf-8", p.css))
	m.HandleFunc("GET /static/copy.js", p.asset("text/javascript; charset=utf-8", web.CopyJS))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { p.notFound(w, r) })

	// Defence in depth behind the CSRF tokens: browsers label cross-site
	// posts (Sec-Fetch-Site, Origin) and those are refused outright.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.message(w, r, http.StatusForbidden, "Request refused", "This form was sent from another site.")
	}))
	inner := cop.Handler(m)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// Link tokens travel in a URL once; never pass a portal URL on.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if r.URL.Path == p.base {
			http.Redirect(w, r, p.base+"/", http.StatusSeeOther)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, p.base+"/")
		// The mux would answer an unclean path with a redirect that
		// forgets the mount prefix.
		if !ok || path.Clean("/"+rest) != "/"+rest && rest != "" {
			p.notFound(w, r)
			return
		}
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = "/"+rest, ""
		r2.URL = &u
		inner.ServeHTTP(w, r2)
	})
}

func (p *Portal) asset(contentType string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(body)
	}
}

// page is what every template gets.
type page struct {
	Title, LogoURL, Base string
	PageTitle            string
	CSRF                 string
	User                 *keys.User
	Flash                string

	// home
	Sections []*section

	// created
	Key   *keyRow
	Token string

	// key
	Chart  template.HTML
	Ranges []rangeLink
	Graces []choice

	// created, after a roll: Message says what became of the old key
	Rolled bool

	// open: the link's token, posted back by the page's button
	LinkToken string

	// message
	Heading, Message string
	Refresh          bool
}

// section is one list of keys with its create form: the user's own keys or
// the org's.
type section struct {
	Scope       string // "personal" or "org"
	Heading     string
	Intro       string
	Quota       string // "8,213 of 10,000 requests left this month"; "" for none
	Limits      string // the caps on creating keys, in words; "" when none
	OrgKeys     bool
	Keys        []keyRow
	More        bool // the list was cut short
	Name        string
	Choices     []choice
	Error       string
	FieldErrors map[string][]string
}

type choice struct {
	Value, Label string
	Selected     bool
}

type keyRow struct {
	keys.Key
	Status string
	Spark  template.HTML
}

type rangeLink struct {
	Name, Label string
	Current     bool
}

// visit is a request by a signed-in, enabled user.
type visit struct {
	token string
	sess  session
	user  *keys.User
	org   *keys.UserOrg // the link's org, when the user may manage its keys
}

func (v *visit) actor(ctx context.Context) context.Context {
	return keys.WithActor(ctx, "portal:"+v.user.ID)
}

func (p *Portal) newPage(v *visit, title string) *page {
	pg := &page{Title: p.opts.Title, LogoURL: p.opts.LogoURL, Base: p.base, PageTitle: title}
	if v != nil {
		pg.CSRF, pg.User, pg.Flash = v.sess.csrf, v.user, v.sess.flash
	}
	return pg
}

func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, name string, pg *page) {
	var buf bytes.Buffer
	if err := p.pages[name].Execute(&buf, pg); err != nil {
		p.log.Error("portal page failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (p *Portal) message(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	pg := p.newPage(nil, heading)
	pg.Heading, pg.Message = heading, msg
	p.render(w, r, status, "message", pg)
}

func (p *Portal) notFound(w http.ResponseWriter, r *http.Request) {
	p.message(w, r, http.StatusNotFound, "Not found", "There is no such page or key.")
}

func (p *Portal) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	p.log.Error("portal: "+what, "err", err)
	p.message(w, r, http.StatusInternalServerError, "Something went wrong", "Please try again in a moment.")
}

func (p *Portal) secure(r *http.Request) bool { return web.Secure(r, p.opts.PublicURL) }

// setFlash leaves msg for the visit's next page; a store failure costs the
// message only, so it is logged, not shown.
func (p *Portal) setFlash(r *http.Request, v *visit, msg string) {
	if err := p.sessions.setFlash(r.Context(), v.token, msg); err != nil {
		p.log.Error("portal flash message lost", "err", err)
	}
}

func (p *Portal) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int, site http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: p.base, MaxAge: maxAge,
		HttpOnly: true, Secure: p.secure(r), SameSite: site})
}

// login exchanges a link for a session and moves the link token out of the
// address bar with a redirect.
func (p *Portal) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		p.message(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	now := p.now()
	l, ok, state, err := p.sessions.takeLink(r.Context(), r.PostForm.Get("token"), now)
	if err != nil {
		p.internal(w, r, "take portal link", err)
		return
	}
	if !ok {
		p.linkRefused(w, r, state) // link_messages.go
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := p.sessions.end(r.Context(), c.Value); err != nil {
			p.internal(w, r, "end portal session", err)
			return
		}
	}
	token, err := p.sessions.start(r.Context(), l, now.Add(p.opts.SessionTTL))
	if err != nil {
		p.internal(w, r, "start portal session", err)
		return
	}
	p.setCookie(w, r, sessionCookie, token, int(p.opts.SessionTTL.Seconds()), http.SameSiteStrictMode)
	p.setCookie(w, r, hopCookie, "1", 60, http.SameSiteLaxMode)
	p.log.Info("portal session started", "user_id", l.userID, "org_id", l.orgID)
	http.Redirect(w, r, p.base+"/", http.StatusSeeOther)
}

// visit resolves the session of r and checks that its user may still use
// the pages; otherwise it answers and returns false.
func (p *Portal) visit(w http.ResponseWriter, r *http.Request, takeFlash bool) (*visit, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		p.noSession(w, r)
		return nil, false
	}
	s, ok, err := p.sessions.get(r.Context(), c.Value, p.now(), takeFlash)
	if err != nil {
		p.internal(w, r, "get portal session", err)
		return nil, false
	}
	if !ok {
		p.noSession(w, r)
		return nil, false
	}
	u, err := p.svc.GetUser(r.Context(), s.userID)
	if errors.Is(err, keys.ErrNotFound) || err == nil && !u.Enabled {
		if err := p.sessions.end(r.Context(), c.Value); err != nil {
			p.internal(w, r, "end portal session", err)
			return nil, false
		}
		p.setCookie(w, r, sessionCookie, "", -1, http.SameSiteStrictMode)
		p.message(w, r, http.StatusForbidden, "Access ended", "Your account can no longer manage API keys here.")
		return nil, false
	}
	if err != nil {
		p.internal(w, r, "get user", err)
		return nil, false
	}
	v := &visit{token: c.Value, sess: s, user: u}
	if s.orgID != "" && p.svc.Enabled(keys.TypeOrg) {
		if m := membership(u, s.orgID); m != nil && p.roles[m.Role] {
			v.org = m
		}
	}
	if _, err := r.Cookie(hopCookie); err == nil {
		p.setCookie(w, r, hopCookie, "", -1, http.SameSiteLaxMode)
	}
	return v, true
}

// noSession answers a request without a live session. Right after a link
// opened from another site, browsers hold back the Strict session cookie for
// the rest of that navigation, redirect included; the Lax hop cookie tells
// that case apart, and a same-site reload (meta refresh) then carries the
// session cookie.
func (p *Portal) noSession(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(hopCookie); err == nil && r.Method == http.MethodGet {
		p.setCookie(w, r, hopCookie, "", -1, http.SameSiteLaxMode)
		pg := p.newPage(nil, "Signing in")
		pg.Heading, pg.Message, pg.Refresh = "Signing in…", "", true
		p.render(w, r, http.StatusOK, "message", pg)
		return
	}
	p.message(w, r, http.StatusUnauthorized, "Session ended",
		"Your session has ended. Go back to the app and open the API keys page again.")
}

// post wraps a form handler with the session and CSRF checks.
func (p *Portal) post(h func(http.ResponseWriter, *http.Request, *visit)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		v, ok := p.visit(w, r, false)
		if !ok {
			return
		}
		if err := r.ParseForm(); err != nil {
			p.message(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
			return
		}
		if !web.CheckCSRF(r.PostForm.Get("csrf"), v.sess.csrf) {
			p.message(w, r, http.StatusForbidden, "Form expired", "This form has expired. Go back, reload the page and try again.")
			return
		}
		h(w, r, v)
	}
}

func (p *Portal) home(w http.ResponseWriter, r *http.Request) {
	v, ok := p.visit(w, r, true)
	if !ok {
		return
	}
	pg, err := p.homePage(r.Context(), v)
	if err != nil {
		p.internal(w, r, "list keys", err)
		return
	}
	p.render(w, r, http.StatusOK, "home", pg)
}

func (p *Portal) homePage(ctx context.Context, v *visit) (*page, error) {
	pg := p.newPage(v, "API keys")
	if p.svc.Enabled(keys.TypePersonal) {
		s := &section{Scope: "personal", Heading: "Your API keys",
			Intro: "Keys that act as you. Keep them secret: anyone with a key can use the API in your name."}
		if err := p.fillSection(ctx, s, keys.KeyFilter{UserID: v.user.ID, Type: keys.TypePersonal}); err != nil {
			return nil, err
		}
		s.Quota = p.quotaLine(ctx, keys.UserOwner(v.user.ID), v.user.Quota, keys.TypePersonal)
		pg.Sections = append(pg.Sections, s)
	}
	if v.org != nil {
		s := &section{Scope: "org", Heading: "Keys of " + v.org.Name, OrgKeys: true,
			Intro: "Keys that belong to the organization " + v.org.Name + ": anyone with one can use the API on its behalf."}
		if err := p.fillSection(ctx, s, keys.KeyFilter{OrgID: v.org.OrgID, Type: keys.TypeOrg}); err != nil {
			return nil, err
		}
		if o, err := p.svc.GetOrg(ctx, v.org.OrgID); err == nil {
			s.Quota = p.quotaLine(ctx, keys.OrgOwner(o.ID), o.Quota, keys.TypeOrg)
		}
		pg.Sections = append(pg.Sections, s)
	}
	return pg, nil
}

// listLimit bounds each list; more keys than this is not a self-service case.
const listLimit = 100

func (p *Portal) fillSection(ctx context.Context, s *section, f keys.KeyFilter) error {
	s.Choices = p.choices("")
	f.Limit = listLimit
	for _, status := range [...]string{"active", "expired"} {
		f.Status = status
		ks, next, err := p.svc.ListKeys(ctx, f)
		if err != nil {
			return fmt.Errorf("list %s keys: %w", s.Scope, err)
		}
		s.More = s.More || next != ""
		if status == "active" {
			s.Limits = p.limitsText(s.Scope, len(ks), next != "")
		}
		for _, k := range ks {
			s.Keys = append(s.Keys, keyRow{Key: k, Status: status, Spark: p.sparkline(ctx, k.ID)})
		}
	}
	return nil
}

func (p *Portal) sparkline(ctx context.Context, keyID string) template.HTML {
	if p.usage == nil {
		return ""
	}
	r, _ := usage.ParseChartRange("24h")
	q := r.Query(p.now())
	q.KeyID = keyID
	points, _, err := p.usage.Usage(ctx, q)
	if err != nil {
		p.log.Warn("portal: usage", "key_id", keyID, "err", err)
		return ""
	}
	return usage.Sparkline(points, usage.ChartOptions{Title: "Requests in the last 24 hours",
		From: q.From, To: q.To, Interval: q.Interval, AllowedColor: p.opts.AccentColor})
}

// choices lists the expiration choices with selected (or the default)
// preselected.
func (p *Portal) choices(selected string) []choice {
	if selected == "" {
		selected = p.opts.DefaultExpiration
	}
	var out []choice
	found := false
	for _, e := range p.svc.Expirations() {
		c := choice{Value: e.Name, Label: expirationLabel(e.Name), Selected: e.Name == selected}
		found = found || c.Selected
		out = append(out, c)
	}
	if !found {
		out = append([]choice{{Value: "", Label: "Default", Selected: true}}, out...)
	}
	return out
}

// expirationLabel spells out a choice: "2w" is "2 weeks".
func expirationLabel(name string) string {
	if name == "never" {
		return "Never"
	}
	units := []struct{ suffix, one, many string }{{"mo", "month", "months"}, {"d", "day", "days"}, {"w", "week", "weeks"}, {"y", "year", "years"}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(name, u.suffix); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			if n == "1" {
				return "1 " + u.one
			}
			return n + " " + u.many
		}
	}
	return name
}

func (p *Portal) createKey(w http.ResponseWriter, r *http.Request, v *visit) {
	in := keys.CreateKeyInput{UserID: v.user.ID, DisplayName: strings.TrimSpace(r.PostForm.Get("display_name")),
		ExpiresIn: r.PostForm.Get("expires_in")}
	scope := r.PostForm.Get("scope")
	switch {
	case scope == "personal" && p.svc.Enabled(keys.TypePersonal):
		in.Type = keys.TypePersonal
	case scope == "org" && v.org != nil:
		in.Type, in.OrgID = keys.TypeOrg, v.org.OrgID
	default:
		p.notFound(w, r)
		return
	}
	var err error
	var k *keys.Key
	var token string
	if in.DisplayName == "" {
		err = keys.FieldError("display_name", "give the key a name you will recognize it by")
	} else if utf8.RuneCountInString(in.DisplayName) > 200 {
		err = keys.FieldError("display_name", "must be at most 200 characters")
	} else {
		k, token, err = p.createCapped(r.Context(), v, in)
	}
	var kerr *keys.Error
	if errors.As(err, &kerr) && kerr.Code == keys.EInvalid {
		pg, err := p.homePage(r.Context(), v)
		if err != nil {
			p.internal(w, r, "list keys", err)
			return
		}
		for _, s := range pg.Sections {
			if s.Scope == scope {
				s.Name, s.Choices, s.Error, s.FieldErrors = in.DisplayName, p.choices(in.ExpiresIn), "The key was not created.", kerr.Fields
				if len(kerr.Fields) == 0 {
					s.Error += " " + kerr.Message
				}
			}
		}
		p.render(w, r, http.StatusBadRequest, "home", pg)
		return
	}
	if err != nil {
		p.internal(w, r, "create key", err)
		return
	}
	p.log.Info("portal key created", "key_id", k.ID, "user_id", v.user.ID, "org_id", in.OrgID)
	// The token is shown in this response only: no redirect could carry it
	// without putting it in a URL or keeping it on the server.
	pg := p.newPage(v, "Key created")
	pg.Key, pg.Token = &keyRow{Key: *k, Status: k.Status(p.now())}, token
	p.render(w, r, http.StatusOK, "created", pg)
}

// ownKey returns the key id names when v may manage it, and
// keys.ErrNotFound otherwise: other people's keys do not exist here.
func (p *Portal) ownKey(ctx context.Context, v *visit, id string) (*keys.Key, error) {
	if !keys.ValidKeyID(id) {
		return nil, keys.ErrNotFound
	}
	k, err := p.svc.GetKey(ctx, id)
	if err != nil {
		return nil, err
	}
	mine := false
	switch k.Type {
	case keys.TypePersonal:
		mine = p.svc.Enabled(keys.TypePersonal) && k.UserID == v.user.ID
	case keys.TypeOrg:
		mine = v.org != nil && k.OrgID == v.org.OrgID
	}
	if !mine || k.Archived() {
		return nil, keys.ErrNotFound
	}
	return k, nil
}

// keyFor answers the key of the request path, or an error page.
func (p *Portal) keyFor(w http.ResponseWriter, r *http.Request, v *visit) (*keys.Key, bool) {
	k, err := p.ownKey(r.Context(), v, r.PathValue("id"))
	if errors.Is(err, keys.ErrNotFound) {
		p.notFound(w, r)
		return nil, false
	}
	if err != nil {
		p.internal(w, r, "get key", err)
		return nil, false
	}
	return k, true
}

func (p *Portal) keyPage(w http.ResponseWriter, r *http.Request) {
	v, ok := p.visit(w, r, true)
	if !ok {
		return
	}
	k, ok := p.keyFor(w, r, v)
	if !ok {
		return
	}
	rng, ok := usage.ParseChartRange(r.URL.Query().Get("range"))
	if !ok {
		rng, _ = usage.ParseChartRange("24h")
	}
	pg := p.newPage(v, keyTitle(k))
	pg.Key = &keyRow{Key: *k, Status: k.Status(p.now())}
	if pg.Key.Status == "active" {
		pg.Graces = p.graceChoices()
	}
	for _, cr := range usage.ChartRanges() {
		pg.Ranges = append(pg.Ranges, rangeLink{Name: cr.Name, Label: cr.Label, Current: cr.Name == rng.Name})
	}
	if p.usage != nil {
		q := rng.Query(p.now())
		q.KeyID = k.ID
		points, _, err := p.usage.Usage(r.Context(), q)
		if err != nil {
			p.internal(w, r, "usage", err)
			return
		}
		pg.Chart = usage.SVG(points, usage.ChartOptions{Title: "Requests with " + keyTitle(k) + ", last " + rng.Label,
			From: q.From, To: q.To, Interval: q.Interval, AllowedColor: p.opts.AccentColor})
	}
	p.render(w, r, http.StatusOK, "key", pg)
}

func keyTitle(k *keys.Key) string {
	if k.DisplayName != "" {
		return k.DisplayName
	}
	return k.Display
}

func (p *Portal) confirmDelete(w http.ResponseWriter, r *http.Request) {
	v, ok := p.visit(w, r, false)
	if !ok {
		return
	}
	k, ok := p.keyFor(w, r, v)
	if !ok {
		return
	}
	pg := p.newPage(v, "Delete "+keyTitle(k))
	pg.Key = &keyRow{Key: *k, Status: k.Status(p.now())}
	p.render(w, r, http.StatusOK, "delete", pg)
}

// deleteKey archives the key: SPEC §1, deleting in the portal archives.
func (p *Portal) deleteKey(w http.ResponseWriter, r *http.Request, v *visit) {
	k, ok := p.keyFor(w, r, v)
	if !ok {
		return
	}
	if _, err := p.svc.ArchiveKey(v.actor(r.Context()), k.ID); err != nil {
		p.internal(w, r, "archive key", err)
		return
	}
	p.log.Info("portal key deleted", "key_id", k.ID, "user_id", v.user.ID)
	p.setFlash(r, v, fmt.Sprintf("Deleted %s (%s). Requests with it are now rejected.", keyTitle(k), k.Display))
	http.Redirect(w, r, p.base+"/", http.StatusSeeOther)
}

func (p *Portal) logout(w http.ResponseWriter, r *http.Request, v *visit) {
	if err := p.sessions.end(r.Context(), v.token); err != nil {
		p.internal(w, r, "end portal session", err)
		return
	}
	p.setCookie(w, r, sessionCookie, "", -1, http.SameSiteStrictMode)
	p.message(w, r, http.StatusOK, "Signed out", "You have signed out. To manage your keys again, open the API keys page from the app.")
}
