package usage

import (
	"fmt"
	"html"
	"html/template"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate/keys"
)

// ChartRange is one of the chart periods of SPEC §6 and the bucket size it
// is drawn with.
type ChartRange struct {
	Name     string // "1h", "24h", "7d" or "30d"
	Label    string // "1 hour", …
	Span     time.Duration
	Interval string // a keys.UsageQuery interval: "minute", "hour" or "day"
}

// ChartRanges returns the chart periods in display order; the caller may
// keep or change the slice.
func ChartRanges() []ChartRange {
	return []ChartRange{
		{"1h", "1 hour", time.Hour, "minute"},
		{"24h", "24 hours", 24 * time.Hour, "hour"},
		{"7d", "7 days", 7 * 24 * time.Hour, "hour"},
		{"30d", "30 days", 30 * 24 * time.Hour, "day"},
	}
}

// ParseChartRange returns the period named s, or false.
func ParseChartRange(s string) (ChartRange, bool) {
	for _, r := range ChartRanges() {
		if r.Name == s {
			return r, true
		}
	}
	return ChartRange{}, false
}

// Query returns the usage query for the period ending with the bucket that
// holds now: whole buckets only, the last one still filling. Exactly one of
// KeyID, UserID and OrgID is left for the caller to set.
func (r ChartRange) Query(now time.Time) keys.UsageQuery {
	step := intervalSeconds(r.Interval)
	n := now.Unix()
	to := n - mod(n, step) + step
	return keys.UsageQuery{From: to - int64(r.Span/time.Second), To: to, Interval: r.Interval}
}

func intervalSeconds(interval string) int64 {
	switch interval {
	case "minute":
		return 60
	case "day":
		return 86400
	}
	return 3600
}

func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

// ChartOptions describe a chart. From, To and Interval are those of the
// keys.UsageQuery the points answer: the chart has one bucket per interval
// of [From, To), empty buckets drawn as zero. Zero sizes and invalid colours
// mean the defaults.
type ChartOptions struct {
	// Title is the chart's accessible name (and tooltip), such as
	// "Requests to key ci, last 24 hours".
	Title    string
	From, To int64
	Interval string
	// Width and Height are the viewBox size; the SVG scales to its box.
	Width, Height int
	// AllowedColor and LimitedColor are #rgb or #rrggbb.
	AllowedColor, LimitedColor string
}

// Default chart colours.
const (
	DefaultAllowedColor = "#4f46e5"
	DefaultLimitedColor = "#dc2626"
)

func (o *ChartOptions) defaults(w, h int) {
	if o.Width <= 0 {
		o.Width = w
	}
	if o.Height <= 0 {
		o.Height = h
	}
	if !ValidColor(o.AllowedColor) {
		o.AllowedColor = DefaultAllowedColor
	}
	if !ValidColor(o.LimitedColor) {
		o.LimitedColor = DefaultLimitedColor
	}
}

