package keys

import "time"

// Bounds on untrusted input, each a defence named in the README's Security
// section.
const (
	// MaxMetadataDepth bounds how deeply metadata objects and arrays nest
	// (the top-level object is depth 1), so a small document cannot
	// render as a huge page.
	MaxMetadataDepth = 5
	// MinImportedTokenLength is the shortest token an import accepts: a
	// shorter one could be guessed, and its hint would show most of it.
	MinImportedTokenLength = 16
	// MaxRateWindow bounds a rate limit's window: longer windows are no
	// use as rate limits and push the limiter's arithmetic towards overflow.
	MaxRateWindow = 366 * 24 * time.Hour
)

// From returns when a key created at now expires under e (not Never).
// Months are calendar months: 31 January plus 6 months is 31 July. A day
// the target month lacks is clamped to its last day, as people expect (31
// August plus 6 months is 28 or 29 February, not 2 or 3 March).
func (e Expiration) From(now time.Time) time.Time {
	if e.Months <= 0 {
		return now.Add(e.After)
	}
	return AddMonths(now, e.Months)
}

// AddMonths adds n calendar months to t, clamping the day to the target
// month's last day.
func AddMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}

// jsonDepth returns how deeply the compact, valid JSON b nests objects and
// arrays; strings are skipped, so brackets inside them do not count.
func jsonDepth(b []byte) int {
	depth, deepest := 0, 0
	in := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case in:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}
