package keys

import (
	"encoding/json"
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{time.Minute, "1m"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + time.Second, "1h0m1s"},
		{61 * time.Second, "1m1s"},
		{time.Second, "1s"},
		{500 * time.Millisecond, "500ms"},
		{2160 * time.Hour, "2160h"},
		{0, "0s"},
	} {
		got := FormatDuration(tt.d)
		if got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != tt.d {
			t.Errorf("%q parses back to %v, %v", got, back, err)
		}
	}
}

func TestRateLimitJSONWindowAsWritten(t *testing.T) {
	b, err := json.Marshal(RateLimit{Limit: 100, Window: time.Minute})
	if err != nil || string(b) != `{"limit":100,"window":"1m"}` {
		t.Errorf("RateLimit JSON = %s, %v; want window \"1m\"", b, err)
	}
}