// ValidColor reports whether s is a CSS hex colour #rgb or #rrggbb, the only
// form a chart or page writes into its markup.
func ValidColor(s string) bool {
	if len(s) != 4 && len(s) != 7 || s[0] != '#' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// maxBuckets bounds the buckets drawn, so that a silly range cannot make a
// huge page: 30 days of hours is 720.
const maxBuckets = 1500

// buckets returns points zero-filled over o's range, at most maxBuckets of
// the newest.
func buckets(points []keys.UsagePoint, o *ChartOptions) []keys.UsagePoint {
	q := keys.UsageQuery{From: o.From, To: o.To, Interval: o.Interval}
	step := intervalSeconds(o.Interval)
	if q.To-q.From > step*maxBuckets {
		q.From = q.To - step*maxBuckets
	}
	filled := keys.FillUsage(points, q)
	if len(filled) > maxBuckets {
		filled = filled[len(filled)-maxBuckets:]
	}
	return filled
}

// minSegment is the least height (in viewBox units, about 2 px) a
// non-zero bar segment is drawn with.
const minSegment = 2.5

// SVG draws points as a bar chart: per bucket, allowed requests with
// rate-limited ones stacked on top, a y axis with round ticks, time labels
// (UTC) on the x axis, a legend, a tooltip per bar and an accessible name and
// summary. Text is escaped; colours are checked. Safe for concurrent use.
func SVG(points []keys.UsagePoint, o ChartOptions) template.HTML {
	o.defaults(640, 220)
	bs := buckets(points, &o)
	const left, right, top, bottom = 48.0, 10.0, 12.0, 46.0
	w, h := float64(o.Width), float64(o.Height)
	pw, ph := w-left-right, h-top-bottom

	var allowed, limited, peak int64
	for _, p := range bs {
		allowed += p.Allowed
		limited += p.RateLimited
		peak = max(peak, p.Allowed+p.RateLimited)
	}
	tick := niceStep(peak)
	ymax := tick * 4 // ≥ peak, by niceStep's contract

	var b strings.Builder
	summary := fmt.Sprintf("%s: %s allowed, %s rate limited", o.Title, formatCount(allowed), formatCount(limited))
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s" font-family="system-ui, sans-serif" font-size="11">`,
		o.Width, o.Height, svgText(summary))
	fmt.Fprintf(&b, `<title>%s</title>`, svgText(summary))

	// Grid and y labels.
	for v := int64(0); v <= ymax; v += tick {
		y := top + ph - ph*float64(v)/float64(ymax)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#d4d4d8" stroke-width="1"/>`, left, y, w-right, y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#52525b">%s</text>`, left-6, y+4, formatCount(v))
	}

	n := len(bs)
	if n > 0 {
		slot := pw / float64(n)
		bw := max(slot*0.8, 0.5)
		if slot < 2 {
			bw = slot
		}
		for i, p := range bs {
			if p.Allowed == 0 && p.RateLimited == 0 {
				continue
			}
			x := left + float64(i)*slot + (slot-bw)/2
			ha := ph * float64(p.Allowed) / float64(ymax)
			hl := ph * float64(p.RateLimited) / float64(ymax)
			// A few allowed requests next to thousands refused (or the
			// reverse) would round to nothing: every non-zero segment
			// gets at least minSegment, so both series stay visible.
			if p.Allowed > 0 {
				ha = max(ha, minSegment)
			}
			if p.RateLimited > 0 {
				hl = max(hl, minSegment)
			}
			if ha+hl > ph { // only when both were raised at the very top
				hl = ph - ha
			}
			base := top + ph
			fmt.Fprintf(&b, `<g><title>%s: %s allowed, %s rate limited</title>`,
				svgText(bucketLabel(p.T, o.Interval)), formatCount(p.Allowed), formatCount(p.RateLimited))
			if p.Allowed > 0 {
				fmt.Fprintf(&b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"/>`, x, base-ha, bw, ha, o.AllowedColor)
			}
			if p.RateLimited > 0 {
				fmt.Fprintf(&b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"/>`, x, base-ha-hl, bw, hl, o.LimitedColor)
			}
			b.WriteString(`</g>`)
		}

		// X labels: at most 6, evenly spaced, at bucket starts.
		every := (n + 5) / 6
		span := bs[n-1].T - bs[0].T
		for i := 0; i < n; i += every {
			x := left + float64(i)*slot + slot/2
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#52525b">%s</text>`,
				x, top+ph+16, svgText(axisLabel(bs[i].T, span)))
		}
	}
	if allowed+limited == 0 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#71717a" font-size="13">No requests in this period</text>`, left+pw/2, top+ph/2)
	}

	// Legend.
	ly := h - 8
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/><text x="%.1f" y="%.1f" fill="#27272a">Allowed (%s)</text>`,
		left, ly-9, o.AllowedColor, left+14, ly, formatCount(allowed))
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/><text x="%.1f" y="%.1f" fill="#27272a">Rate limited (%s)</text>`,
		left+150, ly-9, o.LimitedColor, left+164, ly, formatCount(limited))
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#71717a">UTC</text>`, w-right, ly)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// Sparkline draws points as a small line of all requests, with the
// rate-limited ones as a second line when there are any. It has no axes;
// its accessible name is o.Title plus the totals.
func Sparkline(points []keys.UsagePoint, o ChartOptions) template.HTML {
	o.defaults(120, 28)
	bs := buckets(points, &o)
	var total, limited, peak int64
	for _, p := range bs {
		total += p.Allowed + p.RateLimited
		limited += p.RateLimited
		peak = max(peak, p.Allowed+p.RateLimited)
	}
	label := fmt.Sprintf("%s: %s requests", o.Title, formatCount(total))
	if limited > 0 {
		label += fmt.Sprintf(", %s rate limited", formatCount(limited))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="sparkline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s"><title>%s</title>`,
		o.Width, o.Height, o.Width, o.Height, svgText(label), svgText(label))
	line := func(value func(keys.UsagePoint) int64, color string) {
		w, h := float64(o.Width), float64(o.Height)
		b.WriteString(`<polyline fill="none" stroke-width="1.5" stroke-linejoin="round" stroke="` + color + `" points="`)
		for i, p := range bs {
			x := w / 2
			if len(bs) > 1 {
				x = 1 + (w-2)*float64(i)/float64(len(bs)-1)
			}
			y := h - 1.5
			if peak > 0 {
				y -= (h - 3) * float64(value(p)) / float64(peak)
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(y, 'f', 1, 64))
		}
		b.WriteString(`"/>`)
	}
	line(func(p keys.UsagePoint) int64 { return p.Allowed + p.RateLimited }, o.AllowedColor)
	if limited > 0 {
		line(func(p keys.UsagePoint) int64 { return p.RateLimited }, o.LimitedColor)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// svgText escapes s for SVG text or an attribute, dropping what XML cannot
// carry (control characters, invalid UTF-8), so the SVG stays well-formed
// standalone too.
func svgText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	return html.EscapeString(s)
}

// niceStep returns a round tick step (1, 2 or 5 times a power of ten, at
// least 1) so that four ticks cover peak.
func niceStep(peak int64) int64 {
	raw := (peak + 3) / 4
	if raw <= 1 {
		return 1
	}
	for p := int64(1); ; p *= 10 {
		for _, m := range [...]int64{1, 2, 5} {
			if m*p >= raw {
				return m * p
			}
		}
	}
}

// formatCount writes n briefly: 999, 1.2k, 12k, 3.4M.
func formatCount(n int64) string {
	switch {
	case n < 1000:
		return strconv.FormatInt(n, 10)
	case n < 10_000:
		return trimZero(strconv.FormatFloat(float64(n)/1e3, 'f', 1, 64)) + "k"
	case n < 1_000_000:
		return strconv.FormatInt(n/1000, 10) + "k"
	case n < 10_000_000:
		return trimZero(strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64)) + "M"
	case n < 1_000_000_000:
		return strconv.FormatInt(n/1_000_000, 10) + "M"
	}
	return trimZero(strconv.FormatFloat(float64(n)/1e9, 'f', 1, 64)) + "G"
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// axisLabel names a bucket start on the x axis: a time of day for charts
// spanning up to a day and a half, a date beyond.
func axisLabel(t, span int64) string {
	u := time.Unix(t, 0).UTC()
	if span <= 36*3600 {
		return u.Format("15:04")
	}
	return u.Format("Jan 2")
}

// bucketLabel names a bucket in its tooltip.
func bucketLabel(t int64, interval string) string {
	u := time.Unix(t, 0).UTC()
	switch interval {
	case "minute":
		return u.Format("Jan 2 15:04 UTC")
	case "day":
		return u.Format("Mon Jan 2")
	}
	return u.Format("Jan 2 15:00 UTC")
}

// FormatTime writes a unix time (int64 or *int64) for people, in UTC, as the
// dashboard and the portal show it; nil or 0 is "—".
func FormatTime(v any) string {
	var t int64
	switch x := v.(type) {
	case int64:
		t = x
	case *int64:
		if x == nil {
			return "—"
		}
		t = *x
	}
	if t == 0 {
		return "—"
	}
	return time.Unix(t, 0).UTC().Format("2006-01-02 15:04 UTC")
}
