package config

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// full is testdata/full.yaml decoded: every key differs from Default.
func full() Config {
	return Config{
		Proxy: Proxy{
			Listen:              "127.0.0.1:8081",
			Upstreams:           []string{"http://10.0.0.1:3000", "https://api.internal/v1"},
			UpstreamTimeout:     10 * time.Second,
			DialTimeout:         2 * time.Second,
			PublicPaths:         []string{"/health", "/docs/*"},
			KeyHeaders:          []string{"X-API-Key", "X-Token"},
			KeyQueryParam:       "api_key",
			HeaderPrefix:        "X-Gate-",
			StripCredentials:    false,
			MaxBodyBytes:        1 << 20,
			DropHeaders:         []string{"X-Original-URL", "X-Debug"},
			ReadTimeout:         11 * time.Second,
			WriteTimeout:        12 * time.Second,
			IdleTimeout:         2 * time.Minute,
			MaxConnsPerUpstream: 64,
			HealthPath:          "/lb/health",
		},
		Admin: Admin{Listen: "0.0.0.0:9090", Token: "s3cret-admin-token-0123456789abcdef", SessionTTL: 24 * time.Hour},
		Store: Store{Driver: "postgres", Path: "other.db", DSN: "postgres://keygate:pw@127.0.0.1:5432/test", MaxConns: 25},
		Cache: Cache{TTL: time.Minute, NegativeTTL: 10 * time.Second, MaxEntries: 5000, WarmKeys: 2000},
		Keys: Keys{
			Prefix:            "acme",
			ExpirationOptions: []string{"7d", "1mo", "36h", "never"},
			DefaultExpiration: "1mo",
			Personal:          KeyType{Enabled: false},
			Org:               OrgKeyType{Enabled: false, InvalidateOnCreatorLeave: true},
			Generic:           KeyType{Enabled: false},
		},
		RateLimits: RateLimits{
			Personal: RateLimit{Limit: 100, Window: 2 * time.Minute},
			Org:      RateLimit{Limit: 1000, Window: time.Hour},
			Generic:  RateLimit{Limit: 5, Window: 500 * time.Millisecond},
		},
		Quotas: Quotas{
			Personal: Quota{Limit: 10000, Period: "day"},
			Org:      Quota{Limit: 500000, Period: "total"},
			Generic:  Quota{Limit: 7, Period: "day"},
		},
		Limiter: Limiter{
			Backend: "redis", RedisAddr: "redis:6380", OnError: "deny",
			RedisPassword: "hunter2", RedisDB: 3, Timeout: 20 * time.Millisecond, IdleTTL: time.Hour,
			RedisRequired: true,
		},
		Usage: Usage{FlushInterval: 5 * time.Second, Retention: 720 * time.Hour, MinuteRetention: 24 * time.Hour},
		Portal: Portal{
			Path: "/keys", PublicURL: "https://api.example.com", OrgKeyRoles: []string{"Owner"},
			Title: "Acme keys", LogoURL: "https://example.com/logo.png", AccentColor: "#fff",
			LinkTTL: 5 * time.Minute, SessionTTL: 30 * time.Minute,
			RollGraceOptions: []string{"0s", "30m"},
			MaxUserKeys:      5, MaxOrgKeys: 10, CreatesPerHour: 3,
		},
		Webhooks: Webhooks{
			Endpoints: []WebhookEndpoint{
				{URL: "https://hooks.example.com/keygate?src=kg", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Events: []string{}},
				{URL: "http://10.0.0.9/in", Secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", Events: []string{"api_key.expiring", "api_key.expired"}},
			},
			ExpiryNotice: []time.Duration{72 * time.Hour},
			MaxAge:       24 * time.Hour,
			RetryDelays:  []time.Duration{time.Second, time.Minute},
			Timeout:      3 * time.Second,
		},
		Log:             Log{Format: "json", Level: "debug", Access: true, AccessSample: 10},
		Metrics:         Metrics{Listen: "127.0.0.1:9100"},
		ShutdownTimeout: 3 * time.Second,
		ForwardAuth:     ForwardAuth{Path: "/auth", LimitedStatus: 403},
	}
}

func TestDefault(t *testing.T) {
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	for _, yaml := range []string{"", "# nothing\n", "proxy:\nrate_limits:\n  personal:\n"} {
		c, err := Parse(yaml, nil)
		if err != nil {
			t.Fatalf("Parse(%q): %v", yaml, err)
		}
		if !reflect.DeepEqual(*c, d) {
			t.Errorf("Parse(%q) = %+v, want Default()", yaml, *c)
		}
	}
}

func TestValidateByHand(t *testing.T) {
	c := Default()
	c.Proxy.Upstreams = nil
	c.Limiter.Backend = "Redis"
	err := c.Validate()
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 2 ||
		e.Problems[0].Key != "proxy.upstreams" || e.Problems[1].Key != "limiter.backend" {
		t.Errorf("Validate = %v, want proxy.upstreams and limiter.backend", err)
	}
}

func TestFullFile(t *testing.T) {
	c, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := full()
	want.File = "testdata/full.yaml"
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("Load(full.yaml) =\n%+v\nwant\n%+v", *c, want)
	}
	// Every key really differs from its default, or this test proves less.
	d, f := Default(), full()
	df, ff := fieldsOf(&d), fieldsOf(&f)
	for i := range df {
		if reflect.DeepEqual(df[i].v.Interface(), ff[i].v.Interface()) {
			t.Errorf("full.yaml leaves %s at its default", df[i].key)
		}
	}
}

