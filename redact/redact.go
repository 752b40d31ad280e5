// Package redact turns other libraries' printf-style log lines into slog
// records that carry no request material.
//
// fasthttp and go-redis log through Printf(format, args...). Their arguments
// can hold what a client sent (a malformed header quoted in a parse error,
// a token with an injected CR), so only arguments known to be safe are
// printed: numbers, durations, network addresses, network and context
// errors. Every other argument becomes "[redacted]".
package redact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Sprintf is fmt.Sprintf with every argument that might hold request
// material replaced by "[redacted]".
func Sprintf(format string, args ...any) string {
	safe := make([]any, len(args))
	for i, a := range args {
		safe[i] = safeArg(a)
	}
	msg := fmt.Sprintf(format, safe...)
	// %q of "[redacted]" quotes it; either way no byte of the argument.
	return strings.ReplaceAll(msg, `"[redacted]"`, "[redacted]")
}

func safeArg(a any) any {
	switch v := a.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64,
		float32, float64, time.Duration, time.Time, net.Addr:
		return v
	case string:
		if isAddr(v) {
			return v
		}
	case error:
		if safeError(v) {
			return v.Error()
		}
		return fmt.Sprintf("[redacted %T]", v)
	}
	return "[redacted]"
}

// isAddr reports whether s is an IP address, with or without a port.
func isAddr(s string) bool {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// safeError reports whether err's text is made only of addresses and
// system messages: network errors, timeouts, closed connections.
func safeError(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) || errors.As(err, &dns) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// FastHTTP is a fasthttp.Logger that writes to L at warn level, redacted.
type FastHTTP struct{ L *slog.Logger }

// Printf logs one fasthttp message.
func (f FastHTTP) Printf(format string, args ...any) {
	f.L.Warn("fasthttp: "+Sprintf(format, args...), slog.String("source", "fasthttp"))
}

// Redis is a go-redis logger (redis.SetLogger) that writes to L at warn
// level, redacted.
type Redis struct{ L *slog.Logger }

// Printf logs one go-redis message.
func (r Redis) Printf(ctx context.Context, format string, args ...any) {
	r.L.WarnContext(ctx, Sprintf(format, args...), slog.String("source", "go-redis"))
}
