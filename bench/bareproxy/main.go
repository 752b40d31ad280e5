// Command bareproxy is the floor keygate is measured against: a fasthttp
// reverse proxy that does keygate's forwarding work (hop-by-hop headers,
// credential stripping, X-Forwarded-*) with keep-alive upstream connections,
// and no authentication, rate limiting or usage recording.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "loopback address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:3000", "upstream base URL (loopback)")
	stream := flag.Bool("stream", true, "stream request and response bodies, as keygate does")
	flag.Parse()
	if err := run(*listen, *upstream, *stream); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

// hopByHop are the headers that concern one connection only (RFC 9110 §7.6.1).
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// upstreamTimeout bounds a whole upstream exchange, as keygate's
// proxy.upstream_timeout (default 30 s) does.
const upstreamTimeout = 30 * time.Second

type proxy struct {
	hc *fasthttp.HostClient
}

func (p *proxy) handle(ctx *fasthttp.RequestCtx) {
	req := &ctx.Request
	for _, h := range hopByHop {
		req.Header.Del(h)
	}
	req.Header.Del(fasthttp.HeaderAuthorization) // keygate strips credentials
	req.Header.SetNoDefaultContentType(true)
	var ip [net.IPv4len * 4]byte
	req.Header.SetBytesV(fasthttp.HeaderXForwardedFor, fasthttp.AppendIPv4(ip[:0], ctx.RemoteIP()))
	req.Header.Set("X-Forwarded-Proto", "http")
	req.Header.SetBytesV("X-Forwarded-Host", req.Header.Host())
	ctx.Response.Header.SetNoDefaultContentType(true)
	if err := p.hc.DoDeadline(req, &ctx.Response, time.Now().Add(upstreamTimeout)); err != nil {
		ctx.Response.Reset()
		ctx.SetStatusCode(fasthttp.StatusBadGateway)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"error":"upstream_unavailable","message":"upstream unavailable"}`)
		return
	}
	for _, h := range hopByHop {
		ctx.Response.Header.Del(h)
	}
}

func run(listen, upstream string, stream bool) error {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("upstream %q: want http://host:port", upstream)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("upstream %q: only loopback IP addresses are allowed", upstream)
	}
	ln, err := listenLoopback(listen)
	if err != nil {
		return err
	}
	// The settings of keygate's proxy (proxy/proxy.go) and its defaults
	// (config/config.go), so that the two differ only by what keygate adds.
	p := &proxy{hc: &fasthttp.HostClient{
		Addr:                      u.Host,
		MaxConns:                  1024,
		MaxConnWaitTimeout:        upstreamTimeout,
		MaxIdleConnDuration:       60 * time.Second,
		ReadTimeout:               upstreamTimeout,
		WriteTimeout:              upstreamTimeout,
		MaxIdemponentCallAttempts: 2,
		DisablePathNormalizing:    true,
		NoDefaultUserAgentHeader:  true,
		StreamResponseBody:        stream,
		SecureErrorLogMessage:     true,
	}}
	s := &fasthttp.Server{
		Handler:                      p.handle,
		ReadTimeout:                  30 * time.Second,
		WriteTimeout:                 30 * time.Second,
		IdleTimeout:                  60 * time.Second,
		MaxRequestBodySize:           64 << 10, // with streaming, only what is read ahead
		StreamRequestBody:            stream,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		SecureErrorLogMessage:        true,
		CloseOnShutdown:              true,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		s.Shutdown()
	}()
	fmt.Println("bareproxy listening on", ln.Addr(), "upstream", u.Host)
	return s.Serve(ln)
}

// listenLoopback refuses anything but a loopback address: the benchmark must
// never listen on a public interface.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen %q: only loopback IP addresses are allowed", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}
