// Command keygate is an API-key gateway: a reverse proxy that authenticates
// every request with an API key, enforces per-owner rate limits, records
// usage and forwards the caller's identity upstream. See README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	vmmetrics "github.com/VictoriaMetrics/metrics"
	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/cli"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/dashboard"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/portal"
	"github.com/keygate/keygate/postgres"
	"github.com/keygate/keygate/proxy"
	"github.com/keygate/keygate/quota"
	"github.com/keygate/keygate/redact"
	"github.com/keygate/keygate/usage"
	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	// HELP and TYPE lines on /metrics; the library keeps this switch global.
	vmmetrics.ExposeMetadata(true)
	// The key cache is most of the live heap and the request path allocates
	// little, so collecting at 50% growth instead of 100% costs next to no CPU
	// and keeps the heap, and RSS, a third smaller. GOGC in the environment wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := os.Environ()
	code := cli.Run(ctx, os.Args[1:], cli.Options{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Env: env, Version: version,
		Serve: func(ctx context.Context, configPath string) error {
			return serve(ctx, configPath, env, os.Stderr)
		},
	})
	stop()
	os.Exit(code)
}

// serve runs the gateway with the config at path until ctx is done.
func serve(ctx context.Context, path string, env []string, stderr io.Writer) error {
	cfg, err := config.Load(path, env)
	if err != nil {
		return err
	}
	app := NewApp(cfg, stderr)
	// A misspelt variable would otherwise be silently ignored;
	// "keygate config check" makes these errors.
	for _, p := range config.UnknownEnv(env, cli.ClientEnv()...) {
		app.Logger.Warn("environment variable ignored", "name", p.Key, "problem", p.Msg)
	}
	if err := app.Open(ctx); err != nil {
		app.Close()
		return err
	}
	<-ctx.Done()
	return app.Close()
}

// App is one running keygate: the store, the request path and both ports.
// Open starts it, Close stops it gracefully; tests run it whole on :0.
type App struct {
	Config *config.Config
	Logger *slog.Logger
	// AdminToken is the admin token in force (generated when none is configured).
	AdminToken string

	Store   keys.Store
	Service *keys.Service
	Cache   *proxy.Cache
	Gate    *proxy.Gate
	Usage   *usage.Recorder
	Quotas  *quota.Engine
	Metrics *metrics.Metrics
	Proxy   *proxy.Proxy
	Admin   *admin.Server
	Portal  *portal.Portal
	// WrapAdmin, when set before Open, wraps the admin port's handler (tests
	// validate every admin call against the OpenAPI document with it).
	WrapAdmin func(http.Handler) http.Handler

	webhooks  *appWebhooks
	limiter   interface{ Close() error }
	redis     *redis.Client
	adminHTTP *http.Server
	proxyLn   net.Listener
	adminLn   net.Listener
	stderr    io.Writer
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	// metricsHTTP serves metrics.listen (ops.go); nil when it is off.
	metricsHTTP *http.Server
	metricsLn   net.Listener

	// warm is the cache warm-up at start (warm.go); nil when it is off.
	warm *cacheWarm
}

// NewApp returns an App for cfg that logs to stderr.
func NewApp(cfg *config.Config, stderr io.Writer) *App {
	var h slog.Handler
	opts := &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(stderr, opts)
	} else {
		h = slog.NewTextHandler(stderr, opts)
	}
	return &App{Config: cfg, Logger: slog.New(h), stderr: stderr, stop: make(chan struct{}), done: make(chan struct{})}
}

// ProxyAddr is the proxy port's address once Open has returned.
func (a *App) ProxyAddr() string { return a.proxyLn.Addr().String() }

// AdminAddr is the admin port's address once Open has returned.
func (a *App) AdminAddr() string { return a.adminLn.Addr().String() }

