// Command echo is the benchmark's upstream: a fasthttp server on a loopback
// address that answers every request with 200 "ok" and copies one request
// header into the X-Echo response header, so the runner can see what the
// proxy in front of it forwarded.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "loopback address to listen on")
	header := flag.String("echo-header", "X-Keygate-Key-Id", "request header copied into the X-Echo response header")
	flag.Parse()
	if err := run(*addr, *header); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

func run(addr, header string) error {
	ln, err := listenLoopback(addr)
	if err != nil {
		return err
	}
	echoHeader := []byte(header)
	s := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if v := ctx.Request.Header.PeekBytes(echoHeader); len(v) > 0 {
				ctx.Response.Header.SetBytesV("X-Echo", v)
			}
			ctx.SetContentType("text/plain")
			ctx.SetBodyString("ok")
		},
		NoDefaultServerHeader:        true,
		DisablePreParseMultipartForm: true,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		s.Shutdown()
	}()
	fmt.Println("echo listening on", ln.Addr())
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
