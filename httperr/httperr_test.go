package httperr

import (
	"errors"
	"fmt"
	"testing"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
)

func TestOf(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
		code   string
	}{
		{keys.ErrInvalidKey, 401, "invalid_api_key"},
		{keys.ErrExpiredKey, 401, "expired_api_key"},
		{limiter.ErrLimited, 429, "rate_limited"},
		{fmt.Errorf("%w: disk I/O error", keys.ErrStoreUnavailable), 503, "store_unavailable"},
		{fmt.Errorf("lookup: %w", keys.ErrUnavailable), 503, "store_unavailable"},
		{keys.FieldError("name", "required"), 400, "invalid_request"},
		{keys.Errorf(keys.ENotFound, "no key %s", "x"), 404, "not_found"},
		{keys.Errorf(keys.EConflict, "taken"), 409, "conflict"},
		{fmt.Errorf("get: %w", keys.ErrNotFound), 404, "not_found"},
	} {
		e, ok := Of(tt.err)
		if !ok || e.Status != tt.status || e.Code != tt.code || e.Message == "" {
			t.Errorf("Of(%v) = %+v, %v; want %d %s", tt.err, e, ok, tt.status, tt.code)
		}
	}
	if _, ok := Of(errors.New("boom")); ok {
		t.Error("an internal error has a row")
	}
	// A store failure never shows its cause.
	if e, _ := Of(fmt.Errorf("%w: disk I/O error at /var/lib", keys.ErrStoreUnavailable)); e.Message != StoreUnavailable.Message {
		t.Errorf("message %q", e.Message)
	}
}
