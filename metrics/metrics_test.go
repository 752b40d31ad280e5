package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// parseExposition checks text against the Prometheus text format and
// returns its samples, failing t when it does not conform.
func parseExposition(t *testing.T, text string) map[string]float64 {
	t.Helper()
	samples, err := checkExposition(text)
	if err != nil {
		t.Fatal(err)
	}
	return samples
}

// checkExposition checks text against the Prometheus text format (HELP and
// TYPE comments; samples `name{label="value",…} value [timestamp]`) and
// returns the samples by series, written `name{labels}` as in the text.
func checkExposition(text string) (map[string]float64, error) {
	samples := map[string]float64{}
	types := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "#"); ok {
			f := strings.Fields(rest)
			switch {
			case len(f) == 0 || f[0] != "HELP" && f[0] != "TYPE":
				// a plain comment
			case len(f) >= 2 && f[0] == "HELP" && validName(f[1]):
			case len(f) == 3 && f[0] == "TYPE" && validName(f[1]):
				switch f[2] {
				case "counter", "gauge", "histogram", "summary", "untyped":
				default:
					return nil, fmt.Errorf("line %d: bad type: %q", n, line)
				}
				if _, dup := types[f[1]]; dup {
					return nil, fmt.Errorf("line %d: second TYPE for %s", n, f[1])
				}
				types[f[1]] = f[2]
			default:
				return nil, fmt.Errorf("line %d: bad HELP or TYPE: %q", n, line)
			}
			continue
		}
		series, value, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v: %q", n, err, line)
		}
		if _, dup := samples[series]; dup {
			return nil, fmt.Errorf("line %d: series %s written twice", n, series)
		}
		samples[series] = value
	}
	return samples, sc.Err()
}

func parseSample(line string) (string, float64, error) {
	i := 0
	for i < len(line) && line[i] != '{' && line[i] != ' ' {
		i++
	}
	if !validName(line[:i]) {
		return "", 0, fmt.Errorf("bad metric name %q", line[:i])
	}
	if i < len(line) && line[i] == '{' {
		j, err := scanLabels(line, i+1)
		if err != nil {
			return "", 0, err
		}
		i = j
	}
	series := line[:i]
	rest, ok := strings.CutPrefix(line[i:], " ")
	if !ok {
		return "", 0, errors.New("no space before the value")
	}
	f := strings.Fields(rest)
	if len(f) == 0 || len(f) > 2 {
		return "", 0, errors.New("want a value and an optional timestamp")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return "", 0, fmt.Errorf("value: %w", err)
	}
	if len(f) == 2 {
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			return "", 0, fmt.Errorf("timestamp: %w", err)
		}
	}
	return series, v, nil
}

