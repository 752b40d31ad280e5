package loadgen

import (
	"context"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// serve starts a fasthttp server on 127.0.0.1:0 that answers 200 to
// "Bearer good" and 401 otherwise, and returns its URL.
func serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Request.Header.Peek("Authorization")) != "Bearer good" {
			ctx.SetStatusCode(401)
		}
		ctx.SetBodyString("ok")
	}}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown() })
	return "http://" + ln.Addr().String() + "/"
}

func TestRunGo(t *testing.T) {
	url := serve(t)
	tests := []struct {
		name       string
		tokens     []string
		wantNon2xx bool
	}{
		{"valid keys", []string{"good"}, false},
		{"mixed keys", []string{"good", "bad"}, true},
		{"no key", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := RunGo(context.Background(), Config{URL: url, Tokens: tt.tokens, Conns: 4, Duration: 5 * time.Second, Requests: 2000})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 2000 || res.Errors != 0 {
				t.Fatalf("requests %d errors %d, want 2000 and 0", res.Requests, res.Errors)
			}
			if (res.Non2xx > 0) != tt.wantNon2xx {
				t.Fatalf("non-2xx %d, want some: %v", res.Non2xx, tt.wantNon2xx)
			}
			if res.P50 <= 0 || res.P50 > res.P99 || res.P99 > res.P999 || res.P999 > res.Max {
				t.Fatalf("percentiles out of order: %+v", res)
			}
		})
	}
}

func TestRunGoFixedRate(t *testing.T) {
	res, err := RunGo(context.Background(), Config{URL: serve(t), Tokens: []string{"good"}, Conns: 4, Duration: 1500 * time.Millisecond, Rate: 1000, PerSecond: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Seconds) != 2 || res.Seconds[0] <= 0 || res.Seconds[1] <= 0 {
		t.Fatalf("per-second p99s %v, want two seconds with answers", res.Seconds)
	}
	if worst, at := res.WorstSecond(); at < 0 || worst != res.Seconds[at] || worst < res.Seconds[1-at] {
		t.Fatalf("WorstSecond = %v, %d for %v", worst, at, res.Seconds)
	}
	// 1000/s for 1.5 s is 1,500 requests; the bounds leave room for a slow machine.
	if res.Requests < 750 || res.Requests > 1510 || res.Tool != "go-fixed-rate" {
		t.Fatalf("got %d requests (%s), want about 1500 at a fixed rate", res.Requests, res.Tool)
	}
}

func TestRunGoStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := RunGo(ctx, Config{URL: serve(t), Conns: 2, Duration: time.Hour})
	if err == nil || res.Requests != 0 {
		t.Fatalf("got %d requests, err %v; want none and context.Canceled", res.Requests, err)
	}
}

func TestSequence(t *testing.T) {
	res, err := Sequence(context.Background(), serve(t), []string{"good", "bad", "good"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 3 || res.Non2xx != 1 {
		t.Fatalf("requests %d non-2xx %d, want 3 and 1", res.Requests, res.Non2xx)
	}
}

func TestParseWrk(t *testing.T) {
	out := "Running 1s test @ http://127.0.0.1:1/\n" +
		"KGBENCH requests=1000 duration_us=2000000 connect=1 read=2 write=3 status=7 timeout=4 p50_us=150 p99_us=900 p999_us=2500 max_us=4000\n"
	res, err := parseWrk([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Tool: "wrk", Requests: 1000, Non2xx: 7, Errors: 10, Elapsed: 2 * time.Second,
		P50: 150 * time.Microsecond, P99: 900 * time.Microsecond, P999: 2500 * time.Microsecond, Max: 4 * time.Millisecond}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("got %+v\nwant %+v", res, want)
	}
	if res.RPS() != 500 {
		t.Fatalf("RPS = %v, want 500", res.RPS())
	}
	if _, err := parseWrk([]byte("wrk: connection refused\n")); err == nil || !strings.Contains(err.Error(), "KGBENCH") {
		t.Fatalf("want a missing-line error, got %v", err)
	}
}

func TestRunWrk(t *testing.T) {
	wrk := FindWrk()
	if wrk == "" {
		t.Skip("wrk not installed (apt-get install -y wrk)")
	}
	res, err := RunWrk(context.Background(), wrk, Config{URL: serve(t), Tokens: []string{"good", "bad"}, Conns: 2, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Non2xx == 0 || res.Non2xx == res.Requests {
		t.Fatalf("want both 200s and 401s, got %+v", res)
	}
}
