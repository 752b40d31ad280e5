package keys

import (
	"strings"
	"time"
)

// FormatDuration writes d as people write it: "1m", "1h30m", "500ms",
// where time.Duration.String adds zero units ("1m0s", "1h30m0s"). The
// result parses back to d with time.ParseDuration.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
