package usage

import (
	"encoding/xml"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// svgElems parses s as XML and returns its elements by name, failing the
// test when s is not well-formed.
func svgElems(t *testing.T, s string) map[string][]xml.StartElement {
	t.Helper()
	out := map[string][]xml.StartElement{}
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, s)
		}
		if se, ok := tok.(xml.StartElement); ok {
			out[se.Name.Local] = append(out[se.Name.Local], se)
		}
	}
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func num(t *testing.T, e xml.StartElement, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(attr(e, name), 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, attr(e, name), err)
	}
	return v
}

var noon = time.Date(2026, 3, 14, 12, 34, 56, 0, time.UTC)

func TestChartRangeQuery(t *testing.T) {
	tests := []struct {
		name     string
		from, to time.Time
		buckets  int
	}{
		{"1h", time.Date(2026, 3, 14, 11, 35, 0, 0, time.UTC), time.Date(2026, 3, 14, 12, 35, 0, 0, time.UTC), 60},
		{"24h", time.Date(2026, 3, 13, 13, 0, 0, 0, time.UTC), time.Date(2026, 3, 14, 13, 0, 0, 0, time.UTC), 24},
		{"7d", time.Date(2026, 3, 7, 13, 0, 0, 0, time.UTC), time.Date(2026, 3, 14, 13, 0, 0, 0, time.UTC), 168},
		{"30d", time.Date(2026, 2, 13, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), 30},
	}
	for _, tt := range tests {
		r, ok := ParseChartRange(tt.name)
		if !ok {
			t.Fatalf("ParseChartRange(%q) failed", tt.name)
		}
		q := r.Query(noon)
		if q.From != tt.from.Unix() || q.To != tt.to.Unix() {
			t.Errorf("%s: range [%v, %v), want [%v, %v)", tt.name, time.Unix(q.From, 0).UTC(), time.Unix(q.To, 0).UTC(), tt.from, tt.to)
		}
		if n := len(keys.FillUsage(nil, q)); n != tt.buckets {
			t.Errorf("%s: %d buckets, want %d", tt.name, n, tt.buckets)
		}
	}
	if _, ok := ParseChartRange("2h"); ok {
		t.Error(`ParseChartRange("2h") succeeded`)
	}
}

func day24() (keys.UsageQuery, []keys.UsagePoint) {
	r, _ := ParseChartRange("24h")
	q := r.Query(noon)
	return q, []keys.UsagePoint{
		{T: q.From + 2*3600, Allowed: 30, RateLimited: 10},
		{T: q.From + 5*3600, Allowed: 7},
		{T: q.To - 3600, RateLimited: 3},
	}
}

func TestSVGBars(t *testing.T) {
	q, points := day24()
	out := string(SVG(points, ChartOptions{Title: "Key ci", From: q.From, To: q.To, Interval: q.Interval}))
	el := svgElems(t, out)

	// Three buckets with traffic: four bars (one stacked pair) plus two
	// legend swatches.
	if n := len(el["rect"]); n != 6 {
		t.Fatalf("%d rects, want 6:\n%s", n, out)
	}
	bars := el["rect"][:4]
	// The stacked pair: allowed at the bottom, rate limited right on top,
	// heights 3:1.
	a, l := bars[0], bars[1]
	if attr(a, "fill") != DefaultAllowedColor || attr(l, "fill") != DefaultLimitedColor {
		t.Fatalf("fills %q %q", attr(a, "fill"), attr(l, "fill"))
	}
	if d := num(t, l, "y") + num(t, l, "height") - num(t, a, "y"); d > 0.02 || d < -0.02 {
		t.Errorf("rate-limited bar does not sit on the allowed bar (gap %v)", d)
	}
	if r := num(t, a, "height") / num(t, l, "height"); r < 2.99 || r > 3.01 {
		t.Errorf("height ratio %v, want 3", r)
	}
	// Buckets are zero-filled: the bar of bucket 2 sits at slot 2 of 24 and
	// the last bar in the last slot.
	slot := (640.0 - 48 - 10) / 24
	if x := num(t, a, "x") + num(t, a, "width")/2; x < 48+2.4*slot || x > 48+2.6*slot {
		t.Errorf("bucket 2 bar centred at %v, want %v", x, 48+2.5*slot)
	}
	last := bars[3]
	if x := num(t, last, "x") + num(t, last, "width")/2; x < 48+23.4*slot || x > 48+23.6*slot {
		t.Errorf("last bar centred at %v, want %v", x, 48+23.5*slot)
	}
	if !strings.Contains(out, `aria-label="Key ci: 37 allowed, 13 rate limited"`) {
		t.Errorf("no accessible summary:\n%s", out)
	}
	if !strings.Contains(out, "Mar 13 15:00 UTC: 30 allowed, 10 rate limited") {
		t.Errorf("no bar tooltip for bucket 2:\n%s", out)
	}
	// Y ticks 0, 10, 20, 30, 40 (peak 40) and 6 x labels of the times.
	var labels []string
	for _, m := range regexp.MustCompile(`<text[^>]*>([^<]*)</text>`).FindAllStringSubmatch(out, -1) {
		labels = append(labels, m[1])
	}
	got := strings.Join(labels, "|")
	want := "0|10|20|30|40|13:00|17:00|21:00|01:00|05:00|09:00|Allowed (37)|Rate limited (13)|UTC"
	if got != want {
		t.Errorf("labels\n got %s\nwant %s", got, want)
	}
}

