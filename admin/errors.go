package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate/httperr"
	"github.com/keygate/keygate/keys"
)

// Error codes of the admin API beyond keys' own (invalid_request,
// not_found, conflict).
const (
	codeUnauthorized     = "unauthorized"
	codeQuotaExceeded    = "quota_exceeded"
	codeUnavailable      = "unavailable" // the quota counters, not the key store
	codeMethodNotAllowed = "method_not_allowed"
	codeNotImplemented   = "not_implemented"
	codeInternal         = "internal"
)

// errorBody is the JSON of every error answer (SPEC §4). Fields is always
// present, {} when the error names no field.
type errorBody struct {
	Error       string              `json:"error"`
	Message     string              `json:"message"`
	Fields      map[string][]string `json:"fields"`
	WaitSeconds int64               `json:"wait_seconds,omitempty"`
}

// httpError is an error that knows its status and code, for the cases keys'
// error codes do not cover. Cause, when set, is logged but never shown.
type httpError struct {
	status  int
	code    string
	message string
	cause   error
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return e.message + ": " + e.cause.Error()
	}
	return e.message
}

func (e *httpError) Unwrap() error { return e.cause }

// rateLimitedError refuses a validation because the key's owner is over its
// limit; retryAfter is how long until the next request would be allowed.
type rateLimitedError struct{ retryAfter time.Duration }

func (e *rateLimitedError) Error() string { return "rate limited" }

// quotaExceededError refuses a validation because the key's owner has used
// its quota; refill is the time until it refills, when it refills at all.
type quotaExceededError struct {
	refill  time.Duration
	refills bool
}

func (e *quotaExceededError) Error() string { return "quota exceeded" }

var errUnauthorized = &httpError{status: http.StatusUnauthorized, code: codeUnauthorized,
	message: "missing or wrong admin token: send Authorization: Bearer <admin token>"}

// badField returns a 400 naming one field.
func badField(field, problem string) error { return keys.FieldError(field, problem) }

// notFoundAs turns the store's bare keys.ErrNotFound into a not_found error
// that says what was missing; other errors pass unchanged.
func notFoundAs(err error, format string, args ...any) error {
	if errors.Is(err, keys.ErrNotFound) {
		return keys.Errorf(keys.ENotFound, format, args...)
	}
	return err
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// waitSeconds rounds a retry delay up to whole seconds, at least 1.
func waitSeconds(d time.Duration) int64 { return max(1, ceilSeconds(d)) }

// errorResponse maps any error to its status and JSON body. It is the only
// place where errors become statuses.
func errorResponse(err error) (int, errorBody) {
	body := errorBody{Fields: map[string][]string{}}
	var (
		he *httpError
		ke *keys.Error
		rl *rateLimitedError
		qe *quotaExceededError
	)
	switch {
	case errors.As(err, &qe):
		body.Error, body.Message = codeQuotaExceeded, "the key's owner has used its quota; it does not refill"
		if qe.refills {
			body.WaitSeconds = waitSeconds(qe.refill)
			body.Message = "the key's owner has used its quota until it refills"
		}
		return http.StatusTooManyRequests, body
	case errors.As(err, &rl):
		body.Error, body.Message = httperr.RateLimited.Code, "the key's owner is over its rate limit"
		body.WaitSeconds = waitSeconds(rl.retryAfter)
		return http.StatusTooManyRequests, body
	case errors.As(err, &he):
		body.Error, body.Message = he.code, he.message
		return he.status, body
	}
	// The domain errors: one table for the proxy, /v1/validate and the API.
	if e, ok := httperr.Of(err); ok {
		body.Error, body.Message = e.Code, e.Message
		if errors.As(err, &ke) && ke.Fields != nil {
			body.Fields = ke.Fields
		}
		return e.Status, body
	}
	return http.StatusInternalServerError, errorBody{Error: codeInternal, Message: "internal error; see the server log", Fields: map[string][]string{}}
}

// writeError answers r with err as JSON and logs server-side failures (with
// the method and path only: request bodies may hold tokens).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorResponse(err)
	if status >= 500 {
		level := slog.LevelError
		if errors.Is(err, context.Canceled) {
			level = slog.LevelDebug // the client went away
		}
		s.log.Log(r.Context(), level, "admin request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	switch status {
	case http.StatusUnauthorized:
		if body.Error == codeUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keygate-admin"`)
		}
	case http.StatusTooManyRequests:
		if body.WaitSeconds > 0 { // absent for a quota that never refills
			w.Header().Set("Retry-After", strconv.FormatInt(body.WaitSeconds, 10))
		}
	}
	writeJSON(w, status, body)
}

// errorf is a shorthand for an httpError without a cause.
func errorf(status int, code, format string, args ...any) *httpError {
	return &httpError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}
