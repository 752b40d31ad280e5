// Package metrics counts what keygate does and writes it in the Prometheus
// text format for the admin port's /metrics.
package metrics

import (
	"fmt"
	"io"
	"sort"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// Result is the outcome of one request on the proxy port or the validation
// endpoint.
type Result uint8

// Request results, the values of keygate_requests_total's result label.
const (
	ResultAllowed Result = iota
	ResultRateLimited
	ResultMissingKey
	ResultInvalidKey
	ResultExpiredKey
	ResultPublic
	ResultUpstreamError
	ResultUpstreamTimeout
	ResultTooLarge
	ResultStoreError
	ResultQuotaExceeded
	numResults
)

var resultNames = [numResults]string{
	ResultAllowed:         "allowed",
	ResultRateLimited:     "rate_limited",
	ResultMissingKey:      "missing_key",
	ResultInvalidKey:      "invalid_key",
	ResultExpiredKey:      "expired_key",
	ResultPublic:          "public",
	ResultUpstreamError:   "upstream_error",
	ResultUpstreamTimeout: "upstream_timeout",
	ResultTooLarge:        "too_large",
	ResultStoreError:      "store_error",
	ResultQuotaExceeded:   "quota_exceeded",
}

func (r Result) String() string {
	if r < numResults {
		return resultNames[r]
	}
	return "unknown"
}

// durationBuckets are the histogram upper bounds in seconds, 50µs to 10s,
// fine enough for histogram_quantile on both sub-millisecond gateway time
// and slow upstreams.
var durationBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// KeyCount is the number of keys of one type ("personal", "org" or
// "generic") and status ("active", "expired" or "archived").
type KeyCount struct {
	Type   string
	Status string
	N      int64
}

// Metrics holds keygate's counters and histograms in a registry of its own,
// so several can live in one process. Recording methods are cheap (no
// allocation, no locks beyond a histogram's) and safe for concurrent use.
// A Metrics must be made with New.
type Metrics struct {
	set *vm.Set

	requests [numResults]*vm.Counter
	// forwardAuth counts forward-auth sub-requests (SPEC §10) apart from
	// proxied requests, so that a dashboard can tell the two paths apart.
	forwardAuth [numResults]*vm.Counter

	gateway  *vm.PrometheusHistogram
	upstream *vm.PrometheusHistogram

	cacheHit, cacheMiss, negativeHit *vm.Counter
	storeLookups, storeErrors        *vm.Counter

	flushDuration *vm.PrometheusHistogram
	flushErrors   *vm.Counter
	flushedCounts *vm.Counter

	limiterErrors *vm.Counter

	keyCounter atomic.Pointer[func() ([]KeyCount, error)]
	// storeWriteErrors counts writes the store failed to commit.
	storeWriteErrors atomic.Pointer[func() int64]
}

// New returns a Metrics with every series created, at zero.
func New() *Metrics {
	s := vm.NewSet()
	m := &Metrics{set: s}
	for r := range numResults {
		m.requests[r] = s.NewCounter(`keygate_requests_total{result="` + resultNames[r] + `"}`)
		m.forwardAuth[r] = s.NewCounter(`keygate_forward_auth_requests_total{result="` + resultNames[r] + `"}`)
	}
	m.gateway = s.NewPrometheusHistogramExt("keygate_gateway_duration_seconds", durationBuckets)
	m.upstream = s.NewPrometheusHistogramExt("keygate_upstream_duration_seconds", durationBuckets)
	m.cacheHit = s.NewCounter(`keygate_cache_total{kind="positive",outcome="hit"}`)
	m.cacheMiss = s.NewCounter(`keygate_cache_total{kind="positive",outcome="miss"}`)
	m.negativeHit = s.NewCounter(`keygate_cache_total{kind="negative",outcome="hit"}`)
	m.storeLookups = s.NewCounter("keygate_store_lookups_total")
	m.storeErrors = s.NewCounter("keygate_store_errors_total")
	m.flushDuration = s.NewPrometheusHistogramExt("keygate_usage_flush_duration_seconds", durationBuckets)
	m.flushErrors = s.NewCounter("keygate_usage_flush_errors_total")
	m.flushedCounts = s.NewCounter("keygate_usage_flushed_counts_total")
	m.limiterErrors = s.NewCounter("keygate_limiter_errors_total")
	s.RegisterMetricsWriter(m.writeKeys)
	s.RegisterMetricsWriter(m.writeStoreWriteErrors)
	return m
}

// Request counts one request with result r. Unknown results are ignored.
func (m *Metrics) Request(r Result) {
	if r < numResults {
		m.requests[r].Inc()
	}
}

// ForwardAuth counts one forward-auth sub-request with result r. Unknown
// results are ignored.
func (m *Metrics) ForwardAuth(r Result) {
	if r < numResults {
		m.forwardAuth[r].Inc()
	}
}

// ObserveGateway records keygate's own time for one request, upstream time
// excluded.
func (m *Metrics) ObserveGateway(d time.Duration) { m.gateway.Update(d.Seconds()) }

// ObserveUpstream records the upstream's time for one request.
func (m *Metrics) ObserveUpstream(d time.Duration) { m.upstream.Update(d.Seconds()) }

// CacheHit counts a token found in the cache of known keys.
func (m *Metrics) CacheHit() { m.cacheHit.Inc() }

// CacheMiss counts a token found in neither cache, so looked up in the store.
func (m *Metrics) CacheMiss() { m.cacheMiss.Inc() }

// NegativeHit counts a token found in the cache of unknown tokens.
func (m *Metrics) NegativeHit() { m.negativeHit.Inc() }

// StoreLookup counts one key lookup in the store.
func (m *Metrics) StoreLookup() { m.storeLookups.Inc() }

// StoreError counts one failed store lookup.
func (m *Metrics) StoreError() { m.storeErrors.Inc() }

// UsageFlush records one usage flush of n counts that took d and failed
// with err (nil on success). Its signature matches usage.Options.OnFlush.
func (m *Metrics) UsageFlush(d time.Duration, n int, err error) {
	m.flushDuration.Update(d.Seconds())
	if err != nil {
		m.flushErrors.Inc()
		return
	}
	m.flushedCounts.Add(n)
}

// LimiterError counts one rate-limiter backend failure.
func (m *Metrics) LimiterError() { m.limiterErrors.Inc() }

// SetKeyCounter sets the function that counts keys by type and status for
// the keygate_keys gauge. It is called on every scrape, so it should be
// quick and bound its own time; when it fails, or was never set, the gauge
// is left out of that scrape. nil removes it.
func (m *Metrics) SetKeyCounter(f func() ([]KeyCount, error)) {
	if f == nil {
		m.keyCounter.Store(nil)
		return
	}
	m.keyCounter.Store(&f)
}

func (m *Metrics) writeKeys(w io.Writer) {
	f := m.keyCounter.Load()
	if f == nil {
		return
	}
	counts, err := (*f)()
	if err != nil || len(counts) == 0 {
		return
	}
	counts = append([]KeyCount(nil), counts...)
	sort.Slice(counts, func(i, j int) bool {
		if counts[i].Type != counts[j].Type {
			return counts[i].Type < counts[j].Type
		}
		return counts[i].Status < counts[j].Status
	})
	vm.WriteMetadataIfNeeded(w, "keygate_keys", "gauge")
	for _, c := range counts {
		fmt.Fprintf(w, "keygate_keys{type=%q,status=%q} %d\n", c.Type, c.Status, c.N)
	}
}

// SetStoreWriteErrors sets the function that reads how many writes the
// store failed to commit or found stalled (a lock held by another process,
// a full disk), for keygate_store_write_errors_total. nil removes the series.
func (m *Metrics) SetStoreWriteErrors(f func() int64) {
	if f == nil {
		m.storeWriteErrors.Store(nil)
		return
	}
	m.storeWriteErrors.Store(&f)
}

func (m *Metrics) writeStoreWriteErrors(w io.Writer) {
	f := m.storeWriteErrors.Load()
	if f == nil {
		return
	}
	vm.WriteMetadataIfNeeded(w, "keygate_store_write_errors_total", "counter")
	fmt.Fprintf(w, "keygate_store_write_errors_total %d\n", (*f)())
}

// WritePrometheus writes every metric, then the Go runtime and process
// metrics, in the Prometheus text exposition format.
func (m *Metrics) WritePrometheus(w io.Writer) {
	m.set.WritePrometheus(w)
	vm.WriteProcessMetrics(w)
}