func TestSVGEmptyAndEscaped(t *testing.T) {
	q, _ := day24()
	out := string(SVG(nil, ChartOptions{Title: `<script>alert(1)</script>`, From: q.From, To: q.To, Interval: q.Interval,
		AllowedColor: `red" onload="x`, LimitedColor: "#0f0"}))
	svgElems(t, out)
	if strings.Contains(out, "<script>") || strings.Contains(out, "onload") {
		t.Fatalf("unescaped input in\n%s", out)
	}
	if !strings.Contains(out, "&lt;script&gt;") {
		t.Errorf("title missing")
	}
	if !strings.Contains(out, "No requests in this period") {
		t.Errorf("no empty-state text")
	}
	if !strings.Contains(out, `fill="#0f0"`) || !strings.Contains(out, `fill="`+DefaultAllowedColor+`"`) {
		t.Errorf("colours not applied or not defaulted:\n%s", out)
	}
}

func TestSparkline(t *testing.T) {
	q, points := day24()
	o := ChartOptions{Title: "Last 24 hours", From: q.From, To: q.To, Interval: q.Interval}
	el := svgElems(t, string(Sparkline(points, o)))
	lines := el["polyline"]
	if len(lines) != 2 {
		t.Fatalf("%d polylines, want 2 (all, rate limited)", len(lines))
	}
	pts := strings.Fields(attr(lines[0], "points"))
	if len(pts) != 24 {
		t.Fatalf("%d points, want one per hour", len(pts))
	}
	// The peak bucket (2) is at the top, an empty one at the bottom.
	y := func(p string) float64 {
		v, _ := strconv.ParseFloat(p[strings.IndexByte(p, ',')+1:], 64)
		return v
	}
	if y(pts[2]) != 1.5 || y(pts[0]) != 26.5 {
		t.Errorf("y of peak %v, of empty %v", y(pts[2]), y(pts[0]))
	}
	if l := attr(svgElems(t, string(Sparkline(points[1:2], o)))["svg"][0], "aria-label"); l != "Last 24 hours: 7 requests" {
		t.Errorf("label %q", l)
	}
	if n := len(svgElems(t, string(Sparkline(points[1:2], o)))["polyline"]); n != 1 {
		t.Errorf("%d polylines without rate limiting, want 1", n)
	}
}

func TestNiceStep(t *testing.T) {
	for _, tt := range []struct{ peak, step int64 }{
		{0, 1}, {1, 1}, {4, 1}, {5, 2}, {8, 2}, {9, 5}, {20, 5}, {21, 10}, {40, 10}, {41, 20}, {999, 500}, {1_000_001, 500_000},
	} {
		got := niceStep(tt.peak)
		if got != tt.step || got*4 < tt.peak {
			t.Errorf("niceStep(%d) = %d, want %d", tt.peak, got, tt.step)
		}
	}
}

