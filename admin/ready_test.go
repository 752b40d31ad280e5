package admin

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestReadiness(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp 10.0.0.9:6379: connection refused") }
	tests := []struct {
		name   string
		checks []ReadyCheck
		states map[string]string
		ready  bool
		err    string
	}{
		{"all up", []ReadyCheck{{Name: "store", Check: ok}, {Name: "redis", Check: ok, Optional: true}},
			map[string]string{"store": "ok", "redis": "ok"}, true, ""},
		{"optional down", []ReadyCheck{{Name: "store", Check: ok}, {Name: "redis", Check: down, Optional: true}},
			map[string]string{"store": "ok", "redis": "unavailable"}, true, "degraded: redis: dial tcp"},
		{"required down", []ReadyCheck{{Name: "store", Check: ok}, {Name: "redis", Check: down}},
			map[string]string{"store": "ok", "redis": "unavailable"}, false, "redis: dial tcp"},
		{"store down", []ReadyCheck{{Name: "store", Check: down}, {Name: "redis", Check: down, Optional: true}},
			map[string]string{"store": "unavailable", "redis": "unavailable"}, false, "store: dial tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			states, err := Readiness(context.Background(), tt.checks)
			if !reflect.DeepEqual(states, tt.states) {
				t.Errorf("states = %v, want %v", states, tt.states)
			}
			if Ready(err) != tt.ready {
				t.Errorf("Ready(%v) = %v, want %v", err, !tt.ready, tt.ready)
			}
			if (tt.err == "") != (err == nil) || err != nil && !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("err = %v, want prefix %q", err, tt.err)
			}
		})
	}
}
