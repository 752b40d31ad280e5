package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Config describes one load run. Every run is bounded by Duration.
type Config struct {
	// URL is the target, such as http://127.0.0.1:8080/. Only http.
	URL string
	// Tokens are the keys: each request carries one picked at random as
	// "Authorization: Bearer <token>". Empty: no Authorization header.
	Tokens []string
	// Conns is the number of connections, each with one request in flight.
	Conns int
	// Duration bounds the run; required.
	Duration time.Duration
	// Requests, when positive, stops the run after that many requests
	// (Go generator only; wrk ignores it).
	Requests uint64
	// Timeout bounds each request; zero means 5 s.
	Timeout time.Duration
	// Threads is wrk's thread count; zero means min(GOMAXPROCS, Conns).
	Threads int
	// Rate, when positive, makes the Go generator open-loop: requests are
	// scheduled at Rate per second in all, spread evenly over the
	// connections, whether or not earlier answers have come back. Latency is
	// then counted from when a request was due, so a stalled server is not
	// hidden by the generator waiting for it (coordinated omission). wrk
	// ignores it.
	Rate float64
	// PerSecond, when set, makes the Go generator also keep each second's
	// latencies apart (counted by when the request was due), for Seconds.
	PerSecond bool
}

// Result is what one run measured.
type Result struct {
	Tool     string        // "go" or "wrk"
	Requests uint64        // responses received, any status
	Non2xx   uint64        // responses with a status outside 200–399
	Errors   uint64        // connect, read, write errors and timeouts
	Elapsed  time.Duration // wall time of the run
	P50      time.Duration
	P99      time.Duration
	P999     time.Duration
	Max      time.Duration
	// Seconds holds the p99 of each second of the run (Go generator with
	// Config.PerSecond only); a second without answers holds 0.
	Seconds []time.Duration
}

// WorstSecond returns the highest per-second p99 and its second (0-based),
// or 0, -1 without per-second figures.
func (r Result) WorstSecond() (time.Duration, int) {
	worst, at := time.Duration(0), -1
	for i, d := range r.Seconds {
		if d > worst {
			worst, at = d, i
		}
	}
	return worst, at
}

// RPS returns responses per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

func (c *Config) check() error {
	if c.Duration <= 0 {
		return errors.New("load: Duration must be positive")
	}
	if c.Conns <= 0 {
		return errors.New("load: Conns must be positive")
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("load: URL %q: want http://host:port/path", c.URL)
	}
	return nil
}

func (c *Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 5 * time.Second
}

// bearers precomputes the Authorization values so the request loop does not
// concatenate strings.
func bearers(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = "Bearer " + t
	}
	return out
}

func newClient(addr string, conns int, timeout time.Duration) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                      addr,
		MaxConns:                  conns,
		ReadTimeout:               timeout,
		WriteTimeout:              timeout,
		MaxConnWaitTimeout:        timeout,
		MaxIdemponentCallAttempts: 1, // a retry would hide an error and skew latency
		DisablePathNormalizing:    true,
		NoDefaultUserAgentHeader:  true,
	}
}

