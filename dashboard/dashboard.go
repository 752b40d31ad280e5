// Package dashboard is the admin web UI: server-rendered pages on the admin
// port, next to (and apart from) the JSON API of package admin.
package dashboard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/usage"
	"github.com/keygate/keygate/web"
)

//go:embed templates/*.html static/*
var dashAssets embed.FS

// Options configure a Dashboard. Service, Store and Token are
// required.
type Options struct {
	Service *keys.Service
	Store   keys.Store
	// Token is the admin token the login form asks for. Empty refuses every
	// login.
	Token string
	// Settings are the effective settings, secrets already redacted
	// (config.Config.Redacted), shown as they are.
	Settings []config.Setting
	// SessionTTL is how long a login lasts; 0 means 12h.
	SessionTTL time.Duration
	// Quotas shows owners' quota standing; nil shows none. QuotaDefaults
	// is each key type's quota.
	Quotas        QuotaReader
	QuotaDefaults [4]keys.Quota
	// RollGraceOptions are the grace periods offered when rolling a key;
	// nil means 0s, 1h, 24h and 168h.
	RollGraceOptions []time.Duration
	// Throttle counts failed logins per address; nil means a throttle of
	// the dashboard's own. Share the API's so both count together.
	Throttle *admin.AuthThrottle
	// Logger defaults to discarding everything.
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// Webhooks tells whether any webhook endpoint is configured.
	Webhooks bool
}

// Dashboard is the admin web UI (SPEC §7): server-rendered pages behind a
// login with the admin token, on the admin port's mux next to the API.
// Sessions live in the store, so a login works on every node. Create it
// with New; safe for concurrent use.
type Dashboard struct {
	svc      *keys.Service
	store    keys.Store
	settings []config.Setting
	ttl      time.Duration
	log      *slog.Logger
	now      func() time.Time
	tokenSum [32]byte
	hasToken bool
	throttle *admin.AuthThrottle
	webhooks bool // any endpoint configured
	pages    map[string]*template.Template
	sessions *web.Sessions // in the store: a login works on every node

	quotas        QuotaReader
	quotaDefaults [4]keys.Quota
	graces        []time.Duration
}

// Cookie names: the session, and the login form's double-submit token.
const (
	dashCookie      = "keygate_admin"
	dashLoginCookie = "keygate_admin_login"
)

// dashCSP lets pages load this origin's stylesheet and script only.
const dashCSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New returns a Dashboard; Register mounts it.
func New(o Options) *Dashboard {
	d := &Dashboard{
		svc:      o.Service,
		store:    o.Store,
		settings: o.Settings,
		ttl:      o.SessionTTL,
		log:      o.Logger,
		now:      o.Now,
		tokenSum: sha256.Sum256([]byte(o.Token)),
		hasToken: o.Token != "",
		throttle: o.Throttle,
		webhooks: o.Webhooks,
		pages:    map[string]*template.Template{},
		sessions: web.NewSessions(o.Store, keys.SessionDashboard),

		quotas:        o.Quotas,
		quotaDefaults: o.QuotaDefaults,
		graces:        o.RollGraceOptions,
	}
	if d.graces == nil {
		d.graces = []time.Duration{0, time.Hour, 24 * time.Hour, 168 * time.Hour}
	}
	if d.ttl <= 0 {
		d.ttl = 12 * time.Hour
	}
	if d.throttle == nil {
		d.throttle = admin.NewAuthThrottle(0, 0, o.Now)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	funcs := template.FuncMap{"date": usage.FormatTime, "rate": rateText, "json": prettyJSON, "quota": quotaText, "num": thousands, "has": hasField, "details": auditDetails}
	names, _ := fs.Glob(dashAssets, "templates/*.html")
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name != "layout" {
			d.pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(dashAssets, "templates/layout.html", n))
		}
	}
	return d
}

