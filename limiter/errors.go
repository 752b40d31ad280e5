package limiter

import "errors"

// ErrLimited is returned by callers that refuse a request because its owner
// is over its limit.
var ErrLimited = errors.New("rate_limited")