// RunGo drives cfg.URL with cfg.Conns goroutines, each with its own
// connection and one request in flight (no pipelining), until Duration has
// passed, Requests were sent, or ctx is done.
func RunGo(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.check(); err != nil {
		return Result{}, err
	}
	u, _ := url.Parse(cfg.URL)
	hc := newClient(u.Host, cfg.Conns, cfg.timeout())
	defer hc.CloseIdleConnections()
	auth := bearers(cfg.Tokens)

	var budget atomic.Int64
	budget.Store(int64(cfg.Requests))
	limited := cfg.Requests > 0

	type tally struct {
		h               *Histogram
		n, non2xx, errs uint64
	}
	tallies := make([]tally, cfg.Conns)
	var (
		secMu sync.Mutex
		secs  []*Histogram // by the second a request was due
	)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for w := range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := tally{h: new(Histogram)}
			defer func() { tallies[w] = t }()
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)))
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(cfg.URL)
			var interval time.Duration
			due := start
			if cfg.Rate > 0 {
				interval = time.Duration(float64(cfg.Conns) / cfg.Rate * float64(time.Second))
				due = start.Add(interval * time.Duration(w) / time.Duration(cfg.Conns)) // stagger
			}
			now := time.Now()
			for now.Before(deadline) && ctx.Err() == nil {
				if limited && budget.Add(-1) < 0 {
					return
				}
				if len(auth) > 0 {
					req.Header.Set(fasthttp.HeaderAuthorization, auth[rng.IntN(len(auth))])
				}
				t0 := now
				if interval > 0 {
					if now.Before(due) {
						// Early: wait, and count from waking, so that the
						// sleep's own overshoot is not charged to the server.
						if due.After(deadline) {
							return
						}
						time.Sleep(due.Sub(now))
						t0 = time.Now()
					} else {
						t0 = due // late: the wait for our turn is latency too
					}
					due = due.Add(interval)
				}
				err := hc.Do(req, resp)
				now = time.Now()
				if err != nil {
					t.errs++
					time.Sleep(time.Millisecond) // do not spin on a dead target
					now = time.Now()
					continue
				}
				t.h.Record(now.Sub(t0))
				if cfg.PerSecond {
					i := int(t0.Sub(start) / time.Second)
					secMu.Lock()
					for len(secs) <= i {
						secs = append(secs, nil)
					}
					if secs[i] == nil {
						secs[i] = new(Histogram)
					}
					secs[i].Record(now.Sub(t0))
					secMu.Unlock()
				}
				t.n++
				if c := resp.StatusCode(); c < 200 || c > 399 {
					t.non2xx++
				}
			}
		}()
	}
	wg.Wait()
	res := Result{Tool: "go", Elapsed: time.Since(start)}
	if cfg.Rate > 0 {
		res.Tool = "go-fixed-rate"
	}
	h := new(Histogram)
	for _, t := range tallies {
		if t.h != nil {
			h.Merge(t.h)
		}
		res.Requests += t.n
		res.Non2xx += t.non2xx
		res.Errors += t.errs
	}
	res.P50, res.P99, res.P999, res.Max = h.Quantile(0.50), h.Quantile(0.99), h.Quantile(0.999), h.Max()
	for _, sh := range secs {
		var p time.Duration
		if sh != nil {
			p = sh.Quantile(0.99)
		}
		res.Seconds = append(res.Seconds, p)
	}
	return res, ctx.Err()
}

// Sequence sends one request per token, in order, over a single connection,
// and returns the latency distribution. It stops early when ctx is done.
func Sequence(ctx context.Context, target string, tokens []string, timeout time.Duration) (Result, error) {
	cfg := Config{URL: target, Conns: 1, Duration: time.Hour, Timeout: timeout}
	if err := cfg.check(); err != nil {
		return Result{}, err
	}
	u, _ := url.Parse(target)
	hc := newClient(u.Host, 1, cfg.timeout())
	defer hc.CloseIdleConnections()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(target)
	h := new(Histogram)
	res := Result{Tool: "go"}
	start := time.Now()
	for _, tok := range tokens {
		if ctx.Err() != nil {
			break
		}
		req.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+tok)
		t0 := time.Now()
		err := hc.Do(req, resp)
		d := time.Since(t0)
		if err != nil {
			res.Errors++
			continue
		}
		h.Record(d)
		res.Requests++
		if c := resp.StatusCode(); c < 200 || c > 399 {
			res.Non2xx++
		}
	}
	res.Elapsed = time.Since(start)
	res.P50, res.P99, res.P999, res.Max = h.Quantile(0.50), h.Quantile(0.99), h.Quantile(0.999), h.Max()
	return res, ctx.Err()
}
