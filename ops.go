package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/proxy"
)

// readyChecks are what /readyz and the proxy port's health endpoint ask:
// the store always, Redis when it is the limiter (required only with
// limiter.redis_required, since a failing-open limiter still serves), and
// the cache warm-up at start while it runs (at most 5s; see warm.go).
func (a *App) readyChecks() []admin.ReadyCheck {
	checks := []admin.ReadyCheck{{Name: "store", Check: a.Store.Ping}}
	if c, ok := a.warmReadyCheck(); ok {
		checks = append(checks, c)
	}
	if a.redis != nil {
		checks = append(checks, admin.ReadyCheck{
			Name:     "redis",
			Check:    a.pingRedis,
			Optional: !a.Config.Limiter.RedisRequired,
		})
	}
	return checks
}

// pingRedis asks Redis for PONG within a second: go-redis retries a
// refused connection with backoff, and a probe should not wait for all of it.
func (a *App) pingRedis(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return a.redis.Ping(ctx).Err()
}

// healthy answers the proxy port's health endpoint from the same checks
// as /readyz, so a load balancer and an orchestrator agree.
func (a *App) healthy(ctx context.Context) error {
	_, err := admin.Readiness(ctx, a.readyChecks())
	if admin.Ready(err) {
		return nil
	}
	return err
}

// checkRedis warns at start when the Redis limiter cannot reach Redis, so
// the operator learns of it before the first failed check does.
func (a *App) checkRedis(ctx context.Context) {
	if err := a.pingRedis(ctx); err != nil {
		l := a.Config.Limiter
		effect := "requests pass unlimited (limiter.on_error: allow) until it answers"
		if l.OnError == "deny" {
			effect = "every rate-limited request is refused (limiter.on_error: deny) until it answers"
		}
		a.Logger.Warn("limiter.backend is redis but Redis cannot be reached; "+effect,
			"redis_addr", l.RedisAddr, "redis_required", l.RedisRequired, "err", err)
	}
}

// accessLog returns the proxy's access log, nil when log.access is off.
func (a *App) accessLog() *proxy.AccessLog {
	if !a.Config.Log.Access {
		return nil
	}
	return proxy.NewAccessLog(a.Logger.With("log", "access"), a.Config.Log.AccessSample)
}

// serveMetrics serves GET /metrics without a token on metrics.listen, the
// usual Prometheus scrape target; the admin port keeps its own copy
// behind the token.
func (a *App) serveMetrics() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		a.Metrics.WritePrometheus(w)
	})
	a.metricsHTTP = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(a.Logger.Handler(), slog.LevelWarn)}
	go func() {
		if err := a.metricsHTTP.Serve(a.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Logger.Error("metrics listener stopped", "err", err)
		}
	}()
}

// listenMetrics binds metrics.listen when it is set.
func (a *App) listenMetrics() error {
	if a.Config.Metrics.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.Config.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("metrics.listen: %w", err)
	}
	a.metricsLn = ln
	return nil
}

// MetricsAddr is metrics.listen's bound address, "" when it is off.
func (a *App) MetricsAddr() string {
	if a.metricsLn == nil {
		return ""
	}
	return a.metricsLn.Addr().String()
}

// explainSQLiteOpen turns a failure to open the SQLite file into an error
// that names the file and what to do: a missing directory, or a file or
// directory the user running keygate may not write (SQLite also creates
// -wal and -shm files beside the database).
func explainSQLiteOpen(path string, err error) error {
	abs, aerr := filepath.Abs(path)
	if aerr != nil {
		abs = path
	}
	dir := filepath.Dir(abs)
	if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
		return fmt.Errorf("store.path %s: directory %s does not exist; create it (keygate does not) or set store.path", abs, dir)
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("store.path %s: permission denied: the user running keygate (uid %d) must be able to read and write the file and create files in %s", abs, os.Getuid(), dir)
	}
	if werr := probeWritable(dir); werr != nil {
		return fmt.Errorf("store.path %s: directory %s is not writable (SQLite creates -wal and -shm files beside the database): %v; underlying error: %w", abs, dir, werr, err)
	}
	return fmt.Errorf("store.path %s: %w", abs, err)
}

// probeWritable creates and removes a file in dir.
func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".keygate-probe-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}