// Open opens the store, builds the request path and starts both ports.
func (a *App) Open(ctx context.Context) error {
	cfg := a.Config
	var err error
	// Bind first: a port in use fails fast, and the portal's links can name
	// the port really bound (proxy.listen may say :0).
	if a.proxyLn, err = net.Listen("tcp", cfg.Proxy.Listen); err != nil {
		return fmt.Errorf("proxy.listen: %w", err)
	}
	if a.adminLn, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
		return fmt.Errorf("admin.listen: %w", err)
	}
	if err := a.listenMetrics(); err != nil { // ops.go
		return err
	}
	if a.Store, err = openStore(ctx, cfg.Store, a.Logger); err != nil {
		return err
	}
	tokens, err := keys.NewTokens(cfg.Keys.Prefix)
	if err != nil {
		return err
	}
	expirations := make([]keys.Expiration, 0, len(cfg.Keys.ExpirationOptions))
	for _, name := range cfg.Keys.ExpirationOptions {
		d, never, err := config.ParseExpiration(name)
		if err != nil {
			return fmt.Errorf("keys.expiration_options: %w", err)
		}
		expirations = append(expirations, keys.Expiration{Name: name, After: d, Months: config.ExpirationMonths(name), Never: never})
	}
	var disabled [4]bool
	disabled[keys.TypePersonal] = !cfg.Keys.Personal.Enabled
	disabled[keys.TypeOrg] = !cfg.Keys.Org.Enabled
	disabled[keys.TypeGeneric] = !cfg.Keys.Generic.Enabled

	a.Metrics = metrics.New()
	if a.webhooks, err = newWebhooks(cfg.Webhooks); err != nil { // webhooks.go
		return err
	}
	// The cache is built after the service but must hear of every change the
	// service makes, so the hook reads it through the App.
	a.Service, err = keys.NewService(ctx, a.Store, tokens, keys.Options{
		Events:                   a.webhooks.eventSink(),
		Disabled:                 disabled,
		InvalidateOnCreatorLeave: cfg.Keys.Org.InvalidateOnCreatorLeave,
		Expirations:              expirations,
		DefaultExpiration:        cfg.Keys.DefaultExpiration,
		OnChange: func(c keys.Change) {
			if a.Cache != nil {
				a.Cache.Invalidate(c)
			}
		},
	})
	if err != nil {
		return err
	}
	if st, ok := a.Store.(interface{ WriteErrors() int64 }); ok {
		a.Metrics.SetStoreWriteErrors(st.WriteErrors)
	}
	a.Metrics.SetKeyCounter(func() ([]metrics.KeyCount, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		counts, err := a.Store.CountKeys(ctx, time.Now().Unix())
		if err != nil {
			return nil, err
		}
		out := make([]metrics.KeyCount, 0, 9)
		for _, t := range keys.Types {
			for _, status := range []string{"active", "expired", "archived"} {
				out = append(out, metrics.KeyCount{Type: t.String(), Status: status, N: counts[t][status]})
			}
		}
		return out, nil
	})

	rl := func(r config.RateLimit) limiter.Limit { return limiter.Limit{Limit: r.Limit, Window: r.Window} }
	var limits [4]limiter.Limit
	limits[keys.TypePersonal] = rl(cfg.RateLimits.Personal)
	limits[keys.TypeOrg] = rl(cfg.RateLimits.Org)
	limits[keys.TypeGeneric] = rl(cfg.RateLimits.Generic)
	quotas, err := quotaDefaults(cfg.Quotas)
	if err != nil {
		return err
	}
	a.Cache, err = proxy.NewCache(proxy.CacheOptions{
		TTL:         cfg.Cache.TTL,
		NegativeTTL: cfg.Cache.NegativeTTL,
		MaxEntries:  cfg.Cache.MaxEntries,
		Limits:      limits,
		Quotas:      quotas,
	})
	if err != nil {
		return err
	}
	if db, ok := a.Store.(*postgres.DB); ok {
		if err := a.joinCluster(ctx, db); err != nil { // cluster.go
			return err
		}
	}
	var lim proxy.Limiter
	quotaOpts := quota.Options{Timeout: cfg.Limiter.Timeout, DenyOnError: cfg.Limiter.OnError == "deny",
		FlushInterval: cfg.Usage.FlushInterval, Logger: a.Logger, Errors: a.Metrics.LimiterError}
	switch cfg.Limiter.Backend {
	case "redis":
		// go-redis has one logger per process (redis.SetLogger is global):
		// the last App opened owns it. It logs through slog, redacted, so
		// its lines match the log format and carry no request material.
		redis.SetLogger(redact.Redis{L: a.Logger})
		a.redis = redis.NewClient(&redis.Options{Addr: cfg.Limiter.RedisAddr, Password: cfg.Limiter.RedisPassword, DB: cfg.Limiter.RedisDB,
			ContextTimeoutEnabled: true}) // so limiter.timeout bounds a hung Redis
		onErr := limiter.OnErrorAllow
		if cfg.Limiter.OnError == "deny" {
			onErr = limiter.OnErrorDeny
		}
		r := limiter.NewRedis(a.redis, limiter.RedisOptions{Timeout: cfg.Limiter.Timeout, OnError: onErr, Logger: a.Logger}) // the Gate counts limiter errors
		lim, a.limiter = r, r
		quotaOpts.Redis = a.redis
		a.checkRedis(ctx) // ops.go
	default:
		m := limiter.NewMemory(limiter.MemoryOptions{IdleTTL: cfg.Limiter.IdleTTL})
		lim, a.limiter = m, m
	}

	a.Usage = usage.New(a.Store, usage.Options{FlushInterval: cfg.Usage.FlushInterval, Logger: a.Logger, OnFlush: a.Metrics.UsageFlush})
	a.Usage.Start()
	// Quota use is flushed like usage: a crash forgives at most one interval.
	quotaOpts.OnExhausted = a.webhooks.onQuotaExhausted(a.Logger) // webhooks.go
	a.Quotas = quota.New(a.Store, quotaOpts)
	a.Quotas.Start()
	go a.compactLoop()
	a.startWebhooks()

	a.Gate = proxy.NewGate(a.Service, a.Cache, proxy.GateOptions{Limiter: lim, Quotas: a.Quotas, Recorder: a.Usage, Metrics: a.Metrics})
	// In the background, now that every change reaches the cache (the
	// cluster listener is up) and the gate that makes its entries exists;
	// readiness waits for it (ops.go).
	a.startWarm(func(ctx context.Context, n int) (int, error) { return a.Gate.Warm(ctx, a.Service, n) }, warmReadyWait) // warm.go

	publicURL := cfg.Portal.PublicURL
	if publicURL == "" {
		publicURL = "http://" + loopbackIfUnspecified(a.proxyLn.Addr().String())
	}
	graces := make([]time.Duration, 0, len(cfg.Portal.RollGraceOptions))
	for _, g := range cfg.Portal.RollGraceOptions {
		d, err := time.ParseDuration(g) // config.Validate checked them
		if err != nil {
			return fmt.Errorf("portal.roll_grace_options: %w", err)
		}
		graces = append(graces, d)
	}
	a.Portal = portal.New(portal.Options{
		Service:           a.Service,
		Usage:             a.Store,
		Path:              cfg.Portal.Path,
		PublicURL:         publicURL,
		Title:             cfg.Portal.Title,
		LogoURL:           cfg.Portal.LogoURL,
		AccentColor:       cfg.Portal.AccentColor,
		DefaultExpiration: cfg.Keys.DefaultExpiration,
		OrgKeyRoles:       cfg.Portal.OrgKeyRoles,
		LinkTTL:           cfg.Portal.LinkTTL,
		SessionTTL:        cfg.Portal.SessionTTL,
		RollGraceOptions:  graces,
		Quotas:            a.Quotas,
		QuotaDefaults:     quotas,
		MaxUserKeys:       cfg.Portal.MaxUserKeys,
		MaxOrgKeys:        cfg.Portal.MaxOrgKeys,
		CreatesPerHour:    cfg.Portal.CreatesPerHour,
		Logger:            a.Logger,
	})

	if a.Proxy, err = proxy.New(a.Gate, proxy.Options{
		Upstreams:           cfg.Proxy.Upstreams,
		ForwardAuth:         proxy.ForwardAuthOptions{Path: cfg.ForwardAuth.Path, LimitedStatus: cfg.ForwardAuth.LimitedStatus},
		DialTimeout:         cfg.Proxy.DialTimeout,
		UpstreamTimeout:     cfg.Proxy.UpstreamTimeout,
		ReadTimeout:         cfg.Proxy.ReadTimeout,
		WriteTimeout:        cfg.Proxy.WriteTimeout,
		IdleTimeout:         cfg.Proxy.IdleTimeout,
		MaxConnsPerUpstream: cfg.Proxy.MaxConnsPerUpstream,
		PublicPaths:         cfg.Proxy.PublicPaths,
		KeyHeaders:          cfg.Proxy.KeyHeaders,
		KeyQueryParam:       cfg.Proxy.KeyQueryParam,
		HeaderPrefix:        cfg.Proxy.HeaderPrefix,
		StripCredentials:    cfg.Proxy.StripCredentials,
		MaxBodyBytes:        cfg.Proxy.MaxBodyBytes,
		DropHeaders:         cfg.Proxy.DropHeaders,
		DropCookies:         append(dashboard.CookieNames(), portal.CookieNames()...),
		PortalPath:          cfg.Portal.Path,
		Portal:              fasthttpadaptor.NewFastHTTPHandler(a.Portal.Handler()),
		Logger:              a.Logger,
		HealthPath:          cfg.Proxy.HealthPath,
		Health:              a.healthy,     // ops.go
		AccessLog:           a.accessLog(), // ops.go
	}); err != nil {
		return err
	}

	a.AdminToken = cfg.Admin.Token
	if a.AdminToken == "" {
		// config.Validate refuses this for a non-loopback admin listener.
		var b [24]byte
		rand.Read(b[:])
		a.AdminToken = "kgadmin_" + hex.EncodeToString(b[:])
		fmt.Fprintf(a.stderr, "keygate: no admin.token configured; generated one for this run (shown once):\n\n    %s\n\n", a.AdminToken)
	}
	// One count of failed admin-token attempts for the API and the login form.
	throttle := admin.NewAuthThrottle(0, 0, nil)
	a.Admin = admin.New(admin.Options{
		Throttle:      throttle,
		Service:       a.Service,
		Token:         a.AdminToken,
		Checker:       a.Gate,
		Quotas:        a.Quotas,
		QuotaDefaults: quotas,
		Usage:         a.Store,
		Metrics:       a.Metrics.WritePrometheus,
		ReadyChecks:   a.readyChecks(), // ops.go
		PortalLinks:   a.Portal,
		Logger:        a.Logger,

		DeliveryRetried: a.webhooks.kick,
	})
	dashboard.New(dashboard.Options{
		Throttle:         throttle,
		Service:          a.Service,
		Store:            a.Store,
		Token:            a.AdminToken,
		Settings:         cfg.Redacted(),
		SessionTTL:       cfg.Admin.SessionTTL,
		Quotas:           a.Quotas,
		QuotaDefaults:    quotas,
		RollGraceOptions: graces,
		Logger:           a.Logger,
		Webhooks:         a.webhooks != nil,
	}).Register(a.Admin.Mux())

	adminHandler := a.Admin.Handler()
	if a.WrapAdmin != nil {
		adminHandler = a.WrapAdmin(adminHandler)
	}
	a.adminHTTP = &http.Server{Handler: adminHandler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(a.Logger.Handler(), slog.LevelWarn)}
	if a.metricsLn != nil {
		a.serveMetrics() // ops.go
	}
	go func() {
		if err := a.Proxy.Serve(a.proxyLn); err != nil {
			a.Logger.Error("proxy port stopped", "err", err)
		}
	}()
	go func() {
		if err := a.adminHTTP.Serve(a.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Logger.Error("admin port stopped", "err", err)
		}
	}()
	a.Logger.Info("keygate started", "version", version, "proxy", a.ProxyAddr(), "admin", a.AdminAddr(),
		"upstreams", strings.Join(cfg.Proxy.Upstreams, ","), "store", cfg.Store.Path, "limiter", cfg.Limiter.Backend)
	return nil
}

