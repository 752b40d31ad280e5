package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Problem is one invalid configuration value.
type Problem struct {
	Key string // dotted key, with [i] for a list item: "proxy.upstreams[1]"
	Msg string
}

func (p Problem) Error() string { return p.Key + ": " + p.Msg }

// Error lists every problem found in a configuration, in key order.
type Error struct {
	File     string // the file read, empty when none
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid config")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	if len(e.Problems) == 1 {
		b.WriteString(": " + e.Problems[0].Error())
		return b.String()
	}
	fmt.Fprintf(&b, ": %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n\t" + p.Error())
	}
	return b.String()
}

// Validate checks every value and returns nil or an *Error naming each bad
// key and its problem. Load and Parse call it; call it again after changing
// a Config by hand.
func (c *Config) Validate() error {
	if p := c.problems(); len(p) > 0 {
		return &Error{Problems: p}
	}
	return nil
}

// problems checks c, in key order.
func (c *Config) problems() []Problem {
	var v checker

	p := c.Proxy
	v.hostPort("proxy.listen", p.Listen)
	if len(p.Upstreams) == 0 && c.ForwardAuth.Path == "" {
		v.add("proxy.upstreams", "must list at least one upstream URL (or set forward_auth.path)")
	}
	for i, u := range p.Upstreams {
		v.httpURL(fmt.Sprintf("proxy.upstreams[%d]", i), u)
	}
	v.positive("proxy.upstream_timeout", p.UpstreamTimeout)
	v.positive("proxy.dial_timeout", p.DialTimeout)
	for i, g := range p.PublicPaths {
		key := fmt.Sprintf("proxy.public_paths[%d]", i)
		if !strings.HasPrefix(g, "/") {
			v.add(key, "%q must start with /", g)
		} else if _, err := path.Match(g, ""); err != nil {
			v.add(key, "%q is not a valid glob (like /docs/*)", g)
		}
	}
	for i, h := range p.KeyHeaders {
		if !isToken(h) {
			v.add(fmt.Sprintf("proxy.key_headers[%d]", i), "%q is not a valid header name", h)
		}
	}
	if q := p.KeyQueryParam; q != "" && strings.Trim(q, unreserved) != "" {
		v.add("proxy.key_query_param", "%q may only contain letters, digits and - . _ ~", q)
	}
	if !isToken(p.HeaderPrefix) {
		v.add("proxy.header_prefix", "%q is not a valid header name prefix (like X-Keygate-)", p.HeaderPrefix)
	}
	for i, h := range p.DropHeaders {
		if !isToken(h) {
			v.add(fmt.Sprintf("proxy.drop_headers[%d]", i), "%q is not a valid header name", h)
		}
	}
	if p.MaxBodyBytes <= 0 {
		v.add("proxy.max_body_bytes", "must be positive, got %d", p.MaxBodyBytes)
	}
	v.positive("proxy.read_timeout", p.ReadTimeout)
	v.positive("proxy.write_timeout", p.WriteTimeout)
	v.positive("proxy.idle_timeout", p.IdleTimeout)
	if p.MaxConnsPerUpstream <= 0 {
		v.add("proxy.max_conns_per_upstream", "must be positive, got %d", p.MaxConnsPerUpstream)
	}

	if h, fwd := p.HealthPath, c.ForwardAuth.Path; h != "" {
		switch {
		case !strings.HasPrefix(h, "/") || strings.HasPrefix(h, "//"):
			v.add("proxy.health_path", "%q must start with a single / (or be empty to turn it off)", h)
		case strings.ContainsAny(h, "?#*% \t"):
			v.add("proxy.health_path", "%q must be a plain path (no ? # * %% or spaces)", h)
		case h == c.Portal.Path || strings.HasPrefix(h, c.Portal.Path+"/"):
			v.add("proxy.health_path", "%q is under portal.path %q", h, c.Portal.Path)
		case h == fwd: // below it is fine: the exact health path is answered first
			v.add("proxy.health_path", "%q is also forward_auth.path", h)
		}
	}

	a := c.Admin
	listenOK := v.hostPort("admin.listen", a.Listen)
	switch {
	case strings.ContainsFunc(a.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		v.add("admin.token", "must not contain spaces or control characters")
	case a.Token == "" && listenOK && !isLoopback(a.Listen):
		// SPEC §4: a generated token is printed once; fine on loopback only.
		v.add("admin.token", "must be set when admin.listen %q is not a loopback address", a.Listen)
	case len(a.Token) < MinAdminToken && listenOK && !isLoopback(a.Listen):
		// Reachable from other hosts: it must resist guessing.
		v.add("admin.token", "must be at least %d characters when admin.listen %q is not a loopback address (got %d)",
			MinAdminToken, a.Listen, len(a.Token))
	}
	v.positive("admin.session_ttl", a.SessionTTL)

	s := c.Store
	v.oneOf("store.driver", s.Driver, "sqlite", "postgres")
	if s.Driver == "sqlite" && s.Path == "" {
		v.add("store.path", "must be set when store.driver is sqlite")
	}
	if s.Driver == "postgres" && s.DSN == "" {
		v.add("store.dsn", "must be set when store.driver is postgres")
	}
	if s.MaxConns < 1 {
		v.add("store.max_conns", "must be positive, got %d", s.MaxConns)
	}

	v.positive("cache.ttl", c.Cache.TTL)
	v.positive("cache.negative_ttl", c.Cache.NegativeTTL)
	if c.Cache.MaxEntries <= 0 {
		v.add("cache.max_entries", "must be positive, got %d", c.Cache.MaxEntries)
	}
	if c.Cache.WarmKeys < 0 {
		v.add("cache.warm_keys", "must not be negative (0 turns warm-up off), got %d", c.Cache.WarmKeys)
	}

	k := c.Keys
	if n := len(k.Prefix); n < 1 || n > 16 || strings.Trim(k.Prefix, alnum) != "" {
		v.add("keys.prefix", "%q must be 1 to 16 letters or digits", k.Prefix)
	}
	if len(k.ExpirationOptions) == 0 {
		v.add("keys.expiration_options", "must list at least one choice (like never)")
	}
	for i, o := range k.ExpirationOptions {
		key := fmt.Sprintf("keys.expiration_options[%d]", i)
		if _, _, err := ParseExpiration(o); err != nil {
			v.add(key, "%v", err)
		} else if j := slices.Index(k.ExpirationOptions[:i], o); j >= 0 {
			v.add(key, "%q is listed twice", o)
		}
	}
	if len(k.ExpirationOptions) > 0 && slices.Index(k.ExpirationOptions, k.DefaultExpiration) < 0 {
		v.add("keys.default_expiration", "%q is not one of keys.expiration_options (%s)",
			k.DefaultExpiration, strings.Join(k.ExpirationOptions, ", "))
	}

	for _, r := range []struct {
		typ string
		RateLimit
	}{{"personal", c.RateLimits.Personal}, {"org", c.RateLimits.Org}, {"generic", c.RateLimits.Generic}} {
		if r.Limit < 0 {
			v.add("rate_limits."+r.typ+".limit", "must not be negative (0 means unlimited), got %d", r.Limit)
		}
		v.positive("rate_limits."+r.typ+".window", r.Window)
		if r.Window > maxRateWindow {
			v.add("rate_limits."+r.typ+".window", "must be at most %s (a year), got %s", formatDuration(maxRateWindow), formatDuration(r.Window))
		}
	}

	for _, q := range []struct {
		typ string
		q   Quota
	}{{"personal", c.Quotas.Personal}, {"org", c.Quotas.Org}, {"generic", c.Quotas.Generic}} {
		if q.q.Limit < 0 {
			v.add("quotas."+q.typ+".limit", "must not be negative (0 means no quota), got %d", q.q.Limit)
		}
		v.oneOf("quotas."+q.typ+".period", q.q.Period, "day", "month", "total")
	}

	l := c.Limiter
	v.oneOf("limiter.backend", l.Backend, "memory", "redis")
	if l.RedisAddr != "" || l.Backend == "redis" {
		v.hostPort("limiter.redis_addr", l.RedisAddr)
	}
	v.oneOf("limiter.on_error", l.OnError, "allow", "deny")
	if l.RedisDB < 0 {
		v.add("limiter.redis_db", "must not be negative, got %d", l.RedisDB)
	}
	v.positive("limiter.timeout", l.Timeout)
	v.positive("limiter.idle_ttl", l.IdleTTL)

	v.positive("usage.flush_interval", c.Usage.FlushInterval)
	v.positive("usage.retention", c.Usage.Retention)
	v.positive("usage.minute_retention", c.Usage.MinuteRetention)

	po := c.Portal
	switch {
	case !strings.HasPrefix(po.Path, "/") || strings.HasPrefix(po.Path, "//"):
		v.add("portal.path", "%q must start with a single /", po.Path)
	case po.Path == "/" || strings.HasSuffix(po.Path, "/"):
		// "/" would hide the whole upstream; a trailing slash doubles in joins.
		v.add("portal.path", "%q must not end with /", po.Path)
	case strings.ContainsAny(po.Path, "?#*% \t"):
		v.add("portal.path", "%q must be a plain path (no ? # * %% or spaces)", po.Path)
	}
	if po.PublicURL != "" {
		v.httpURL("portal.public_url", po.PublicURL)
	}
	for i, r := range po.OrgKeyRoles {
		if strings.TrimSpace(r) == "" {
			v.add(fmt.Sprintf("portal.org_key_roles[%d]", i), "must not be empty")
		}
	}
	if u := po.LogoURL; u != "" && !(strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//")) {
		v.httpURL("portal.logo_url", u)
	}
	if !isHexColor(po.AccentColor) {
		v.add("portal.accent_color", "%q is not a hex colour (like #4f46e5 or #fff)", po.AccentColor)
	}
	v.positive("portal.link_ttl", po.LinkTTL)
	if len(po.RollGraceOptions) == 0 {
		v.add("portal.roll_grace_options", "must offer at least one grace period")
	}
	for i, g := range po.RollGraceOptions {
		if d, err := time.ParseDuration(g); err != nil || d < 0 || d > 720*time.Hour {
			v.add(fmt.Sprintf("portal.roll_grace_options[%d]", i), "%q is not a duration from 0s to 720h", g)
		}
	}
	v.positive("portal.session_ttl", po.SessionTTL)
	for _, n := range []struct {
		key string
		v   int
	}{{"portal.max_user_keys", po.MaxUserKeys}, {"portal.max_org_keys", po.MaxOrgKeys}, {"portal.creates_per_hour", po.CreatesPerHour}} {
		if n.v < 0 {
			v.add(n.key, "must not be negative (0 means no limit), got %d", n.v)
		}
	}

	v.oneOf("log.format", c.Log.Format, "text", "json")
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	if c.Log.AccessSample < 1 {
		v.add("log.access_sample", "must be 1 or more (log one request in N), got %d", c.Log.AccessSample)
	}
	if c.Metrics.Listen != "" {
		v.hostPort("metrics.listen", c.Metrics.Listen)
	}
	v.positive("shutdown_timeout", c.ShutdownTimeout)

	fa := c.ForwardAuth
	switch {
	case fa.Path == "":
	case !strings.HasPrefix(fa.Path, "/") || strings.HasPrefix(fa.Path, "//"):
		v.add("forward_auth.path", "%q must start with a single / (like /_keygate/auth)", fa.Path)
	case fa.Path == "/" || strings.HasSuffix(fa.Path, "/"):
		v.add("forward_auth.path", "%q must not end with /", fa.Path)
	case strings.ContainsAny(fa.Path, "?#*% \t"):
		v.add("forward_auth.path", "%q must be a plain path (no ? # * %% or spaces)", fa.Path)
	case underOrAt(fa.Path, po.Path) || underOrAt(po.Path, fa.Path):
		v.add("forward_auth.path", "%q must not overlap portal.path %q", fa.Path, po.Path)
	}
	if fa.LimitedStatus != 429 && fa.LimitedStatus != 403 {
		v.add("forward_auth.limited_status", "must be 429, or 403 for nginx's auth_request, got %d", fa.LimitedStatus)
	}
	c.webhookProblems(&v)
	return v.problems
}

// checker collects problems; its methods each check one kind of value.
type checker struct{ problems []Problem }

func (v *checker) add(key, format string, args ...any) {
	v.problems = append(v.problems, Problem{key, fmt.Sprintf(format, args...)})
}

func (v *checker) positive(key string, d time.Duration) {
	if d <= 0 {
		v.add(key, "must be a positive duration (like 1m or 500ms), got %s", formatDuration(d))
	}
}

func (v *checker) oneOf(key, s string, choices ...string) {
	if slices.Index(choices, s) < 0 {
		last := len(choices) - 1
		v.add(key, "%q is not supported (%s or %s)", s, strings.Join(choices[:last], ", "), choices[last])
	}
}

// hostPort checks a listen or dial address and reports whether it is valid.
func (v *checker) hostPort(key, addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(key, "%q is not host:port (like :8080 or 127.0.0.1:8080)", addr)
		return false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.add(key, "%q has no valid port (a number from 0 to 65535)", addr)
		return false
	}
	return true
}

func (v *checker) httpURL(key, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		v.add(key, "%q is not an http(s) URL", s)
	} else if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		v.add(key, "%q must not carry a query, fragment or user", s)
	}
}

// isLoopback reports whether a listen address binds to loopback only. An
// empty host binds to every interface; other host names are not resolved,
// so they count as non-loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// MinAdminToken is the shortest admin.token accepted on an admin listener
// that is not loopback-only (32 characters, as from openssl rand -hex 16).
const MinAdminToken = 32

// maxRateWindow is keys.MaxRateWindow: windows beyond a year are refused.
const maxRateWindow = 366 * 24 * time.Hour

const (
	alnum      = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	unreserved = alnum + "-._~"
	tchar      = alnum + "!#$%&'*+-.^_`|~" // RFC 9110 token characters
)

// underOrAt reports whether path p is base or below it.
func underOrAt(p, base string) bool {
	return p == base || strings.HasPrefix(p, base+"/")
}

func isToken(s string) bool { return s != "" && strings.Trim(s, tchar) == "" }

func isHexColor(s string) bool {
	return (len(s) == 4 || len(s) == 7) && s[0] == '#' && strings.Trim(s[1:], "0123456789abcdefABCDEF") == ""
}
