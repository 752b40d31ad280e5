package admin

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ReadyCheck is one dependency that /readyz reports on by name.
type ReadyCheck struct {
	Name  string                          // like "store" or "redis"
	Check func(ctx context.Context) error // nil when the dependency answers
	// Optional checks are reported but leave the node ready when they fail
	// (a Redis limiter that fails open still lets requests through).
	Optional bool
}

// Readiness runs every check and returns each one's state ("ok" or
// "unavailable"; the reason is in the returned error, which is for logs
// only) and an error when a required check failed. The proxy port's health
// endpoint answers from it too, so both ports agree.
func Readiness(ctx context.Context, checks []ReadyCheck) (states map[string]string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	states = make(map[string]string, len(checks))
	var required, optional []error
	for _, c := range checks {
		if e := c.Check(ctx); e != nil {
			states[c.Name] = "unavailable"
			e = fmt.Errorf("%s: %w", c.Name, e)
			if c.Optional {
				optional = append(optional, e)
			} else {
				required = append(required, e)
			}
			continue
		}
		states[c.Name] = "ok"
	}
	if len(required) > 0 {
		return states, errors.Join(append(required, optional...)...)
	}
	if len(optional) > 0 {
		return states, &degradedError{errors.Join(optional...)}
	}
	return states, nil
}

// degradedError is Readiness's error when only optional checks failed:
// the node serves, but something it uses is down.
type degradedError struct{ err error }

func (d *degradedError) Error() string { return "degraded: " + d.err.Error() }
func (d *degradedError) Unwrap() error { return d.err }

// Ready reports whether err from Readiness still lets the node serve.
func Ready(err error) bool {
	var d *degradedError
	return err == nil || errors.As(err, &d)
}
