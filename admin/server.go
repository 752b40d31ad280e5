// Package admin serves keygate's admin port: the JSON API of SPEC §4 (see the
// README), health, readiness and metrics. Dashboard pages are added to the
// same mux by other files of this package.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
	"github.com/keygate/keygate/quota"
)

// Checker validates a token as a proxied request would: it counts towards
// usage, rate limits and (cost units of) quotas. It returns
// keys.ErrInvalidKey, keys.ErrExpiredKey, limiter.ErrLimited or
// quota.ErrExceeded (with the Results that refused it), or any other error
// when it could not decide (the store failed). *proxy.Gate is one.
type Checker interface {
	CheckCost(ctx context.Context, token string, cost int64) (*keys.Identity, limiter.Result, quota.Result, error)
}

// PortalLinker mints single-use links to the self-service pages.
type PortalLinker interface {
	NewLink(ctx context.Context, userID, orgID string, ttl time.Duration) (url string, expiresAt int64, err error)
}

// Options configure a Server. Only Service is required.
type Options struct {
	Service *keys.Service
	// Token is the admin token every API call must present. Empty refuses
	// every call (the caller generates one when none is configured).
	Token string
	// Checker answers POST /v1/validate; nil answers 501 not_implemented.
	Checker Checker
	// Quotas reports owners' quota use; nil shows every quota as null.
	Quotas QuotaReader
	// QuotaDefaults is the quota of each key type (indexed by keys.Type)
	// for owners without their own.
	QuotaDefaults [4]keys.Quota
	// Usage answers GET /v1/usage; nil answers 501 not_implemented.
	Usage keys.UsageStore
	// Metrics writes the Prometheus text exposition; nil answers 404.
	Metrics func(w io.Writer)
	// Ready reports whether the node can serve; nil means always ready.
	Ready func(ctx context.Context) error
	// ReadyChecks, when set, replace Ready: /readyz names each one's state.
	ReadyChecks []ReadyCheck
	// PortalLinks answers POST /v1/portal-links; nil answers 501.
	PortalLinks PortalLinker
	// Throttle counts failed authentications per client address; nil
	// means one of the server's own with the defaults.
	Throttle *AuthThrottle
	// Logger defaults to discarding everything.
	Logger *slog.Logger
	// Now defaults to time.Now; it sets the default usage range.
	Now func() time.Time
	// DeliveryRetried, when set, is called after a webhook delivery was
	// made pending again, so that a sender picks it up at once.
	DeliveryRetried func()
}

// Server is the admin port's HTTP handler. Create it with New; it is safe
// for concurrent use.
type Server struct {
	svc           *keys.Service
	checker       Checker
	quotas        QuotaReader
	quotaDefaults [4]keys.Quota
	usage         keys.UsageStore
	metrics       func(w io.Writer)
	ready         func(ctx context.Context) error
	checks        []ReadyCheck
	links         PortalLinker
	log           *slog.Logger
	now           func() time.Time

	deliveryRetried func()

	// tokenSum is the SHA-256 of the admin token: comparing digests in
	// constant time leaks neither the token nor its length.
	tokenSum [32]byte
	hasToken bool
	throttle *AuthThrottle

	mux     *routeMux
	handler http.Handler
}

// New returns a Server with every API route registered on its mux.
func New(opts Options) *Server {
	s := &Server{
		svc:           opts.Service,
		checker:       opts.Checker,
		quotas:        opts.Quotas,
		quotaDefaults: opts.QuotaDefaults,
		usage:         opts.Usage,
		metrics:       opts.Metrics,
		ready:         opts.Ready,
		checks:        opts.ReadyChecks,
		links:         opts.PortalLinks,
		log:           opts.Logger,
		now:           opts.Now,
		tokenSum:      sha256.Sum256([]byte(opts.Token)),
		hasToken:      opts.Token != "",
		throttle:      opts.Throttle,
		mux:           &routeMux{ServeMux: http.NewServeMux()},

		deliveryRetried: opts.DeliveryRetried,
	}
	if s.throttle == nil {
		s.throttle = NewAuthThrottle(0, 0, opts.Now)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.routes()
	mux := s.mux
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Everything done through the admin port is audited as the admin.
		mux.ServeHTTP(w, r.WithContext(keys.WithActor(r.Context(), "admin")))
	})
	return s
}

// Handler returns the handler of the whole admin port.
func (s *Server) Handler() http.Handler { return s.handler }

// Mux returns the mux behind Handler, for adding page routes. The API owns
// the /v1/ tree and GET /healthz, /readyz and /metrics; "GET /" and other
// method-qualified patterns outside /v1/ do not conflict with it.
func (s *Server) Mux() *http.ServeMux { return s.mux.ServeMux }

// CheckToken reports whether token is the admin token, in constant time.
func (s *Server) CheckToken(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return s.hasToken && subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

// authorized reports whether r carries "Authorization: Bearer <admin token>".
func (s *Server) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && s.CheckToken(strings.TrimSpace(token))
}

// apiFunc is an API handler; a returned error is answered by writeError.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

// api wraps an apiFunc with the admin token check and error answering.
func (s *Server) api(fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Answers can carry tokens (key creation): never cache them.
		w.Header().Set("Cache-Control", "no-store")
		addr := ClientAddr(r)
		if wait, blocked := s.throttle.Blocked(addr); blocked {
			writeThrottled(w, wait)
			return
		}
		if !s.authorized(r) {
			s.throttle.Fail(addr)
			// Never the token: only who tried and where.
			s.log.Warn("admin API authentication failed", "remote", addr, "method", r.Method, "path", r.URL.Path)
			s.writeError(w, r, errUnauthorized)
			return
		}
		if err := fn(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a bug can get here (every answer type marshals).
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal","message":"could not encode the answer","fields":{}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.checks != nil {
		s.readyChecks(w, r)
		return
	}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			// Unauthenticated: the reason goes to the log only.
			s.log.Warn("not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyChecks answers /readyz from ReadyChecks: 503 when a required check
// fails, and each check's state by name either way. States say only ok or
// unavailable: the endpoint is unauthenticated, so reasons go to the log.
func (s *Server) readyChecks(w http.ResponseWriter, r *http.Request) {
	states, err := Readiness(r.Context(), s.checks)
	status, code := "ok", http.StatusOK
	switch {
	case err == nil:
	case Ready(err):
		status = "degraded"
		s.log.Warn("ready but degraded", "err", err)
	default:
		status, code = "unavailable", http.StatusServiceUnavailable
		s.log.Warn("not ready", "err", err)
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": states})
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	if s.metrics == nil {
		return keys.Errorf(keys.ENotFound, "metrics are not enabled on this node")
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics(w)
	return nil
}

// apiMethods are the methods the /v1/ catch-all answers for.
var apiMethods = [...]string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// noRoute answers /v1/ requests that match no API route: 405 with Allow
// when the path exists under another method, 404 otherwise, both as JSON.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) error {
	var allow []string
	for _, m := range apiMethods {
		probe := *r
		probe.Method = m
		if _, pattern := s.mux.Handler(&probe); pattern != "" && !strings.HasSuffix(pattern, " /v1/") {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return errorf(http.StatusMethodNotAllowed, codeMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))
	}
	return keys.Errorf(keys.ENotFound, "no API call %s %s", r.Method, r.URL.Path)
}