// compactLoop rolls minute usage into hours and drops what is past retention.
func (a *App) compactLoop() {
	defer close(a.done)
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := a.Store.CompactUsage(ctx, time.Now(), a.Config.Usage.MinuteRetention, a.Config.Usage.Retention); err != nil {
			a.Logger.Warn("usage compaction failed", "err", err)
		}
		cancel()
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

// Close stops accepting, drains in-flight requests up to shutdown_timeout,
// flushes usage and closes the store. It is safe on a partly opened App
// and to call more than once.
func (a *App) Close() error {
	a.closeOnce.Do(func() { a.closeErr = a.close() })
	return a.closeErr
}

func (a *App) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	var errs []error
	a.stopWarm() // warm.go; before the cache and the store close
	if a.Proxy != nil {
		if err := a.Proxy.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("proxy shutdown: %w", err))
		}
	} else if a.proxyLn != nil {
		a.proxyLn.Close()
	}
	if a.adminHTTP == nil && a.adminLn != nil {
		a.adminLn.Close()
	}
	if a.metricsHTTP != nil {
		a.metricsHTTP.Shutdown(ctx)
	} else if a.metricsLn != nil {
		a.metricsLn.Close()
	}
	if a.adminHTTP != nil {
		if err := a.adminHTTP.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("admin shutdown: %w", err))
		}
	}
	if a.Usage != nil {
		close(a.stop)
		<-a.done
		if err := a.Usage.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush usage: %w", err))
		}
	}
	if a.Quotas != nil {
		if err := a.Quotas.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush quota use: %w", err))
		}
	}
	a.webhooks.stop()
	if a.limiter != nil {
		a.limiter.Close()
	}
	if a.redis != nil {
		a.redis.Close()
	}
	if a.Cache != nil {
		a.Cache.Close()
	}
	if a.Portal != nil {
		a.Portal.Close()
	}
	if a.Store != nil {
		if err := a.Store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	if len(errs) == 0 {
		a.Logger.Info("keygate stopped")
	}
	return errors.Join(errs...)
}

// loopbackIfUnspecified turns ":8080" or "0.0.0.0:8080" into
// "127.0.0.1:8080", an address a browser on this machine can open.
func loopbackIfUnspecified(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// quotaDefaults turns the quotas section into each key type's quota.
func quotaDefaults(c config.Quotas) ([4]keys.Quota, error) {
	var out [4]keys.Quota
	for _, q := range []struct {
		t keys.Type
		c config.Quota
	}{{keys.TypePersonal, c.Personal}, {keys.TypeOrg, c.Org}, {keys.TypeGeneric, c.Generic}} {
		p, err := keys.ParseQuotaPeriod(q.c.Period)
		if err != nil {
			return out, fmt.Errorf("quotas.%s.period: %w", q.t, err)
		}
		out[q.t] = keys.Quota{Limit: q.c.Limit, Period: p}
	}
	return out, nil
}