// scanLabels reads `name="value",…}` from line[i:], blanks allowed between
// tokens as in Prometheus' own parser, and returns the index after the
// closing brace.
func scanLabels(line string, i int) (int, error) {
	skip := func() {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
	}
	for {
		skip()
		if i < len(line) && line[i] == '}' {
			return i + 1, nil
		}
		j := i
		for j < len(line) && line[j] != '=' && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		if !validName(line[i:j]) || strings.Contains(line[i:j], ":") {
			return 0, errors.New("bad label name")
		}
		i = j
		skip()
		if i >= len(line) || line[i] != '=' {
			return 0, errors.New("want = after a label name")
		}
		i++
		skip()
		if i >= len(line) || line[i] != '"' {
			return 0, errors.New("label value not quoted")
		}
		for i++; ; i++ {
			if i >= len(line) {
				return 0, errors.New("unterminated label value")
			}
			if line[i] == '\\' {
				i++
				if i >= len(line) || !strings.ContainsRune(`\"n`, rune(line[i])) {
					return 0, errors.New("bad escape in label value")
				}
				continue
			}
			if line[i] == '"' {
				i++
				break
			}
		}
		skip()
		if i < len(line) && line[i] == ',' {
			i++
		} else if i >= len(line) || line[i] != '}' {
			return 0, errors.New("want , or } after a label")
		}
	}
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func scrape(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	var b bytes.Buffer
	m.WritePrometheus(&b)
	return parseExposition(t, b.String())
}

func wantValue(t *testing.T, got map[string]float64, series string, want float64) {
	t.Helper()
	v, ok := got[series]
	if !ok {
		t.Errorf("%s missing", series)
		return
	}
	if v != want {
		t.Errorf("%s = %v, want %v", series, v, want)
	}
}

func TestCountersMove(t *testing.T) {
	m := New()
	before := scrape(t, m)
	for r := range numResults {
		wantValue(t, before, `keygate_requests_total{result="`+r.String()+`"}`, 0)
	}
	wantValue(t, before, `keygate_gateway_duration_seconds_count`, 0)

	m.Request(ResultAllowed)
	m.Request(ResultAllowed)
	m.Request(ResultStoreError)
	m.Request(numResults) // unknown: ignored
	m.ObserveGateway(80 * time.Microsecond)
	m.ObserveGateway(3 * time.Millisecond)
	m.ObserveUpstream(2 * time.Second)
	m.ObserveUpstream(time.Minute) // over the last bucket: +Inf only
	m.CacheHit()
	m.CacheHit()
	m.CacheMiss()
	m.NegativeHit()
	m.StoreLookup()
	m.StoreError()
	m.UsageFlush(2*time.Millisecond, 40, nil)
	m.UsageFlush(time.Second, 7, errors.New("down"))
	m.LimiterError()

	got := scrape(t, m)
	tests := []struct {
		series string
		want   float64
	}{
		{`keygate_requests_total{result="allowed"}`, 2},
		{`keygate_requests_total{result="store_error"}`, 1},
		{`keygate_requests_total{result="rate_limited"}`, 0},
		{`keygate_gateway_duration_seconds_bucket{le="5e-05"}`, 0},
		{`keygate_gateway_duration_seconds_bucket{le="0.0001"}`, 1},
		{`keygate_gateway_duration_seconds_bucket{le="0.0025"}`, 1},
		{`keygate_gateway_duration_seconds_bucket{le="0.005"}`, 2},
		{`keygate_gateway_duration_seconds_bucket{le="+Inf"}`, 2},
		{`keygate_gateway_duration_seconds_count`, 2},
		{`keygate_upstream_duration_seconds_bucket{le="2.5"}`, 1},
		{`keygate_upstream_duration_seconds_bucket{le="10"}`, 1},
		{`keygate_upstream_duration_seconds_bucket{le="+Inf"}`, 2},
		{`keygate_upstream_duration_seconds_sum`, 62},
		{`keygate_cache_total{kind="positive",outcome="hit"}`, 2},
		{`keygate_cache_total{kind="positive",outcome="miss"}`, 1},
		{`keygate_cache_total{kind="negative",outcome="hit"}`, 1},
		{`keygate_store_lookups_total`, 1},
		{`keygate_store_errors_total`, 1},
		{`keygate_usage_flush_duration_seconds_count`, 2},
		{`keygate_usage_flush_errors_total`, 1},
		{`keygate_usage_flushed_counts_total`, 40},
		{`keygate_limiter_errors_total`, 1},
	}
	for _, tt := range tests {
		wantValue(t, got, tt.series, tt.want)
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("go_goroutines missing: runtime metrics not written")
	}
}

func TestTwoMetricsAreIndependent(t *testing.T) {
	a, b := New(), New()
	a.Request(ResultPublic)
	wantValue(t, scrape(t, a), `keygate_requests_total{result="public"}`, 1)
	wantValue(t, scrape(t, b), `keygate_requests_total{result="public"}`, 0)
}

func TestKeyGauge(t *testing.T) {
	m := New()
	if got := scrape(t, m); hasPrefix(got, "keygate_keys{") {
		t.Fatal("keygate_keys written with no key counter set")
	}
	calls := 0
	m.SetKeyCounter(func() ([]KeyCount, error) {
		calls++
		return []KeyCount{{"personal", "active", 3}, {"org", "archived", 1}, {"generic", "expired", 0}}, nil
	})
	got := scrape(t, m)
	wantValue(t, got, `keygate_keys{type="personal",status="active"}`, 3)
	wantValue(t, got, `keygate_keys{type="org",status="archived"}`, 1)
	wantValue(t, got, `keygate_keys{type="generic",status="expired"}`, 0)
	scrape(t, m)
	if calls != 2 {
		t.Fatalf("key counter called %d times in 2 scrapes", calls)
	}

	m.SetKeyCounter(func() ([]KeyCount, error) { return nil, errors.New("store down") })
	got = scrape(t, m)
	if hasPrefix(got, "keygate_keys{") {
		t.Fatal("keygate_keys written although the key counter failed")
	}
	wantValue(t, got, `keygate_store_errors_total`, 0) // the rest is still there
	m.SetKeyCounter(nil)
	if hasPrefix(scrape(t, m), "keygate_keys{") {
		t.Fatal("keygate_keys written after SetKeyCounter(nil)")
	}
}

// TestMetadata checks the output with HELP and TYPE lines, which the
// library writes only when enabled process-wide.
func TestMetadata(t *testing.T) {
	vm.ExposeMetadata(true)
	defer vm.ExposeMetadata(false)
	m := New()
	m.SetKeyCounter(func() ([]KeyCount, error) { return []KeyCount{{"org", "active", 2}}, nil })
	m.Request(ResultAllowed)
	var b bytes.Buffer
	m.WritePrometheus(&b)
	text := b.String()
	parseExposition(t, text)
	for _, want := range []string{
		"# TYPE keygate_requests_total counter\n",
		"# TYPE keygate_gateway_duration_seconds histogram\n",
		"# TYPE keygate_keys gauge\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestCheckExposition makes sure the checker the other tests rely on
// rejects what Prometheus would.
func TestCheckExposition(t *testing.T) {
	good := "# a comment\n# HELP keygate_x Things.\n# TYPE keygate_x counter\nkeygate_x 1\nkeygate_y{a=\"b\\\"c\",d=\"\"} +Inf 1700000000000\n"
	if got, err := checkExposition(good); err != nil || len(got) != 2 || !math.IsInf(got[`keygate_y{a="b\"c",d=""}`], 1) {
		t.Fatalf("checkExposition(good) = %v, %v", got, err)
	}
	for _, bad := range []string{
		"keygate_x 1 2 3",
		"keygate_x one",
		"keygate-x 1",
		"keygate_x{a=b} 1",
		`keygate_x{a b="c"} 1`,
		`keygate_x{a="\x"} 1`,
		`keygate_x{a="b} 1`,
		`keygate_x{a="b"`,
		`keygate_x{a="b"}1`,
		"# TYPE keygate_x bogus",
		"# TYPE keygate_x counter\n# TYPE keygate_x gauge",
		"# HELP",
		"# TYPE keygate_x",
		"keygate_x 1\nkeygate_x 2",
	} {
		if _, err := checkExposition(bad); err == nil {
			t.Errorf("checkExposition accepted %q", bad)
		}
	}
}

func hasPrefix(m map[string]float64, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func TestResultString(t *testing.T) {
	if s := ResultUpstreamTimeout.String(); s != "upstream_timeout" {
		t.Fatalf("String = %q", s)
	}
	if s := numResults.String(); s != "unknown" {
		t.Fatalf("String of an unknown result = %q", s)
	}
}

func TestRecordingDoesNotAllocate(t *testing.T) {
	m := New()
	for name, f := range map[string]func(){
		"Request":        func() { m.Request(ResultInvalidKey) },
		"ObserveGateway": func() { m.ObserveGateway(time.Millisecond) },
		"UsageFlush":     func() { m.UsageFlush(time.Millisecond, 3, nil) },
		"CacheHit":       m.CacheHit,
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %.1f times", name, n)
		}
	}
}

func BenchmarkRequest(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request(ResultAllowed)
		}
	})
}

func BenchmarkObserveGateway(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := 100 * time.Microsecond
		for pb.Next() {
			m.ObserveGateway(d)
		}
	})
}
