package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Redaction replaces a secret in Redacted.
const Redaction = "[redacted]"

// Setting is one configuration key and its value, written as in YAML.
type Setting struct {
	Key   string // dotted, like "rate_limits.personal.window"
	Value string // like `"X-Keygate-"`, `1m`, `true`, `["Owner", "Admin"]`
}

// Redacted lists every key of c with its effective value, in SPEC §8 order,
// for the admin settings page. admin.token and limiter.redis_password show
// as [redacted] when set (and as "" when not, which tells that keygate
// generates the admin token). store.dsn keeps everything but its password:
// the userinfo password and a password query parameter of a URL DSN, or the
// password=... pair of a key/value DSN; a URL that does not parse is
// redacted whole.
func (c *Config) Redacted() []Setting {
	cp := *c // fieldsOf needs an addressable Config; c stays untouched
	fields := fieldsOf(&cp)
	out := make([]Setting, 0, len(fields))
	for _, f := range fields {
		val := formatValue(f.v.Interface())
		switch f.key {
		case "admin.token", "limiter.redis_password":
			if f.v.String() != "" {
				val = Redaction
			}
		case "store.dsn":
			val = strconv.Quote(redactDSN(f.v.String()))
		}
		out = append(out, Setting{f.key, val})
	}
	return out
}

// marker stands in for a password while a URL is re-encoded; it survives
// encoding unchanged, whereas "[redacted]" would be percent-escaped.
const marker = "KEYGATEREDACTEDPASSWORD"

var kvPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

func redactDSN(dsn string) string {
	if !strings.Contains(dsn, "://") {
		return kvPassword.ReplaceAllString(dsn, "${1}"+Redaction)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return Redaction
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), marker)
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", marker)
		u.RawQuery = q.Encode()
	}
	return strings.ReplaceAll(u.String(), marker, Redaction)
}

// formatValue writes v as YAML would: text quoted, durations short, lists in
// flow style.
func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case time.Duration:
		return formatDuration(x)
	case []time.Duration:
		return formatDurations(x)
	case []WebhookEndpoint:
		return formatEndpoints(x)
	case []string:
		q := make([]string, len(x))
		for i, s := range x {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// formatDuration drops the zero minutes and seconds that Duration.String
// adds: 2160h rather than 2160h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
