package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const day = 24 * time.Hour

// Calendar-free units: a month is 30 days and a year 365, so an expiration
// is a fixed duration whatever the date the key is created.
var expirationUnits = []struct {
	suffix string
	unit   time.Duration
}{
	{"mo", 30 * day},
	{"d", day},
	{"w", 7 * day},
	{"y", 365 * day},
}

// ParseExpiration parses one expiration choice: "never" (never is true), or
// a positive whole number of days, weeks, months (30 days) or years (365
// days) such as "2w", "1mo", "1y", or a positive Go duration such as "36h".
// Note "1m" is a Go duration of one minute; a month is "1mo".
func ParseExpiration(s string) (d time.Duration, never bool, err error) {
	if s == "never" {
		return 0, true, nil
	}
	for _, u := range expirationUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok || num == "" || strings.Trim(num, "0123456789") != "" {
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/int64(u.unit) {
			return 0, false, fmt.Errorf("%q is too long (at most 290 years)", s)
		}
		if n == 0 {
			return 0, false, fmt.Errorf("%q is not a positive expiration", s)
		}
		return time.Duration(n) * u.unit, false, nil
	}
	d, err = time.ParseDuration(s)
	if err != nil {
		return 0, false, fmt.Errorf("%q is not an expiration (like 2w, 1mo, 1y, 36h or never)", s)
	}
	if d <= 0 {
		return 0, false, fmt.Errorf("%q is not a positive expiration", s)
	}
	return d, false, nil
}
