package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// upstream is one base URL and its connection pool.
type upstream struct {
	name      string // the URL, for logs
	hc        *fasthttp.HostClient
	host      []byte // Host header
	scheme    []byte
	prefix    []byte // base path, without a trailing slash
	t         *transport
	downUntil atomic.Int64 // unix ns; skipped by pick until then
}

func newUpstream(raw string, opts Options) (*upstream, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%q must be an http:// or https:// URL with a host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%q must not have a query, fragment or user info", raw)
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr = net.JoinHostPort(u.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	dialTimeout, dial := opts.DialTimeout, opts.Dial
	if dial == nil {
		dial = fasthttp.DialTimeout
	}
	up := &upstream{
		name:   raw,
		host:   []byte(u.Host),
		scheme: []byte(u.Scheme),
		prefix: []byte(strings.TrimSuffix(u.EscapedPath(), "/")),
		t:      &transport{timeout: opts.UpstreamTimeout},
	}
	up.hc = &fasthttp.HostClient{
		Addr:      addr,
		IsTLS:     u.Scheme == "https",
		TLSConfig: opts.UpstreamTLS,
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			c, err := dial(addr, min(timeout, dialTimeout))
			if err != nil {
				return nil, err
			}
			return &deadlineConn{Conn: c}, nil
		},
		// Only the pool is fasthttp's: upstream.do and the transport make
		// the exchange, bounded by UpstreamTimeout, and do retries.
		MaxConns:                 opts.MaxConnsPerUpstream,
		MaxConnWaitTimeout:       opts.UpstreamTimeout,
		MaxIdleConnDuration:      opts.IdleTimeout,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		SecureErrorLogMessage:    true,
	}
	return up, nil
}

// do sends req to u, its head being head (see appendHead), and reads the
// answer into resp. Like fasthttp's HostClient.Do with keygate's retry rule:
// one retry, only of a safe request without a streamed body whose reused
// connection turned out stale, never after a timeout.
func (u *upstream) do(req *fasthttp.Request, resp *fasthttp.Response, head []byte) error {
	for attempt := 1; ; attempt++ {
		retry, err := u.t.exchange(u.hc, req, resp, head)
		if err == nil || !retry || attempt >= 2 || req.IsBodyStream() || errors.Is(err, fasthttp.ErrTimeout) {
			return err
		}
		if h := &req.Header; !(h.IsGet() || h.IsHead() || h.IsOptions()) {
			return err
		}
		skip := resp.SkipBody
		resp.Reset()
		resp.SkipBody = skip
		resp.Header.SetNoDefaultContentType(true)
	}
}

// markDown keeps pick away from u for a second after a failure.
func (u *upstream) markDown(now time.Time) {
	u.downUntil.Store(now.Add(time.Second).UnixNano())
}

// pick returns the next upstream in round robin, skipping upstreams that
// recently failed unless all did.
func (p *Proxy) pick() *upstream {
	if len(p.ups) == 1 {
		return p.ups[0]
	}
	n := uint64(len(p.ups))
	start := p.next.Add(1)
	now := p.now().UnixNano()
	for i := uint64(0); i < n; i++ {
		if u := p.ups[(start+i)%n]; u.downUntil.Load() <= now {
			return u
		}
	}
	return p.ups[start%n]
}