// Register adds the dashboard's routes to mux (the admin Server's Mux):
// "GET /" and page routes outside /v1/, none of which the API uses.
func (d *Dashboard) Register(mux *http.ServeMux) {
	h := func(pattern string, fn http.HandlerFunc) { mux.Handle(pattern, d.secured(fn)) }
	h("GET /login", d.loginPage)
	h("POST /login", d.login)
	h("POST /logout", d.auth(d.logout))
	h("GET /static/{name}", d.asset)
	h("GET /favicon.ico", http.NotFound)

	h("GET /{$}", d.auth(d.overview))
	h("GET /keys", d.auth(d.keyList))
	h("GET /keys/new", d.auth(d.newKeyPage))
	h("POST /keys", d.auth(d.createKey))
	h("GET /keys/{id}", d.auth(d.keyPage))
	h("POST /keys/{id}/archive", d.auth(d.archiveKey))
	h("POST /keys/{id}/roll", d.auth(d.rollKey))
	h("GET /keys/{id}/delete", d.auth(d.confirmDeleteKey))
	h("POST /keys/{id}/delete", d.auth(d.deleteKey))
	h("GET /users", d.auth(d.userList))
	h("GET /users/{id}", d.auth(d.userPage))
	h("POST /users/{id}/block", d.auth(d.blockUser))
	h("POST /users/{id}/unblock", d.auth(d.blockUser))
	h("GET /orgs", d.auth(d.orgList))
	h("GET /orgs/{id}", d.auth(d.orgPage))
	d.registerOwnerForms(h) // owner_forms.go
	h("GET /audit", d.auth(d.auditPage))
	h("GET /settings", d.auth(d.settingsPage))
	h("GET /webhooks", d.auth(d.webhooksPage))
	h("POST /webhooks/{id}/retry", d.auth(d.retryDelivery))
	h("GET /", d.auth(func(w http.ResponseWriter, r *http.Request) { d.notFound(w, r) }))
}

// secured sets the headers every page carries.
func (d *Dashboard) secured(fn http.HandlerFunc) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.message(w, r, http.StatusForbidden, "Request refused", "This form was sent from another site.")
	}))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", dashCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		fn(w, r.WithContext(keys.WithActor(r.Context(), "admin")))
	}))
}

func (d *Dashboard) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	types := map[string]string{"admin.css": "text/css; charset=utf-8", "copy.js": "text/javascript; charset=utf-8"}
	b, err := fs.ReadFile(dashAssets, "static/"+name)
	if name == "copy.js" {
		b, err = web.CopyJS, nil
	}
	if err != nil || types[name] == "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", types[name])
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(b)
}

// dashView is a request by a signed-in admin.
type dashView struct {
	token string
	sess  *keys.Session
}

// ctxKey carries the dashView of a request to the handlers.
type dashViewKey struct{}

func viewOf(r *http.Request) *dashView {
	v, _ := r.Context().Value(dashViewKey{}).(*dashView)
	return v
}

// auth requires a session; posts also need the session's CSRF token.
// Without a session, pages redirect to the login form.
func (d *Dashboard) auth(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := d.session(r)
		if err != nil {
			d.log.Error("dashboard session", "err", err)
			d.message(w, r, http.StatusServiceUnavailable, "Store unavailable", "The store did not answer. Try again in a moment.")
			return
		}
		if v == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				next := r.URL.Path
				if r.URL.RawQuery != "" {
					next += "?" + r.URL.RawQuery
				}
				http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
				return
			}
			d.message(w, r, http.StatusUnauthorized, "Signed out", "Your session has ended. Sign in again.")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if err := r.ParseForm(); err != nil {
				d.message(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
				return
			}
			if !web.CheckCSRF(r.PostForm.Get("csrf"), v.sess.CSRF) {
				d.message(w, r, http.StatusForbidden, "Form expired", "This form has expired. Go back, reload the page and try again.")
				return
			}
		}
		fn(w, r.WithContext(context.WithValue(r.Context(), dashViewKey{}, v)))
	}
}

// session returns the live session of r, taking its flash message on a
// GET, or nil when there is none.
func (d *Dashboard) session(r *http.Request) (*dashView, error) {
	c, err := r.Cookie(dashCookie)
	if err != nil {
		return nil, nil
	}
	s, err := d.sessions.Get(r.Context(), c.Value, d.now(), r.Method == http.MethodGet)
	if web.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &dashView{token: c.Value, sess: s}, nil
}

// setFlash leaves msg for the session's next page; a store failure costs
// the message only, so it is logged, not shown.
func (d *Dashboard) setFlash(r *http.Request, msg string) {
	v := viewOf(r)
	if v == nil {
		return
	}
	if err := d.sessions.SetFlash(r.Context(), v.token, msg); err != nil {
		d.log.Error("dashboard flash message lost", "err", err)
	}
}

func (d *Dashboard) secure(r *http.Request) bool { return web.Secure(r, "") }

func (d *Dashboard) cookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: d.secure(r), SameSite: http.SameSiteStrictMode})
}

// checkToken compares digests in constant time, so that neither the token
// nor its length leaks.
func (d *Dashboard) checkToken(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return d.hasToken && subtle.ConstantTimeCompare(sum[:], d.tokenSum[:]) == 1
}

