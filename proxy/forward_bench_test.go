package proxy

import (
	"bufio"
	"bytes"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkForwardAuth runs the forward-auth handler on a cache hit, as
// nginx's auth_request sends it, reusing one RequestCtx per goroutine as the
// server does. Compare with BenchmarkHandler: the same decision without the
// upstream exchange.
func BenchmarkForwardAuth(b *testing.B) {
	s := newStack(b, stackConfig{})
	plain, full, tok := benchGates(b, s)
	raw := []byte("GET /_keygate/auth HTTP/1.1\r\n" +
		"Host: keygate\r\n" +
		"User-Agent: bench\r\n" +
		"Accept: application/json\r\n" +
		"Authorization: Bearer " + string(tok) + "\r\n" +
		"X-Forwarded-Method: GET\r\n" +
		"X-Forwarded-Uri: /v1/things/42?expand=owner\r\n" +
		"X-Original-Uri: /v1/things/42?expand=owner\r\n" +
		"X-Forwarded-Host: api.example.com\r\n" +
		"X-Forwarded-Proto: https\r\n\r\n")

	for _, bb := range []struct {
		name string
		g    *Gate
	}{{"gate", plain}, {"gate+limiter+usage+metrics", full}} {
		p, err := New(bb.g, Options{
			ForwardAuth:      ForwardAuthOptions{Path: "/_keygate/auth"},
			PublicPaths:      []string{"/health", "/docs/**"},
			StripCredentials: true,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}, nil)
				rd := bytes.NewReader(raw)
				br := bufio.NewReader(rd)
				for pb.Next() {
					ctx.Request.Reset()
					rd.Reset(raw)
					br.Reset(rd)
					if err := ctx.Request.Read(br); err != nil {
						b.Fatal(err)
					}
					p.Handler(&ctx)
					if ctx.Response.StatusCode() != 200 {
						b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
					}
					ctx.Response.Reset()
				}
			})
		})
	}
}
