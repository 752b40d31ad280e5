// Package config loads keygate's typed configuration from YAML and KEYGATE_* environment variables.
//
// Viper stays inside this package: other packages receive the plain values of
// a Config. A Config is a value with no hidden state; it is safe to read from
// many goroutines once loaded, and nothing here mutates it after Load returns.
//
// Struct tags named "config" give each field's YAML key; the dotted path of
// tags (such as rate_limits.personal.window) is the key used in error
// messages, in env names (KEYGATE_RATE_LIMITS_PERSONAL_WINDOW) and on the
// admin settings page.
package config

import (
	"log/slog"
	"time"
)

// DefaultPath is the file Load reads when it is given no path.
const DefaultPath = "keygate.yaml"

// Config is keygate's whole configuration (SPEC §8). The zero value is not
// useful; start from Default, Load or Parse.
type Config struct {
	Proxy      Proxy      `config:"proxy"`
	Admin      Admin      `config:"admin"`
	Store      Store      `config:"store"`
	Cache      Cache      `config:"cache"`
	Keys       Keys       `config:"keys"`
	RateLimits RateLimits `config:"rate_limits"`
	Quotas     Quotas     `config:"quotas"`
	Limiter    Limiter    `config:"limiter"`
	Usage      Usage      `config:"usage"`
	Portal     Portal     `config:"portal"`
	Webhooks   Webhooks   `config:"webhooks"`
	Log        Log        `config:"log"`
	Metrics    Metrics    `config:"metrics"`
	// ShutdownTimeout bounds the wait for in-flight requests on SIGTERM/SIGINT.
	ShutdownTimeout time.Duration `config:"shutdown_timeout"`
	ForwardAuth     ForwardAuth   `config:"forward_auth"`

	// File is the YAML file Load read, empty when it read none. It is not a
	// configuration key.
	File string `config:"-"`
}

// Proxy configures the proxy port (SPEC §3).
type Proxy struct {
	Listen          string        `config:"listen"`
	Upstreams       []string      `config:"upstreams"`        // base URLs, load balanced; at least one
	UpstreamTimeout time.Duration `config:"upstream_timeout"` // whole upstream response; then 504
	DialTimeout     time.Duration `config:"dial_timeout"`
	PublicPaths     []string      `config:"public_paths"` // globs that pass without a key
	KeyHeaders      []string      `config:"key_headers"`
	KeyQueryParam   string        `config:"key_query_param"` // empty: keys are not read from the query
	HeaderPrefix    string        `config:"header_prefix"`
	// StripCredentials removes the credential header or parameter before forwarding.
	StripCredentials bool  `config:"strip_credentials"`
	MaxBodyBytes     int64 `config:"max_body_bytes"`
	// DropHeaders are request headers never forwarded: routing overrides
	// and client-address claims some upstream stacks obey.
	DropHeaders []string `config:"drop_headers"`

	// ReadTimeout, WriteTimeout and IdleTimeout bound the client side of the
	// proxy port: reading a request, writing a response, and an idle
	// keep-alive connection.
	ReadTimeout  time.Duration `config:"read_timeout"`
	WriteTimeout time.Duration `config:"write_timeout"`
	IdleTimeout  time.Duration `config:"idle_timeout"`
	// MaxConnsPerUpstream caps open connections to each upstream.
	MaxConnsPerUpstream int `config:"max_conns_per_upstream"`
	// HealthPath answers 200 on the proxy port without a key, for load
	// balancers that see only that port; empty turns it off.
	HealthPath string `config:"health_path"`
}

// ForwardAuth configures forward auth (SPEC §10): nginx, Caddy, Traefik or
// Envoy asks keygate, per request, whether to let it through.
type ForwardAuth struct {
	// Path is where the sub-requests come on the proxy port; "" = off.
	// When set, proxy.upstreams may be empty.
	Path string `config:"path"`
	// LimitedStatus answers a request over its limits: 429, or 403 for
	// nginx's auth_request, which passes only 2xx, 401 and 403 on.
	LimitedStatus int `config:"limited_status"`
}

// Admin configures the admin port (SPEC §4).
type Admin struct {
	Listen string `config:"listen"`
	// Token is the admin bearer token. Empty means keygate generates one at
	// start, which Validate allows only for a loopback Listen.
	Token string `config:"token"`
	// SessionTTL is how long a dashboard login cookie lasts.
	SessionTTL time.Duration `config:"session_ttl"`
}

// Store selects the database.
type Store struct {
	Driver string `config:"driver"` // "sqlite" or "postgres"
	Path   string `config:"path"`   // sqlite file
	DSN    string `config:"dsn"`    // postgres connection string
	// MaxConns caps the Postgres connection pool of this node (the LISTEN
	// connection for invalidation comes on top).
	MaxConns int `config:"max_conns"`
}