func TestYAMLOverrides(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(*Config)
	}{
		{"nested bool", "keys:\n  org:\n    invalidate_on_creator_leave: true\n",
			func(c *Config) { c.Keys.Org.InvalidateOnCreatorLeave = true }},
		{"flow rate limit", "rate_limits:\n  org: {limit: 10, window: 1s}\n",
			func(c *Config) { c.RateLimits.Org = RateLimit{10, time.Second} }},
		{"one field of a pair keeps the other", "rate_limits:\n  org: {limit: 10}\n",
			func(c *Config) { c.RateLimits.Org.Limit = 10 }},
		{"empty list clears", "proxy:\n  key_headers: []\n",
			func(c *Config) { c.Proxy.KeyHeaders = []string{} }},
		{"null keeps default", "proxy:\n  key_headers:\n  listen: ~\n", func(*Config) {}},
		{"list as one string", "proxy:\n  upstreams: http://a:1, http://b:2\n",
			func(c *Config) { c.Proxy.Upstreams = []string{"http://a:1", "http://b:2"} }},
		{"quoted bool and number", "proxy:\n  strip_credentials: \"false\"\n  max_body_bytes: \"100\"\n",
			func(c *Config) { c.Proxy.StripCredentials = false; c.Proxy.MaxBodyBytes = 100 }},
		{"float that is whole", "proxy:\n  max_body_bytes: 1e6\n",
			func(c *Config) { c.Proxy.MaxBodyBytes = 1e6 }},
		{"keys are case-insensitive", "Proxy:\n  Listen: \":1\"\n",
			func(c *Config) { c.Proxy.Listen = ":1" }},
		{"top level", "shutdown_timeout: 1m30s\n",
			func(c *Config) { c.ShutdownTimeout = 90 * time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.yaml, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(*c, want) {
				t.Errorf("got\n%+v\nwant\n%+v", *c, want)
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want func(*Config)
	}{
		{"nested int", "", []string{"KEYGATE_RATE_LIMITS_PERSONAL_LIMIT=5"},
			func(c *Config) { c.RateLimits.Personal.Limit = 5 }},
		{"three-level bool", "", []string{"KEYGATE_KEYS_ORG_INVALIDATE_ON_CREATOR_LEAVE=true"},
			func(c *Config) { c.Keys.Org.InvalidateOnCreatorLeave = true }},
		{"list", "", []string{"KEYGATE_PROXY_UPSTREAMS=http://a:1, http://b:2,"},
			func(c *Config) { c.Proxy.Upstreams = []string{"http://a:1", "http://b:2"} }},
		{"empty list", "", []string{"KEYGATE_PROXY_KEY_HEADERS="},
			func(c *Config) { c.Proxy.KeyHeaders = []string{} }},
		{"duration", "", []string{"KEYGATE_RATE_LIMITS_ORG_WINDOW=1h"},
			func(c *Config) { c.RateLimits.Org.Window = time.Hour }},
		{"top level", "", []string{"KEYGATE_SHUTDOWN_TIMEOUT=2s"},
			func(c *Config) { c.ShutdownTimeout = 2 * time.Second }},
		{"secret", "", []string{"KEYGATE_ADMIN_TOKEN=tok"},
			func(c *Config) { c.Admin.Token = "tok" }},
		{"value with =", "", []string{"KEYGATE_STORE_DRIVER=postgres", "KEYGATE_STORE_DSN=host=db password=x"},
			func(c *Config) { c.Store.Driver = "postgres"; c.Store.DSN = "host=db password=x" }},
		{"env beats yaml", "rate_limits:\n  personal:\n    limit: 7\n    window: 1h\n",
			[]string{"KEYGATE_RATE_LIMITS_PERSONAL_LIMIT=5"},
			func(c *Config) { c.RateLimits.Personal = RateLimit{5, time.Hour} }},
		{"empty env beats yaml", "admin:\n  token: fromfile\n", []string{"KEYGATE_ADMIN_TOKEN="}, func(*Config) {}},
		{"first duplicate wins", "", []string{"KEYGATE_LOG_LEVEL=debug", "KEYGATE_LOG_LEVEL=error"},
			func(c *Config) { c.Log.Level = "debug" }},
		{"others ignored", "", []string{"KEYGATE_ADMIN_URL=http://x", "PROXY_LISTEN=:1", "keygate_log_level=debug", "garbage"},
			func(*Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.yaml, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(*c, want) {
				t.Errorf("got\n%+v\nwant\n%+v", *c, want)
			}
		})
	}
}

// TestEnvOverridesEveryKey sets every key through env alone and expects the
// same Config as full.yaml: no key lacks an override.
func TestEnvOverridesEveryKey(t *testing.T) {
	f := full()
	var env []string
	for _, fl := range fieldsOf(&f) {
		var s string
		switch x := fl.v.Interface().(type) {
		case string:
			s = x
		case []string:
			s = strings.Join(x, ",")
		case time.Duration:
			s = x.String()
		case []time.Duration:
			parts := make([]string, len(x))
			for i, d := range x {
				parts[i] = d.String()
			}
			s = strings.Join(parts, ",")
		case []WebhookEndpoint:
			b, _ := json.Marshal(x)
			s = string(b)
		default:
			s = formatValue(x)
		}
		env = append(env, fl.env+"="+s)
	}
	c, err := Parse("", env)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*c, f) {
		t.Errorf("got\n%+v\nwant\n%+v", *c, f)
	}
}

func TestEnvNamesUnique(t *testing.T) {
	d := Default()
	seen := map[string]string{}
	for _, f := range fieldsOf(&d) {
		if other, ok := seen[f.env]; ok {
			t.Errorf("%s and %s share env %s", other, f.key, f.env)
		}
		seen[f.env] = f.key
	}
	for key, env := range map[string]string{
		"admin.token":                          "KEYGATE_ADMIN_TOKEN",
		"shutdown_timeout":                     "KEYGATE_SHUTDOWN_TIMEOUT",
		"keys.org.invalidate_on_creator_leave": "KEYGATE_KEYS_ORG_INVALIDATE_ON_CREATOR_LEAVE",
	} {
		if seen[env] != key {
			t.Errorf("env for %s: want %s", key, env)
		}
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		yaml string
		env  []string
		want string
	}{
		// Decoding: wrong types and forms name the key.
		{yaml: "rate_limits:\n  personal:\n    window: abc\n", want: `rate_limits.personal.window: "abc" is not a duration (like 1m or 500ms)`},
		{yaml: "rate_limits:\n  personal:\n    limit: abc\n", want: `rate_limits.personal.limit: "abc" is not a whole number`},
		{yaml: "rate_limits:\n  personal:\n    limit: 1.5\n", want: `rate_limits.personal.limit: 1.5 is not a whole number`},
		{yaml: "proxy:\n  upstream_timeout: 30\n", want: `proxy.upstream_timeout: 30 is not a duration (add a unit, like 30s`},
		{yaml: "keys:\n  personal:\n    enabled: maybe\n", want: `keys.personal.enabled: "maybe" is not true or false`},
		{yaml: "admin:\n  token: 12345\n", want: `admin.token: expected text, got 12345; quote it ("12345")`},
		{yaml: "proxy:\n  listen:\n    host: x\n", want: `proxy.listen: expected text, got a section of keys`},
		{yaml: "proxy:\n  upstreams: 5\n", want: `proxy.upstreams: expected a list, got 5`},
		{yaml: "proxy:\n  upstreams: [\"http://a:1\", [x]]\n", want: `proxy.upstreams[1]: expected text, got a list`},
		{yaml: "proxy: 5\n", want: `proxy: expected a section of keys, got 5`},
		{yaml: "rate_limits:\n  org: 10\n", want: `rate_limits.org: expected a section of keys, got 10`},
		{env: []string{"KEYGATE_RATE_LIMITS_PERSONAL_LIMIT=ten"},
			want: `rate_limits.personal.limit: "ten" is not a whole number (from env KEYGATE_RATE_LIMITS_PERSONAL_LIMIT)`},
		{env: []string{"KEYGATE_CACHE_TTL=30"}, want: `cache.ttl: "30" is not a duration (like 1m or 500ms) (from env KEYGATE_CACHE_TTL)`},

		// Validation.
		{yaml: "proxy:\n  listen: \"8080\"\n", want: `proxy.listen: "8080" is not host:port`},
		{yaml: "proxy:\n  listen: \":http\"\n", want: `proxy.listen: ":http" has no valid port`},
		{yaml: "proxy:\n  listen: \":70000\"\n", want: `proxy.listen: ":70000" has no valid port`},
		{yaml: "proxy:\n  upstreams: []\n", want: `proxy.upstreams: must list at least one upstream URL`},
		{yaml: "proxy:\n  upstreams: [\"http://a:1\", foo]\n", want: `proxy.upstreams[1]: "foo" is not an http(s) URL`},
		{yaml: "proxy:\n  upstreams: [\"ftp://a\"]\n", want: `proxy.upstreams[0]: "ftp://a" is not an http(s) URL`},
		{yaml: "proxy:\n  upstreams: [\"http://a/?x=1\"]\n", want: `proxy.upstreams[0]: "http://a/?x=1" must not carry a query`},
		{yaml: "proxy:\n  upstream_timeout: 0s\n", want: `proxy.upstream_timeout: must be a positive duration (like 1m or 500ms), got 0s`},
		{yaml: "proxy:\n  dial_timeout: -1s\n", want: `proxy.dial_timeout: must be a positive duration`},
		{yaml: "proxy:\n  read_timeout: 0s\n", want: `proxy.read_timeout: must be a positive duration`},
		{yaml: "proxy:\n  write_timeout: 0s\n", want: `proxy.write_timeout: must be a positive duration`},
		{yaml: "proxy:\n  idle_timeout: 0s\n", want: `proxy.idle_timeout: must be a positive duration`},
		{yaml: "proxy:\n  public_paths: [health]\n", want: `proxy.public_paths[0]: "health" must start with /`},
		{yaml: "proxy:\n  public_paths: [\"/a[\"]\n", want: `proxy.public_paths[0]: "/a[" is not a valid glob`},
		{yaml: "proxy:\n  key_headers: [\"X API Key\"]\n", want: `proxy.key_headers[0]: "X API Key" is not a valid header name`},
		{yaml: "proxy:\n  key_headers: [\"\"]\n", want: `proxy.key_headers[0]: "" is not a valid header name`},
		{yaml: "proxy:\n  key_query_param: \"a&b\"\n", want: `proxy.key_query_param: "a&b" may only contain`},
		{yaml: "proxy:\n  header_prefix: \"\"\n", want: `proxy.header_prefix: "" is not a valid header name prefix`},
		{yaml: "proxy:\n  header_prefix: \"X:\"\n", want: `proxy.header_prefix: "X:" is not a valid header name prefix`},
		{yaml: "proxy:\n  max_body_bytes: 0\n", want: `proxy.max_body_bytes: must be positive, got 0`},
		{yaml: "proxy:\n  max_conns_per_upstream: 0\n", want: `proxy.max_conns_per_upstream: must be positive`},
		{yaml: "admin:\n  listen: nope\n", want: `admin.listen: "nope" is not host:port`},
		{yaml: "admin:\n  listen: \"0.0.0.0:9080\"\n  token: short\n", want: `admin.token: must be at least 32 characters when admin.listen "0.0.0.0:9080" is not a loopback address (got 5)`},
		{yaml: "rate_limits:\n  org:\n    window: 1300000h\n", want: `rate_limits.org.window: must be at most`},
		{yaml: "portal:\n  max_org_keys: -1\n", want: `portal.max_org_keys: must not be negative`},
		{yaml: "proxy:\n  drop_headers: [\"bad header\"]\n", want: `proxy.drop_headers[0]: "bad header" is not a valid header name`},
		{yaml: "admin:\n  listen: \":9080\"\n", want: `admin.token: must be set when admin.listen ":9080" is not a loopback address`},
		{yaml: "admin:\n  listen: \"example.com:9080\"\n", want: `admin.token: must be set when admin.listen`},
		{yaml: "admin:\n  token: \"tok \"\n", want: `admin.token: must not contain spaces or control characters`},
		{yaml: "admin:\n  session_ttl: 0s\n", want: `admin.session_ttl: must be a positive duration`},
		{yaml: "store:\n  driver: mysql\n", want: `store.driver: "mysql" is not supported (sqlite or postgres)`},
		{yaml: "store:\n  path: \"\"\n", want: `store.path: must be set when store.driver is sqlite`},
		{yaml: "store:\n  driver: postgres\n", want: `store.dsn: must be set when store.driver is postgres`},
		{yaml: "store:\n  max_conns: 0\n", want: `store.max_conns: must be positive, got 0`},
		{yaml: "cache:\n  ttl: 0s\n", want: `cache.ttl: must be a positive duration`},
		{yaml: "cache:\n  negative_ttl: 0s\n", want: `cache.negative_ttl: must be a positive duration`},
		{yaml: "cache:\n  max_entries: 0\n", want: `cache.max_entries: must be positive, got 0`},
		{yaml: "cache:\n  warm_keys: -1\n", want: `cache.warm_keys: must not be negative (0 turns warm-up off), got -1`},
		{yaml: "keys:\n  prefix: \"\"\n", want: `keys.prefix: "" must be 1 to 16 letters or digits`},
		{yaml: "keys:\n  prefix: \"k_g\"\n", want: `keys.prefix: "k_g" must be 1 to 16 letters or digits`},
		{yaml: "keys:\n  prefix: \"abcdefghijklmnopq\"\n", want: `keys.prefix: "abcdefghijklmnopq" must be 1 to 16`},
		{yaml: "keys:\n  expiration_options: [never, 3x]\n", want: `keys.expiration_options[1]: "3x" is not an expiration (like 2w, 1mo, 1y, 36h or never)`},
		{yaml: "keys:\n  expiration_options: [never, 1w, 1w]\n", want: `keys.expiration_options[2]: "1w" is listed twice`},
		{yaml: "keys:\n  expiration_options: []\n", want: `keys.expiration_options: must list at least one choice`},
		{yaml: "keys:\n  default_expiration: 1d\n", want: `keys.default_expiration: "1d" is not one of keys.expiration_options (2w, 1mo, 3mo, 6mo, 1y, never)`},
		{yaml: "rate_limits:\n  org:\n    limit: -1\n", want: `rate_limits.org.limit: must not be negative (0 means unlimited), got -1`},
		{yaml: "quotas:\n  org:\n    limit: -1\n", want: `quotas.org.limit: must not be negative (0 means no quota), got -1`},
		{yaml: "quotas:\n  generic:\n    period: week\n", want: `quotas.generic.period: "week" is not supported (day, month or total)`},
		{yaml: "portal:\n  roll_grace_options: [1h, 721h]\n", want: `portal.roll_grace_options[1]: "721h" is not a duration from 0s to 720h`},
		{yaml: "portal:\n  roll_grace_options: [-1s]\n", want: `portal.roll_grace_options[0]: "-1s" is not a duration from 0s to 720h`},
		{yaml: "rate_limits:\n  generic:\n    window: 0s\n", want: `rate_limits.generic.window: must be a positive duration`},
		{yaml: "limiter:\n  backend: etcd\n", want: `limiter.backend: "etcd" is not supported (memory or redis)`},
		{yaml: "limiter:\n  backend: redis\n  redis_addr: \"\"\n", want: `limiter.redis_addr: "" is not host:port`},
		{yaml: "limiter:\n  redis_addr: localhost\n", want: `limiter.redis_addr: "localhost" is not host:port`},
		{yaml: "limiter:\n  on_error: maybe\n", want: `limiter.on_error: "maybe" is not supported (allow or deny)`},
		{yaml: "limiter:\n  redis_db: -1\n", want: `limiter.redis_db: must not be negative`},
		{yaml: "limiter:\n  timeout: 0s\n", want: `limiter.timeout: must be a positive duration`},
		{yaml: "limiter:\n  idle_ttl: 0s\n", want: `limiter.idle_ttl: must be a positive duration`},
		{yaml: "usage:\n  flush_interval: 0s\n", want: `usage.flush_interval: must be a positive duration`},
		{yaml: "usage:\n  retention: 0s\n", want: `usage.retention: must be a positive duration`},
		{yaml: "usage:\n  minute_retention: 0s\n", want: `usage.minute_retention: must be a positive duration`},
		{yaml: "portal:\n  path: portal\n", want: `portal.path: "portal" must start with a single /`},
		{yaml: "portal:\n  path: /\n", want: `portal.path: "/" must not end with /`},
		{yaml: "portal:\n  path: /p/\n", want: `portal.path: "/p/" must not end with /`},
		{yaml: "portal:\n  path: \"/p q\"\n", want: `portal.path: "/p q" must be a plain path`},
		{yaml: "portal:\n  public_url: example.com\n", want: `portal.public_url: "example.com" is not an http(s) URL`},
		{yaml: "proxy:\n  health_path: health\n", want: `proxy.health_path: "health" must start with a single /`},
		{yaml: "proxy:\n  health_path: /_keygate/portal/health\n", want: `proxy.health_path: "/_keygate/portal/health" is under portal.path "/_keygate/portal"`},
		{yaml: "proxy:\n  health_path: /auth\nforward_auth:\n  path: /auth\n", want: `proxy.health_path: "/auth" is also forward_auth.path`},
		{yaml: "log:\n  access_sample: 0\n", want: `log.access_sample: must be 1 or more (log one request in N), got 0`},
		{yaml: "metrics:\n  listen: localhost\n", want: `metrics.listen: "localhost" is not host:port`},
		{yaml: "portal:\n  org_key_roles: [\" \"]\n", want: `portal.org_key_roles[0]: must not be empty`},
		{yaml: "portal:\n  logo_url: \"javascript:alert(1)\"\n", want: `portal.logo_url: "javascript:alert(1)" is not an http(s) URL`},
		{yaml: "portal:\n  logo_url: \"//evil/x.png\"\n", want: `portal.logo_url: "//evil/x.png" is not an http(s) URL`},
		{yaml: "portal:\n  accent_color: red\n", want: `portal.accent_color: "red" is not a hex colour`},
		{yaml: "portal:\n  accent_color: \"#12345\"\n", want: `portal.accent_color: "#12345" is not a hex colour`},
		{yaml: "portal:\n  link_ttl: 0s\n", want: `portal.link_ttl: must be a positive duration`},
		{yaml: "portal:\n  session_ttl: 0s\n", want: `portal.session_ttl: must be a positive duration`},
		{yaml: "log:\n  format: xml\n", want: `log.format: "xml" is not supported (text or json)`},
		{yaml: "log:\n  level: verbose\n", want: `log.level: "verbose" is not supported (debug, info, warn or error)`},
		{yaml: "shutdown_timeout: 0s\n", want: `shutdown_timeout: must be a positive duration`},
		{yaml: "forward_auth:\n  path: auth\n", want: `forward_auth.path: "auth" must start with a single /`},
		{yaml: "forward_auth:\n  path: /auth/\n", want: `forward_auth.path: "/auth/" must not end with /`},
		{yaml: "forward_auth:\n  path: /\n", want: `forward_auth.path: "/" must not end with /`},
		{yaml: "forward_auth:\n  path: \"/a?b\"\n", want: `forward_auth.path: "/a?b" must be a plain path`},
		{yaml: "forward_auth:\n  path: /_keygate/portal/auth\n", want: `forward_auth.path: "/_keygate/portal/auth" must not overlap portal.path`},
		{yaml: "forward_auth:\n  path: /_keygate\n", want: `forward_auth.path: "/_keygate" must not overlap portal.path`},
		{yaml: "forward_auth:\n  limited_status: 500\n", want: `forward_auth.limited_status: must be 429, or 403 for nginx's auth_request, got 500`},
		{yaml: "proxy:\n  upstreams: []\nforward_auth:\n  limited_status: 403\n", want: `proxy.upstreams: must list at least one upstream URL (or set forward_auth.path)`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Parse(tt.yaml, tt.env)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %v, want an *Error", err)
			}
			if len(e.Problems) != 1 {
				t.Errorf("want exactly one problem, got %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}

func TestValidValues(t *testing.T) {
	for _, yaml := range []string{
		"proxy:\n  listen: \"[::1]:0\"\n",
		"proxy:\n  upstreams: [\"https://api.example.com/v1/\"]\n",
		"proxy:\n  public_paths: [\"/docs/*\", \"/health\"]\n",
		"proxy:\n  key_query_param: api_key\n",
		"admin:\n  listen: \"localhost:9080\"\n",
		"admin:\n  listen: \"[::1]:9080\"\n",
		"admin:\n  listen: \"0.0.0.0:9080\"\n  token: 0123456789abcdef0123456789abcdef\n",
		"limiter:\n  redis_addr: \"\"\n",
		"portal:\n  logo_url: /static/logo.png\n  accent_color: \"#ABC\"\n",
		"portal:\n  public_url: \"http://127.0.0.1:8080\"\n",
		"keys:\n  expiration_options: [36h, 90d]\n  default_expiration: 90d\n",
		"proxy:\n  upstreams: []\nforward_auth:\n  path: /_keygate/auth\n  limited_status: 403\n",
		"forward_auth:\n  path: /_keygate/portalx\n",
	} {
		if _, err := Parse(yaml, nil); err != nil {
			t.Errorf("Parse(%q): %v", yaml, err)
		}
	}
}

func TestProblemsCollected(t *testing.T) {
	_, err := Parse("proxy:\n  listen: x\n  upstream: y\nlog:\n  level: loud\n", []string{"KEYGATE_CACHE_TTL=soon"})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error, got %v", err)
	}
	var keys []string
	for _, p := range e.Problems {
		keys = append(keys, p.Key)
	}
	// Unknown keys first, then decoding, then checks, each in key order.
	want := []string{"proxy.upstream", "cache.ttl", "proxy.listen", "log.level"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("problem keys = %v, want %v", keys, want)
	}
	if !strings.HasPrefix(err.Error(), "invalid config: 4 problems:\n\tproxy.upstream: unknown key") {
		t.Errorf("error = %q", err)
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"proxy:\n  upstream: [\"http://a\"]\n", "proxy.upstream: unknown key (did you mean proxy.upstreams?)"},
		{"proxi:\n  listen: \":1\"\n", "proxi.listen: unknown key (did you mean proxy.listen?)"},
		{"rate_limits:\n  personal:\n    limt: 5\n", "rate_limits.personal.limt: unknown key (did you mean rate_limits.personal.limit?)"},
		{"admin:\n  redis_addr: x\n", "admin.redis_addr: unknown key (did you mean limiter.redis_addr?)"},
		{"tls:\n  cert: x\n", "tls.cert: unknown key"},
		{"verbose: true\n", "verbose: unknown key"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.yaml, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want %q", tt.yaml, err, tt.want)
		}
	}
}

func TestMalformedYAML(t *testing.T) {
	_, err := Parse("proxy:\n  listen: [\n", nil)
	var e *Error
	if err == nil || errors.As(err, &e) {
		t.Fatalf("Parse(malformed) = %v, want a parse error", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	custom := filepath.Join(dir, "custom.yaml")
	if err := os.WriteFile(custom, []byte("log:\n  level: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("log:\n  level: loud\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)

	// No keygate.yaml in the working directory: defaults, plus env.
	c, err := Load("", []string{"KEYGATE_LOG_FORMAT=json"})
	if err != nil {
		t.Fatalf("Load(\"\") without keygate.yaml: %v", err)
	}
	want := Default()
	want.Log.Format = "json"
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("Load(\"\") = %+v", *c)
	}

	if _, err := Load("missing.yaml", nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing.yaml) = %v, want ErrNotExist", err)
	}

	c, err = Load(custom, nil)
	if err != nil || c.Log.Level != "warn" || c.File != custom {
		t.Errorf("Load(custom) = %+v, %v", c, err)
	}

	_, err = Load(bad, nil)
	if err == nil || !strings.Contains(err.Error(), "invalid config "+bad+": log.level:") {
		t.Errorf("Load(bad) = %v, want the file and key named", err)
	}

	// keygate.yaml present: read when no path is given.
	if err := os.WriteFile(DefaultPath, []byte("log:\n  level: error\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load("", nil)
	if err != nil || c.Log.Level != "error" || c.File != DefaultPath {
		t.Errorf("Load(\"\") with keygate.yaml = %+v, %v", c, err)
	}
	if err := os.WriteFile(DefaultPath, []byte("log: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load("", nil); err == nil || !strings.Contains(err.Error(), DefaultPath) {
		t.Errorf("Load(\"\") with malformed keygate.yaml = %v, want an error naming it", err)
	}
}

func TestParseExpiration(t *testing.T) {
	tests := []struct {
		in    string
		d     time.Duration
		never bool
		err   string
	}{
		{in: "never", never: true},
		{in: "1d", d: 24 * time.Hour},
		{in: "2w", d: 14 * 24 * time.Hour},
		{in: "1mo", d: 30 * 24 * time.Hour},
		{in: "3mo", d: 90 * 24 * time.Hour},
		{in: "6mo", d: 180 * 24 * time.Hour},
		{in: "1y", d: 365 * 24 * time.Hour},
		{in: "36h", d: 36 * time.Hour},
		{in: "1h30m", d: 90 * time.Minute},
		{in: "1m", d: time.Minute}, // a Go minute, not a month
		{in: "290y", d: 290 * 365 * 24 * time.Hour},
		{in: "", err: `"" is not an expiration`},
		{in: "Never", err: "is not an expiration"},
		{in: "3x", err: "is not an expiration"},
		{in: "mo", err: "is not an expiration"},
		{in: "-1d", err: "is not an expiration"},
		{in: "1.5d", err: "is not an expiration"},
		{in: " 1d", err: "is not an expiration"},
		{in: "0d", err: `"0d" is not a positive expiration`},
		{in: "0s", err: `"0s" is not a positive expiration`},
		{in: "-5h", err: `"-5h" is not a positive expiration`},
		{in: "300y", err: `"300y" is too long`},
		{in: "99999999999999999999d", err: "is too long"},
	}
	for _, tt := range tests {
		d, never, err := ParseExpiration(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseExpiration(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || d != tt.d || never != tt.never {
			t.Errorf("ParseExpiration(%q) = %v, %v, %v; want %v, %v", tt.in, d, never, err, tt.d, tt.never)
		}
	}
}

func FuzzParseExpiration(f *testing.F) {
	for _, s := range []string{"never", "2w", "1mo", "1y", "36h", "0d", "300y", "3x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, never, err := ParseExpiration(s)
		if err == nil && !never && d <= 0 {
			t.Errorf("ParseExpiration(%q) = %v with no error", s, d)
		}
		if never && (s != "never" || d != 0) {
			t.Errorf("ParseExpiration(%q) = never", s)
		}
	})
}

func TestRedacted(t *testing.T) {
	c := full()
	got := map[string]string{}
	var order []string
	for _, s := range c.Redacted() {
		got[s.Key] = s.Value
		order = append(order, s.Key)
	}
	var want []string
	for _, f := range fieldsOf(&c) {
		want = append(want, f.key)
	}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("Redacted keys = %v, want %v", order, want)
	}
	for key, val := range map[string]string{
		"admin.token":                          "[redacted]",
		"limiter.redis_password":               "[redacted]",
		"store.dsn":                            `"postgres://keygate:[redacted]@127.0.0.1:5432/test"`,
		"proxy.upstreams":                      `["http://10.0.0.1:3000", "https://api.internal/v1"]`,
		"proxy.public_paths":                   `["/health", "/docs/*"]`,
		"usage.retention":                      "720h",
		"rate_limits.generic.window":           "500ms",
		"rate_limits.org.limit":                "1000",
		"keys.org.invalidate_on_creator_leave": "true",
		"portal.title":                         `"Acme keys"`,
	} {
		if got[key] != val {
			t.Errorf("Redacted %s = %s, want %s", key, got[key], val)
		}
	}
	for _, s := range c.Redacted() {
		for _, secret := range []string{"s3cret-admin-token-0123456789abcdef", "hunter2", ":pw@"} {
			if strings.Contains(s.Value, secret) {
				t.Errorf("Redacted %s = %s shows a secret", s.Key, s.Value)
			}
		}
	}

	d := Default()
	for _, s := range d.Redacted() {
		if s.Key == "admin.token" && s.Value != `""` {
			t.Errorf("unset admin.token shows as %s, want \"\"", s.Value)
		}
		if s.Key == "public_paths" && s.Value != "[]" {
			t.Errorf("empty list shows as %s", s.Value)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"postgres://u@db/x": "postgres://u@db/x",
		"postgres://u:p%40ss@db:5432/x?sslmode=disable": "postgres://u:[redacted]@db:5432/x?sslmode=disable",
		"postgres://u@db/x?password=p&sslmode=disable":  "postgres://u@db/x?password=[redacted]&sslmode=disable",
		"host=db user=u password=secret dbname=x":       "host=db user=u password=[redacted] dbname=x",
		"host=db password = 'se cret' dbname=x":         "host=db password = [redacted] dbname=x",
		"host=db dbname=x":                              "host=db dbname=x",
		"postgres://u:p@db/x%zz":                        "[redacted]",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 500 * time.Millisecond: "500ms", time.Minute: "1m", 90 * time.Second: "1m30s",
		2160 * time.Hour: "2160h", time.Hour + 30*time.Minute: "1h30m", time.Hour + time.Second: "1h0m1s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
	} {
		if got := (Log{Level: level}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%s) = %v, want %v", level, got, want)
		}
	}
}

// The example file is the documentation: it must load to exactly Default.
func TestExampleIsDefault(t *testing.T) {
	c, err := Load("../config.example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.File = ""
	if !reflect.DeepEqual(*c, Default()) {
		t.Errorf("config.example.yaml =\n%+v\nwant Default()\n%+v", *c, Default())
	}
}

// The example file must spell out every key, in SPEC §8 order, each with a
// comment, so that leaving a key out (and so relying on Default) is caught.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	leaves := map[string]bool{}
	var want []string
	for _, f := range fieldsOf(&d) {
		leaves[f.key] = true
		want = append(want, f.key)
	}
	var got []string
	var path []string // section names by indentation level
	for n, line := range strings.Split(string(data), "\n") {
		body := strings.TrimLeft(line, " ")
		if body == "" || body[0] == '#' {
			continue
		}
		level := (len(line) - len(body)) / 2
		name, _, ok := strings.Cut(body, ":")
		if !ok || level > len(path) {
			t.Fatalf("line %d: cannot follow %q", n+1, line)
		}
		path = append(path[:level], name)
		key := strings.Join(path, ".")
		if leaves[key] {
			got = append(got, key)
			if !strings.Contains(body, " # ") {
				t.Errorf("line %d: %s has no comment", n+1, key)
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config.example.yaml keys =\n%v\nwant\n%v", got, want)
	}
}

func TestErrorFormat(t *testing.T) {
	one := &Error{File: "k.yaml", Problems: []Problem{{"a.b", "bad"}}}
	if got := one.Error(); got != "invalid config k.yaml: a.b: bad" {
		t.Errorf("one problem: %q", got)
	}
	two := &Error{Problems: []Problem{{"a", "x"}, {"b[1]", "y"}}}
	if got := two.Error(); got != "invalid config: 2 problems:\n\ta: x\n\tb[1]: y" {
		t.Errorf("two problems: %q", got)
	}
	if got := strconv.Quote(Problem{"k", "m"}.Error()); got != `"k: m"` {
		t.Errorf("Problem.Error = %s", got)
	}
}

func TestWebhooksConfig(t *testing.T) {
	const yaml = `webhooks:
  endpoints:
    - url: "https://hooks.example.com/a"
      secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    - url: "https://hooks.example.com/b"
      secret: "placeholder"
      events: [api_key.expired]
`
	// The secret of endpoint 1 from env, so it stays out of the file.
	c, err := Parse(yaml, []string{"KEYGATE_WEBHOOKS_ENDPOINTS_1_SECRET=whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Webhooks.Endpoints[1]; got.Secret != "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0" || got.URL != "https://hooks.example.com/b" || len(got.Events) != 1 {
		t.Errorf("endpoint 1 = %+v", got)
	}
	if c.Webhooks.Endpoints[0].Events == nil {
		t.Error("events default to [] (all), not nil")
	}
	for _, s := range c.Redacted() {
		if s.Key == "webhooks.endpoints" && (strings.Contains(s.Value, "whsec_") || !strings.Contains(s.Value, Redaction)) {
			t.Errorf("settings show %s", s.Value)
		}
	}
	for _, tt := range []struct{ yaml, env, want string }{
		{yaml, "", `webhooks.endpoints[1].secret: must start with whsec_`},
		{"webhooks:\n  endpoints: [{url: \"http://x/\", secret: \"whsec_!!\"}]\n", "", `webhooks.endpoints[0].secret: is not whsec_ followed by standard base64`},
		{"webhooks:\n  endpoints: [{url: \"http://x/\", secret: \"whsec_c2hvcnQ=\"}]\n", "", `must decode to 24 to 64 bytes, got 5`},
		{"webhooks:\n  endpoints: [{url: \"ftp://x/\", secret: \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"}]\n", "", `webhooks.endpoints[0].url: "ftp://x/" is not an http(s) URL`},
		{"webhooks:\n  endpoints: [{url: \"http://x/\", secret: \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\", events: [api_key.made]}]\n", "", `webhooks.endpoints[0].events[0]: "api_key.made" is not an event type`},
		{"webhooks:\n  endpoints: [{url: \"http://x/\", sekret: \"x\"}]\n", "", `unknown key "sekret"`},
		{"webhooks:\n  endpoints: \"http://x/\"\n", "", `expected a JSON list of {url, secret, events}`},
		{"webhooks:\n  expiry_notice: [24h, -1h]\n", "", `webhooks.expiry_notice[1]: must be a positive duration`},
		{"webhooks:\n  expiry_notice: [1d]\n", "", `webhooks.expiry_notice[0]: "1d" is not a duration`},
		{"webhooks:\n  retry_delays: []\n", "", `webhooks.retry_delays: must list at least one delay`},
		{"", "KEYGATE_WEBHOOKS_ENDPOINTS_0_SECRET=whsec_x", `KEYGATE_WEBHOOKS_ENDPOINTS_0_SECRET names endpoint 0, but only 0 are configured`},
	} {
		var env []string
		if tt.env != "" {
			env = []string{tt.env}
		}
		_, err := Parse(tt.yaml, env)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q %q: %v, want %s", tt.yaml, tt.env, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "MfKQ9r8G") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
	if p := UnknownEnv([]string{"KEYGATE_WEBHOOKS_ENDPOINTS_1_SECRET=x", "KEYGATE_WEBHOOKS_ENDPOINTS_1_SECRETS=x"}); len(p) != 1 || p[0].Key != "KEYGATE_WEBHOOKS_ENDPOINTS_1_SECRETS" {
		t.Errorf("UnknownEnv = %v, want only the misspelt one", p)
	}
	// The whole list from env, as JSON.
	c, err = Parse("", []string{`KEYGATE_WEBHOOKS_ENDPOINTS=[{"url":"http://127.0.0.1:9/h","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","events":["quota.exhausted"]}]`})
	if err != nil || len(c.Webhooks.Endpoints) != 1 || c.Webhooks.Endpoints[0].Events[0] != "quota.exhausted" {
		t.Errorf("env list: %+v %v", c, err)
	}
}
