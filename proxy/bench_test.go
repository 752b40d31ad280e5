package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
	"github.com/keygate/keygate/usage"
)

func BenchmarkTokenCheck(b *testing.B) {
	tokens, err := keys.NewTokens("kg")
	if err != nil {
		b.Fatal(err)
	}
	tok, err := tokens.New(keys.TypePersonal)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if f, _ := tokens.Check(tok); f != keys.FormatKeygate {
				b.Fatal("token rejected")
			}
		}
	})
}

// benchGates returns a gate without limiter, usage or metrics and one with
// all three (and a limit that is never reached), both on real time, and a
// token of a personal key.
func benchGates(b *testing.B, s *stack) (plain, full *Gate, token []byte) {
	b.Helper()
	s.user("alice", &keys.RateLimit{Limit: 1 << 50, Window: time.Minute})
	_, tok := s.key(keys.CreateKeyInput{UserID: "alice", Metadata: []byte(`{"plan":"pro"}`)})
	newGate := func(opts GateOptions) *Gate {
		c, err := NewCache(CacheOptions{Now: time.Now})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		opts.Now = time.Now
		g := NewGate(s.svc, c, opts)
		for i := 0; ; i++ {
			if _, _, err := g.check(context.Background(), []byte(tok), 1); err != nil {
				b.Fatal(err)
			}
			c.rc.Wait()
			h := keys.Hash(tok)
			if _, from, _ := c.lookup(context.Background(), s.svc, &h, time.Now()); from == fromCache {
				return g
			}
			if i == 100 {
				b.Fatal("cache does not keep the key")
			}
		}
	}
	plain = newGate(GateOptions{})
	// A limiter and recorder on the gate's clock, which it hands them.
	lim := limiter.NewMemory(limiter.MemoryOptions{})
	b.Cleanup(func() { lim.Close() })
	full = newGate(GateOptions{Limiter: lim, Recorder: usage.New(s.store, usage.Options{}), Metrics: s.m})
	return plain, full, []byte(tok)
}

func BenchmarkCacheHit(b *testing.B) {
	s := newStack(b, stackConfig{})
	plain, full, tok := benchGates(b, s)
	for _, bb := range []struct {
		name string
		g    *Gate
	}{{"gate", plain}, {"gate+limiter+usage+metrics", full}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, _, err := bb.g.check(ctx, tok, 1); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkHandler runs the whole proxy handler on a cache hit against an
// in-memory fasthttp upstream, reusing one RequestCtx per goroutine as the
// server does. It counts the upstream's own server work too.
func BenchmarkHandler(b *testing.B) {
	s := newStack(b, stackConfig{})
	plain, full, tok := benchGates(b, s)

	ln := fasthttputil.NewInmemoryListener()
	upstream := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"ok":true}`)
		},
		NoDefaultServerHeader: true,
	}
	go upstream.Serve(ln) //nolint:errcheck
	b.Cleanup(func() { upstream.Shutdown() })
	dial := func(string, time.Duration) (net.Conn, error) { return ln.Dial() }

	raw := []byte("GET /v1/things/42?expand=owner HTTP/1.1\r\n" +
		"Host: api.example.com\r\n" +
		"User-Agent: bench\r\n" +
		"Accept: application/json\r\n" +
		"Authorization: Bearer " + string(tok) + "\r\n" +
		"X-Request-Id: 0123456789\r\n\r\n")

	for _, bb := range []struct {
		name string
		g    *Gate
	}{{"gate", plain}, {"gate+limiter+usage+metrics", full}} {
		p, err := New(bb.g, Options{
			Upstreams:        []string{"http://upstream.internal"},
			Dial:             dial,
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
					if bs := ctx.Response.BodyStream(); bs != nil {
						io.Copy(io.Discard, bs) //nolint:errcheck
					}
					ctx.Response.CloseBodyStream() //nolint:errcheck
					ctx.Response.Reset()
				}
			})
		})
	}
}