// Cache configures the in-memory key cache.
type Cache struct {
	TTL         time.Duration `config:"ttl"`          // when a known key is rechecked with the store (see README, design notes)
	NegativeTTL time.Duration `config:"negative_ttl"` // how long an unknown token is remembered
	MaxEntries  int64         `config:"max_entries"`  // ristretto max cost, one per entry
	// WarmKeys is how many keys are loaded into the cache at start, the most
	// recently used first; 0 turns warm-up off. At most MaxEntries are.
	WarmKeys int `config:"warm_keys"`
}

// Keys configures key tokens, expiration choices and which key types work.
type Keys struct {
	Prefix string `config:"prefix"`
	// ExpirationOptions are the choices offered to users, each accepted by
	// ParseExpiration; DefaultExpiration is one of them.
	ExpirationOptions []string   `config:"expiration_options"`
	DefaultExpiration string     `config:"default_expiration"`
	Personal          KeyType    `config:"personal"`
	Org               OrgKeyType `config:"org"`
	Generic           KeyType    `config:"generic"`
}

// KeyType configures one key type. Keys of a disabled type fail validation
// until it is enabled again.
type KeyType struct {
	Enabled bool `config:"enabled"`
}

// OrgKeyType configures org keys.
type OrgKeyType struct {
	Enabled bool `config:"enabled"`
	// InvalidateOnCreatorLeave archives an org key for good when the member
	// who created it leaves the org.
	InvalidateOnCreatorLeave bool `config:"invalidate_on_creator_leave"`
}

// RateLimits holds the per-owner limit for each key type; a user or org may
// carry its own limit that overrides these.
type RateLimits struct {
	Personal RateLimit `config:"personal"`
	Org      RateLimit `config:"org"`
	Generic  RateLimit `config:"generic"`
}

// RateLimit allows Limit requests per Window. Limit 0 means unlimited.
type RateLimit struct {
	Limit  int64         `config:"limit"`
	Window time.Duration `config:"window"`
}

// Quotas holds the per-owner request allowance of each key type (SPEC §12);
// a user, org or generic key may carry its own quota that overrides these.
type Quotas struct {
	Personal Quota `config:"personal"`
	Org      Quota `config:"org"`
	Generic  Quota `config:"generic"`
}

// Quota allows Limit requests per Period ("day", "month" or "total").
// Limit 0 means no quota.
type Quota struct {
	Limit  int64  `config:"limit"`
	Period string `config:"period"`
}

// Limiter selects and tunes the rate limiter backend.
type Limiter struct {
	Backend   string `config:"backend"` // "memory" or "redis"
	RedisAddr string `config:"redis_addr"`
	OnError   string `config:"on_error"` // "allow" or "deny" when Redis fails

	RedisPassword string        `config:"redis_password"`
	RedisDB       int           `config:"redis_db"`
	Timeout       time.Duration `config:"timeout"`  // one Redis round trip; then OnError decides
	IdleTTL       time.Duration `config:"idle_ttl"` // memory backend forgets owners idle this long
	// RedisRequired makes /readyz answer 503 while Redis cannot be reached;
	// otherwise it only names the problem and the node stays ready.
	RedisRequired bool `config:"redis_required"`
}

// Usage configures usage counting.
type Usage struct {
	FlushInterval time.Duration `config:"flush_interval"`
	Retention     time.Duration `config:"retention"` // hourly buckets
	// MinuteRetention is how long minute buckets are kept before only their
	// hourly roll-up remains (48h in SPEC §6).
	MinuteRetention time.Duration `config:"minute_retention"`
}

// Portal configures the hosted self-service pages (SPEC §7).
type Portal struct {
	Path string `config:"path"`
	// PublicURL is the base URL in portal links; empty means derive it from
	// proxy.listen.
	PublicURL   string   `config:"public_url"`
	OrgKeyRoles []string `config:"org_key_roles"` // roles that may manage an org's keys
	Title       string   `config:"title"`

	LogoURL     string        `config:"logo_url"`     // empty: no logo
	AccentColor string        `config:"accent_color"` // #rgb or #rrggbb
	LinkTTL     time.Duration `config:"link_ttl"`     // portal links without ttl_seconds
	SessionTTL  time.Duration `config:"session_ttl"`  // portal session cookie
	// RollGraceOptions are the grace periods offered when rolling a key, as
	// Go durations from 0s to 720h.
	RollGraceOptions []string `config:"roll_grace_options"`

	// MaxUserKeys and MaxOrgKeys cap the active keys a user (personal) or
	// an org may hold for the portal to create more; 0 means no cap.
	MaxUserKeys int `config:"max_user_keys"`
	MaxOrgKeys  int `config:"max_org_keys"`
	// CreatesPerHour limits how many keys one user may create in the
	// portal per hour; 0 means no limit.
	CreatesPerHour int `config:"creates_per_hour"`
}

