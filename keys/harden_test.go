package keys

import (
	"testing"
	"time"
)

// Issue 10.16: "6mo" and "1y" were 180 and 365 days; they are calendar
// months, clamped to the target month's last day.
func TestAddMonths(t *testing.T) {
	day := func(s string) time.Time {
		d, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tt := range []struct {
		from   string
		months int
		want   string
	}{
		{"2026-01-31 10:00", 6, "2026-07-31 10:00"},
		{"2026-01-31 10:00", 1, "2026-02-28 10:00"},
		{"2028-01-31 10:00", 1, "2028-02-29 10:00"},
		{"2026-08-31 23:59", 6, "2027-02-28 23:59"},
		{"2028-02-29 00:00", 12, "2029-02-28 00:00"},
		{"2026-03-15 12:00", 3, "2026-06-15 12:00"},
		{"2026-12-31 00:00", 2, "2027-02-28 00:00"},
	} {
		if got := AddMonths(day(tt.from), tt.months); !got.Equal(day(tt.want)) {
			t.Errorf("%s + %d months = %s, want %s", tt.from, tt.months, got.Format("2006-01-02 15:04"), tt.want)
		}
	}
}

// Issue 10.13: hints showed short imported tokens whole.
func TestHintsHideShortTokens(t *testing.T) {
	tokens, err := NewTokens("kg")
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]string{
		"abc":                  "…",
		"fifteen-chars-x":      "…",
		"sixteen-chars-xyz":    "…-xyz",
		"sk_live_0123456789ab": "…89ab",
	} {
		if got := tokens.Hint(tok); got != want {
			t.Errorf("Hint(%q) = %q, want %q", tok, got, want)
		}
	}
}
