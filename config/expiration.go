package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const day = 24 * time.Hour

// Units of an expiration. Months and years are calendar units (see
// ExpirationMonths): the durations here, 30 and 365 days, only bound them
// and order the choices.
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
// a positive whole number of days, weeks, months or years such as "2w",
// "1mo", "1y", or a positive Go duration such as "36h". For months and
// years d is approximate (30 and 365 days); ExpirationMonths gives the
// calendar months a key's expiry is computed from. Note "1m" is a Go
// duration of one minute; a month is "1mo".
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

// ExpirationMonths returns the calendar months of a valid month or year
// choice ("6mo" is 6, "1y" is 12) and 0 for every other choice: 31 January
// plus "6mo" is 31 July, not 180 days later.
func ExpirationMonths(s string) int {
	for suffix, per := range map[string]int64{"mo": 1, "y": 12} {
		num, ok := strings.CutSuffix(s, suffix)
		if !ok || num == "" || strings.Trim(num, "0123456789") != "" {
			continue
		}
		n, err := strconv.ParseInt(num, 10, 32)
		if err != nil || n <= 0 || n*per > 12*290 {
			return 0
		}
		return int(n * per)
	}
	return 0
}