// Log configures logging.
type Log struct {
	Format string `config:"format"` // "text" or "json"
	Level  string `config:"level"`  // "debug", "info", "warn" or "error"
	// Access logs one line per proxied request (key id, status, durations).
	Access bool `config:"access"`
	// AccessSample logs one request in AccessSample (1: every request).
	AccessSample int `config:"access_sample"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen, when set, serves /metrics there without the admin token (it
	// stays on the admin port, behind the token, as well).
	Listen string `config:"listen"`
}

// SlogLevel returns Level as a slog.Level; an unknown level means info
// (Validate rejects it before that matters).
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Default returns the defaults of SPEC §8, plus those of the keys keygate
// adds. It is what Load returns for an empty file and no env overrides, and
// config.example.yaml spells it out. Lists are empty, never nil.
func Default() Config {
	window := RateLimit{Limit: 0, Window: time.Minute}
	quota := Quota{Limit: 0, Period: "month"}
	return Config{
		Proxy: Proxy{
			Listen:           ":8080",
			Upstreams:        []string{"http://127.0.0.1:3000"},
			UpstreamTimeout:  30 * time.Second,
			DialTimeout:      5 * time.Second,
			PublicPaths:      []string{},
			KeyHeaders:       []string{"X-API-Key"},
			KeyQueryParam:    "",
			HeaderPrefix:     "X-Keygate-",
			StripCredentials: true,
			MaxBodyBytes:     10 << 20,
			DropHeaders: []string{"X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Override-URL",
				"X-Original-Host", "X-Host", "X-HTTP-Host-Override", "X-Client-IP", "True-Client-IP", "X-Cluster-Client-IP"},
			ReadTimeout:         30 * time.Second,
			WriteTimeout:        30 * time.Second,
			IdleTimeout:         60 * time.Second,
			MaxConnsPerUpstream: 1024,
			HealthPath:          "/_keygate/health",
		},
		Admin: Admin{
			Listen:     "127.0.0.1:9080",
			Token:      "",
			SessionTTL: 12 * time.Hour,
		},
		Store: Store{Driver: "sqlite", Path: "keygate.db", DSN: "", MaxConns: 10},
		Cache: Cache{TTL: 30 * time.Second, NegativeTTL: 5 * time.Second, MaxEntries: 100_000, WarmKeys: 10_000},
		Keys: Keys{
			Prefix:            "kg",
			ExpirationOptions: []string{"2w", "1mo", "3mo", "6mo", "1y", "never"},
			DefaultExpiration: "never",
			Personal:          KeyType{Enabled: true},
			Org:               OrgKeyType{Enabled: true, InvalidateOnCreatorLeave: false},
			Generic:           KeyType{Enabled: true},
		},
		RateLimits: RateLimits{Personal: window, Org: window, Generic: window},
		Quotas:     Quotas{Personal: quota, Org: quota, Generic: quota},
		Limiter: Limiter{
			Backend:       "memory",
			RedisAddr:     "127.0.0.1:6379",
			OnError:       "allow",
			RedisPassword: "",
			RedisDB:       0,
			Timeout:       50 * time.Millisecond,
			IdleTTL:       10 * time.Minute,
			RedisRequired: false,
		},
		Usage: Usage{
			FlushInterval:   time.Second,
			Retention:       2160 * time.Hour,
			MinuteRetention: 48 * time.Hour,
		},
		Portal: Portal{
			Path:             "/_keygate/portal",
			PublicURL:        "",
			OrgKeyRoles:      []string{"Owner", "Admin"},
			Title:            "API keys",
			LogoURL:          "",
			AccentColor:      "#4f46e5",
			LinkTTL:          15 * time.Minute,
			SessionTTL:       time.Hour,
			RollGraceOptions: []string{"0s", "1h", "24h", "168h"},

			MaxUserKeys:    25,
			MaxOrgKeys:     100,
			CreatesPerHour: 20,
		},
		Webhooks: Webhooks{
			Endpoints:    []WebhookEndpoint{},
			ExpiryNotice: []time.Duration{168 * time.Hour, 24 * time.Hour},
			MaxAge:       72 * time.Hour,
			RetryDelays:  []time.Duration{5 * time.Second, time.Minute, 10 * time.Minute, time.Hour, 6 * time.Hour, 12 * time.Hour},
			Timeout:      10 * time.Second,
		},
		Log:             Log{Format: "text", Level: "info", Access: false, AccessSample: 1},
		Metrics:         Metrics{Listen: ""},
		ShutdownTimeout: 15 * time.Second,
		ForwardAuth:     ForwardAuth{Path: "", LimitedStatus: 429},
	}
}
