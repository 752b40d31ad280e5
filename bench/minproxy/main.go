// Command minproxy is the reference keygate's request path is measured
// against: the least a fasthttp reverse proxy can do. It forwards every
// request as it came to one upstream over keep-alive connections (a
// fasthttp.HostClient with its defaults) and the response as it came back:
// no authentication, no header work, no timeouts, bodies buffered.
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

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "loopback address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:3000", "upstream base URL (loopback)")
	flag.Parse()
	if err := run(*listen, *upstream); err != nil {
		fmt.Fprintln(os.Stderr, "minproxy:", err)
		os.Exit(1)
	}
}

func run(listen, upstream string) error {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("upstream %q: want http://host:port", upstream)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("upstream %q: only loopback IP addresses are allowed", upstream)
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen %q: only loopback IP addresses are allowed", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hc := &fasthttp.HostClient{Addr: u.Host}
	s := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
				ctx.Error("upstream unavailable", fasthttp.StatusBadGateway)
			}
		},
		NoDefaultServerHeader: true,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		s.Shutdown() //nolint:errcheck
	}()
	fmt.Println("minproxy listening on", ln.Addr(), "upstream", u.Host)
	return s.Serve(ln)
}