// safeNext returns next when it is a well-formed path on this host, "/"
// otherwise: the login form must not redirect anywhere else.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

type loginData struct {
	Next, Form string
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	d.renderLogin(w, r, http.StatusOK, "")
}

// renderLogin shows the login form with a double-submit token, as the login
// post has no session yet to hold a CSRF token. A token the browser holds
// already is kept: another tab's (or a stray request's) trip through the
// form must not invalidate the form on screen.
func (d *Dashboard) renderLogin(w http.ResponseWriter, r *http.Request, status int, errMsg string) {
	form := web.NewToken()
	if c, err := r.Cookie(dashLoginCookie); err == nil && len(c.Value) == len(form) {
		form = c.Value
	}
	d.cookie(w, r, dashLoginCookie, form, "/login", 3600)
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostForm.Get("next")
	}
	pg := &dashPage{PageTitle: "Sign in", Error: errMsg, Data: loginData{Next: safeNext(next), Form: form}}
	d.render(w, r, status, "login", pg)
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		d.message(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	c, err := r.Cookie(dashLoginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("form"))) != 1 {
		d.renderLogin(w, r, http.StatusForbidden, "The sign-in form expired. Try again.")
		return
	}
	addr := admin.ClientAddr(r)
	if wait, blocked := d.throttle.Blocked(addr); blocked {
		d.renderLogin(w, r, http.StatusTooManyRequests, fmt.Sprintf(
			"Too many failed sign-ins from your address. Try again in %d seconds.", int64((wait+time.Second-1)/time.Second)))
		return
	}
	if !d.checkToken(r.PostForm.Get("token")) {
		d.throttle.Fail(addr)
		d.log.Warn("dashboard login failed", "remote", addr)
		d.renderLogin(w, r, http.StatusUnauthorized, "That is not the admin token.")
		return
	}
	now := d.now()
	// Sweep here: logins are rare.
	if err := d.sessions.Sweep(r.Context(), now); err != nil {
		d.log.Warn("dashboard session sweep failed", "err", err)
	}
	token, _, err := d.sessions.Start(r.Context(), "", "", now.Add(d.ttl))
	if err != nil {
		d.log.Error("dashboard login", "err", err)
		d.message(w, r, http.StatusServiceUnavailable, "Store unavailable", "The store did not answer. Try again in a moment.")
		return
	}
	d.cookie(w, r, dashCookie, token, "/", int(d.ttl.Seconds()))
	d.cookie(w, r, dashLoginCookie, "", "/login", -1)
	d.log.Info("dashboard login", "remote", r.RemoteAddr)
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if err := d.sessions.End(r.Context(), viewOf(r).token); err != nil {
		d.log.Error("dashboard logout", "err", err)
		d.message(w, r, http.StatusServiceUnavailable, "Store unavailable", "The store did not answer; you are still signed in. Try again in a moment.")
		return
	}
	d.cookie(w, r, dashCookie, "", "/", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// dashPage is what every dashboard template gets.
type dashPage struct {
	PageTitle string
	Nav       string
	CSRF      string
	Flash     string
	Error     string
	SignedIn  bool
	Data      any
}

func (d *Dashboard) page(r *http.Request, title, nav string, data any) *dashPage {
	pg := &dashPage{PageTitle: title, Nav: nav, Data: data}
	if v := viewOf(r); v != nil {
		pg.CSRF, pg.Flash, pg.SignedIn = v.sess.CSRF, v.sess.Flash, true
	}
	return pg
}

func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, pg *dashPage) {
	var buf bytes.Buffer
	if err := d.pages[name].Execute(&buf, pg); err != nil {
		d.log.Error("dashboard page failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type messageData struct{ Heading, Message string }

func (d *Dashboard) message(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	d.render(w, r, status, "message", d.page(r, heading, "", messageData{heading, msg}))
}

func (d *Dashboard) notFound(w http.ResponseWriter, r *http.Request) {
	d.message(w, r, http.StatusNotFound, "Not found", "There is no such page or record.")
}

// found reports whether a record was read (err is nil); otherwise it has
// answered 404 for an unknown or malformed id and 500 for anything else.
func (d *Dashboard) found(w http.ResponseWriter, r *http.Request, what string, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, keys.ErrNotFound) || keys.ErrorCode(err) == keys.EInvalid:
		d.notFound(w, r)
	default:
		d.internal(w, r, what, err)
	}
	return false
}

func (d *Dashboard) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	d.log.Error("dashboard: "+what, "err", err)
	d.message(w, r, http.StatusInternalServerError, "Something went wrong", what+" failed; see the log.")
}
