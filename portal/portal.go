// Package portal serves the hosted self-service pages where end users manage
// their own API keys, reached through single-use links (SPEC §7).
package portal

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
	"github.com/keygate/keygate/usage"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Options configure a Portal. Service is required; zero values of the rest
// mean the defaults of SPEC §8.
type Options struct {
	Service *keys.Service
	// Usage draws the charts; nil leaves them out.
	Usage keys.UsageStore
	// Path is where the pages are mounted, such as "/_keygate/portal"
	// (the default); a trailing slash is ignored.
	Path string
	// PublicURL is the base URL links start with, such as
	// "https://api.example.com"; empty makes links relative to the host
	// (path only). An https URL also marks cookies Secure.
	PublicURL string
	// Title, LogoURL and AccentColor brand the pages; Title defaults to
	// "API keys", an empty LogoURL shows no logo, AccentColor (#rgb or
	// #rrggbb) defaults to indigo.
	Title, LogoURL, AccentColor string
	// DefaultExpiration is the expiration choice preselected in the create
	// form; empty offers the service's default as its own choice.
	DefaultExpiration string
	// OrgKeyRoles are the org roles that may manage an org's keys; nil
	// means Owner and Admin.
	OrgKeyRoles []string
	// LinkTTL is the lifetime of a link minted with ttl 0 (default 15m);
	// SessionTTL that of a session (default 1h).
	LinkTTL, SessionTTL time.Duration
	// RollGraceOptions are the grace periods offered when rolling a key;
	// nil means 0s, 1h, 24h and 168h.
	RollGraceOptions []time.Duration
	// Quotas reports quota use for the "N of M requests left" line; nil
	// leaves it out. QuotaDefaults is each key type's quota.
	Quotas        QuotaReader
	QuotaDefaults [4]keys.Quota
	// MaxUserKeys and MaxOrgKeys cap the active personal keys of a user and
	// the active keys of an org for the portal to create another; 0 means
	// no cap. CreatesPerHour limits the keys one user creates here per hour;
	// 0 means no limit. The admin API is not bound by them.
	MaxUserKeys, MaxOrgKeys, CreatesPerHour int
	// Logger defaults to discarding everything.
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Portal serves the self-service pages and mints links to them. Links and
// sessions live in the service's store, so they work on every node. Create
// it with New and stop it with Close; safe for concurrent use.
type Portal struct {
	svc      *keys.Service
	usage    keys.UsageStore
	opts     Options
	base     string // Path without a trailing slash
	roles    map[string]bool
	graces   []time.Duration
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	creates  *limiter.Memory // nil: creation is not rate limited
	createMu sync.Mutex      // count and create as one step under the caps
	pages    map[string]*template.Template
	css      []byte
	handler  http.Handler

	stop chan struct{}
	done chan struct{}
}

// sweepEvery is how often expired links and sessions are dropped.
const sweepEvery = time.Minute

// New returns a Portal and starts its expiry sweeper.
func New(opts Options) *Portal {
	if opts.Path == "" {
		opts.Path = "/_keygate/portal"
	}
	if opts.Title == "" {
		opts.Title = "API keys"
	}
	if !usage.ValidColor(opts.AccentColor) {
		opts.AccentColor = usage.DefaultAllowedColor
	}
	if opts.OrgKeyRoles == nil {
		opts.OrgKeyRoles = []string{"Owner", "Admin"}
	}
	if opts.LinkTTL <= 0 {
		opts.LinkTTL = 15 * time.Minute
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = time.Hour
	}
	p := &Portal{
		svc:      opts.Service,
		usage:    opts.Usage,
		opts:     opts,
		base:     strings.TrimRight(opts.Path, "/"),
		roles:    map[string]bool{},
		log:      opts.Logger,
		now:      opts.Now,
		sessions: newSessions(opts.Service.Store()),
		pages:    map[string]*template.Template{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	for _, r := range opts.OrgKeyRoles {
		p.roles[r] = true
	}
	p.graces = opts.RollGraceOptions
	if p.graces == nil {
		p.graces = defaultGraceOptions
	}
	if opts.CreatesPerHour > 0 {
		p.creates = limiter.NewMemory(limiter.MemoryOptions{Now: p.now, IdleTTL: time.Hour})
	}
	p.parseTemplates()
	css, _ := fs.ReadFile(assets, "static/portal.css")
	// The accent colour is checked above, so it cannot break out of CSS.
	p.css = bytes.ReplaceAll(css, []byte("#4f46e5"), []byte(opts.AccentColor))
	p.handler = p.routes()
	go p.sweeper()
	return p
}

// Close stops the sweeper. Links and sessions stay valid until expiry.
func (p *Portal) Close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	if p.creates != nil {
		p.creates.Close()
	}
}

func (p *Portal) sweeper() {
	defer close(p.done)
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := p.sessions.sweep(ctx, p.now()); err != nil {
				p.log.Warn("portal sweep failed", "err", err)
			}
			cancel()
		}
	}
}

func (p *Portal) parseTemplates() {
	funcs := template.FuncMap{"date": usage.FormatTime}
	names, _ := fs.Glob(assets, "templates/*.html")
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		p.pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", n))
	}
}

// Handler returns the handler of the pages. It expects the whole request
// path, mount prefix (Path) included, and answers 404 outside it.
func (p *Portal) Handler() http.Handler { return p.handler }

// NewLink mints a single-use link to the pages for userID and, when orgID
// is set, for that org's keys too. The user must exist and be enabled; the
// org, when given, must exist and have the user as a member. ttl 0 means
// LinkTTL. Invalid input is a *keys.Error naming the field. The URL is
// PublicURL + Path + "/login?token=<256-bit token>"; only the token's
// SHA-256 is kept.
func (p *Portal) NewLink(ctx context.Context, userID, orgID string, ttl time.Duration) (string, int64, error) {
	if ttl == 0 {
		ttl = p.opts.LinkTTL
	}
	if ttl < 0 {
		return "", 0, keys.FieldError("ttl_seconds", "must be positive")
	}
	u, err := p.svc.GetUser(ctx, userID)
	switch {
	case errors.Is(err, keys.ErrNotFound):
		return "", 0, keys.FieldError("user_id", fmt.Sprintf("user %q does not exist", userID))
	case err != nil:
		return "", 0, fmt.Errorf("portal link: %w", err)
	case !u.Enabled:
		return "", 0, keys.FieldError("user_id", fmt.Sprintf("user %q is blocked", userID))
	}
	if orgID != "" {
		if _, err := p.svc.GetOrg(ctx, orgID); errors.Is(err, keys.ErrNotFound) {
			return "", 0, keys.FieldError("org_id", fmt.Sprintf("org %q does not exist", orgID))
		} else if err != nil {
			return "", 0, fmt.Errorf("portal link: %w", err)
		}
		if membership(u, orgID) == nil {
			return "", 0, keys.FieldError("org_id", fmt.Sprintf("user %q is not a member of org %q", userID, orgID))
		}
	}
	expires := p.now().Add(ttl)
	token, err := p.sessions.addLink(ctx, link{userID: userID, orgID: orgID, expires: expires})
	if err != nil {
		return "", 0, fmt.Errorf("portal link: %w", err)
	}
	u0 := strings.TrimRight(p.opts.PublicURL, "/") + p.base + "/login?token=" + url.QueryEscape(token)
	return u0, expires.Unix(), nil
}

func membership(u *keys.User, orgID string) *keys.UserOrg {
	for i := range u.Orgs {
		if u.Orgs[i].OrgID == orgID {
			return &u.Orgs[i]
		}
	}
	return nil
}
