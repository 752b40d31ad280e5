// Package httperr is the one table that maps keygate's domain errors to an
// HTTP status, an error code and a message, shared by the proxy port, POST
// /v1/validate and the admin API so that each says the same thing (SPEC §3,
// §4.1).
package httperr

import (
	"errors"
	"net/http"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
)

// Entry is one row of the table. Message is safe to show to any client.
type Entry struct {
	Status  int
	Code    string
	Message string
}

// The rows. The proxy-only ones have no domain error; they are here so
// every client-facing code lives in one place.
var (
	MissingKey       = Entry{http.StatusUnauthorized, "missing_api_key", "an API key is required: send it as Authorization: Bearer <key>"}
	InvalidKey       = Entry{http.StatusUnauthorized, "invalid_api_key", "the API key is not valid"}
	ExpiredKey       = Entry{http.StatusUnauthorized, "expired_api_key", "the API key has expired"}
	RateLimited      = Entry{http.StatusTooManyRequests, "rate_limited", "rate limit exceeded"}
	StoreUnavailable = Entry{http.StatusServiceUnavailable, "store_unavailable", "the key store is unavailable, try again shortly"}
	TooLarge         = Entry{http.StatusRequestEntityTooLarge, "request_too_large", "the request body is too large"}
	UpstreamDown     = Entry{http.StatusBadGateway, "upstream_unavailable", "the upstream service is unavailable"}
	UpstreamTimeout  = Entry{http.StatusGatewayTimeout, "upstream_timeout", "the upstream service did not answer in time"}
	BadRequest       = Entry{http.StatusBadRequest, keys.EInvalid, "invalid request"}
	NotFound         = Entry{http.StatusNotFound, keys.ENotFound, "not found"}
	Conflict         = Entry{http.StatusConflict, keys.EConflict, "conflict"}
)

// Of returns the row for err, or false when err is none of the domain
// errors (the caller's own or an internal one). A *keys.Error keeps its own
// message, which names what was wrong.
func Of(err error) (Entry, bool) {
	switch {
	case err == nil:
		return Entry{}, false
	case errors.Is(err, limiter.ErrLimited):
		return RateLimited, true
	case errors.Is(err, keys.ErrExpiredKey):
		return ExpiredKey, true
	case errors.Is(err, keys.ErrInvalidKey):
		return InvalidKey, true
	case errors.Is(err, keys.ErrStoreUnavailable), errors.Is(err, keys.ErrUnavailable):
		return StoreUnavailable, true
	}
	var ke *keys.Error
	if errors.As(err, &ke) {
		for _, e := range []Entry{BadRequest, NotFound, Conflict} {
			if ke.Code == e.Code {
				e.Message = ke.Message
				return e, true
			}
		}
		return Entry{}, false
	}
	if errors.Is(err, keys.ErrNotFound) {
		return NotFound, true
	}
	return Entry{}, false
}
