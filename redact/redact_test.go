package redact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestSprintf(t *testing.T) {
	opErr := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	for _, tt := range []struct {
		format string
		args   []any
		want   string
	}{
		{"error when serving connection %q<->%q: %v", []any{"127.0.0.1:8080", "10.0.0.1:5555", errors.New(`cannot parse "kg_SECRET\r"`)},
			`error when serving connection "127.0.0.1:8080"<->"10.0.0.1:5555": [redacted *errors.errorString]`},
		{"header %q: %s", []any{"X-API-Key: kg_SECRET", []byte("kg_SECRET")}, "header [redacted]: [redacted]"},
		{"pool: %d conns after %s: %v", []any{3, time.Second, opErr}, "pool: 3 conns after 1s: read tcp: connection reset by peer"},
		{"wrapped: %v", []any{fmt.Errorf("dial: %w", io.EOF)}, "wrapped: dial: EOF"},
		{"addr %s", []any{"[::1]:6379"}, "addr [::1]:6379"},
	} {
		if got := Sprintf(tt.format, tt.args...); got != tt.want {
			t.Errorf("Sprintf(%q) = %q, want %q", tt.format, got, tt.want)
		}
	}
}

func TestAdaptersLogThroughSlog(t *testing.T) {
	var b bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&b, nil))
	FastHTTP{L: l}.Printf("bad header %q", "kg_SECRET")
	Redis{L: l}.Printf(context.Background(), "redis: %s", "kg_SECRET")
	out := b.String()
	if strings.Contains(out, "SECRET") || strings.Count(out, `"level":"WARN"`) != 2 ||
		!strings.Contains(out, `"source":"go-redis"`) || !strings.Contains(out, `"source":"fasthttp"`) {
		t.Errorf("log:\n%s", out)
	}
}

// FuzzSprintf: no argument string that is not an address survives.
func FuzzSprintf(f *testing.F) {
	f.Add("kg_SECRET\r\n")
	f.Add("127.0.0.1:80")
	f.Fuzz(func(t *testing.T, arg string) {
		out := Sprintf("x=%s y=%q z=%v", arg, arg, errors.New(arg))
		if isAddr(arg) || strings.Contains("x=[redacted] y=[redacted] z=[redacted *errors.errorString]", arg) {
			return
		}
		if strings.Contains(out, arg) {
			t.Fatalf("%q survived: %q", arg, out)
		}
	})
}