func TestFormatCount(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0"}, {999, "999"}, {1000, "1k"}, {1250, "1.2k"}, {12_345, "12k"}, {2_500_000, "2.5M"}, {12_000_000, "12M"}, {3_000_000_000, "3G"},
	} {
		if got := formatCount(tt.n); got != tt.want {
			t.Errorf("formatCount(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestValidColor(t *testing.T) {
	for s, want := range map[string]bool{"#abc": true, "#A0b1C2": true, "#abcd": false, "abc": false, "#ggg": false, "": false, `#fff"`: false} {
		if ValidColor(s) != want {
			t.Errorf("ValidColor(%q) = %v", s, !want)
		}
	}
}

func BenchmarkSVG(b *testing.B) {
	r, _ := ParseChartRange("7d")
	q := r.Query(noon)
	points := make([]keys.UsagePoint, 0, 168)
	for t := q.From; t < q.To; t += 3600 {
		points = append(points, keys.UsagePoint{T: t, Allowed: t % 97, RateLimited: t % 7})
	}
	o := ChartOptions{Title: "bench", From: q.From, To: q.To, Interval: q.Interval}
	b.ReportAllocs()
	for b.Loop() {
		SVG(points, o)
	}
}

// FuzzSVG checks that any title and counts give well-formed SVG that
// carries the title only as text.
func FuzzSVG(f *testing.F) {
	f.Add("Key ci", int64(3), int64(1), uint8(24))
	f.Add(`<script>alert(1)</script>"'&`, int64(1<<40), int64(0), uint8(1))
	f.Add("\xff\x00]]>", int64(0), int64(0), uint8(0))
	f.Fuzz(func(t *testing.T, title string, allowed, limited int64, n uint8) {
		if allowed < 0 || limited < 0 || allowed > 1<<50 || limited > 1<<50 {
			return
		}
		r, _ := ParseChartRange("24h")
		q := r.Query(noon)
		var points []keys.UsagePoint
		for i := 0; i < int(n)%30; i++ {
			points = append(points, keys.UsagePoint{T: q.From + int64(i)*3600, Allowed: allowed, RateLimited: limited})
		}
		o := ChartOptions{Title: title, From: q.From, To: q.To, Interval: q.Interval}
		for _, out := range []string{string(SVG(points, o)), string(Sparkline(points, o))} {
			el := svgElems(t, out)
			if len(el["svg"]) != 1 || len(el["script"]) != 0 {
				t.Fatalf("elements %v", el)
			}
		}
	})
}

func TestFormatTime(t *testing.T) {
	v := int64(1767225600)
	for _, tt := range []struct {
		in   any
		want string
	}{{v, "2026-01-01 00:00 UTC"}, {&v, "2026-01-01 00:00 UTC"}, {int64(0), "—"}, {(*int64)(nil), "—"}} {
		if got := FormatTime(tt.in); got != tt.want {
			t.Errorf("FormatTime(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A few allowed requests next to thousands rate limited stay visible: each
// non-zero segment is at least minSegment high.
func TestSVGSmallSeriesVisible(t *testing.T) {
	q, _ := day24()
	points := []keys.UsagePoint{{T: q.From, Allowed: 3, RateLimited: 50000}, {T: q.From + 3600, Allowed: 40000, RateLimited: 1}}
	out := string(SVG(points, ChartOptions{Title: "k", From: q.From, To: q.To, Interval: q.Interval}))
	bars := svgElems(t, out)["rect"]
	if len(bars) != 6 {
		t.Fatalf("%d rects, want 4 bars and 2 swatches:\n%s", len(bars), out)
	}
	for i, b := range bars[:4] {
		if h := num(t, b, "height"); h < minSegment {
			t.Errorf("bar %d (%s) is %v high, want ≥ %v", i, attr(b, "fill"), h, minSegment)
		}
	}
	// Stacked still: the limited segment sits on the allowed one.
	a, l := bars[0], bars[1]
	if d := num(t, l, "y") + num(t, l, "height") - num(t, a, "y"); d > 0.02 || d < -0.02 {
		t.Errorf("segments not stacked (gap %v)", d)
	}
}
