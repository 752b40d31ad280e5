package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// rawUpstream answers every request on a connection with the next of its
// canned responses (written by hand, so tests control the framing) and
// counts the connections it accepted.
type rawUpstream struct {
	ln    net.Listener
	conns atomic.Int64
	// answer writes the response to the i-th request (0-based, counted over
	// all connections); it returns false to close the connection after it.
	answer func(i int64, w io.Writer) bool
	n      atomic.Int64
}

func newRawUpstream(t *testing.T, answer func(i int64, w io.Writer) bool) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln, answer: answer}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			go u.serve(c)
		}
	}()
	return u
}

func (u *rawUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body) //nolint:errcheck
		if !u.answer(u.n.Add(1)-1, c) {
			return
		}
	}
}

func TestTransportFraming(t *testing.T) {
	big := strings.Repeat("b", bufferMaxBytes+1)
	tests := []struct {
		name     string
		response string // what the upstream writes
		keep     bool   // the upstream keeps the connection
		body     string // what the client must get
		reuse    bool   // the second request must reuse the first connection
	}{
		{"small, buffered", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", true, "hello", true},
		{"empty", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, "", true},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", true, "", true},
		{"large, streamed", "HTTP/1.1 200 OK\r\nContent-Length: " + itoa(len(big)) + "\r\n\r\n" + big, true, big, true},
		{"chunked, streamed", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", true, "hello world", true},
		{"chunked with a trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n", true, "ok", true},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nto the end", false, "to the end", false},
		{"connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false, "ok", false},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", true, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newRawUpstream(t, func(_ int64, w io.Writer) bool {
				io.WriteString(w, tt.response) //nolint:errcheck
				return tt.keep
			})
			s := newStack(t, stackConfig{noEcho: true, upstream: func(string) []string { return []string{"http://" + up.ln.Addr().String()} }})
			_, tok := s.key(keys.CreateKeyInput{})
			for i := range 2 {
				r := s.get(t, "/x", bearerHeader(tok))
				if r.status != 200 && r.status != 204 && r.status != 101 || string(r.body) != tt.body {
					t.Fatalf("request %d: status %d, body %.40q (%d bytes); want %.40q", i, r.status, r.body, len(r.body), tt.body)
				}
				// A streamed body's connection goes back to the pool when
				// the server closes the stream, just after the client has
				// read the last byte: give it that moment, or the second
				// request may find the pool empty and dial.
				time.Sleep(50 * time.Millisecond)
			}
			want := int64(2)
			if tt.reuse {
				want = 1
			}
			if got := up.conns.Load(); got != want {
				t.Errorf("upstream connections = %d, want %d", got, want)
			}
		})
	}
}

// A large body reaches the client while the upstream is still sending it.
func TestTransportStreamsLargeBodies(t *testing.T) {
	release := make(chan struct{})
	first := strings.Repeat("a", bufferMaxBytes)
	up := newRawUpstream(t, func(_ int64, w io.Writer) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: "+itoa(2*len(first))+"\r\n\r\n"+first) //nolint:errcheck
		<-release
		io.WriteString(w, first) //nolint:errcheck
		return true
	})
	s := newStack(t, stackConfig{noEcho: true, upstream: func(string) []string { return []string{"http://" + up.ln.Addr().String()} }})
	_, tok := s.key(keys.CreateKeyInput{})
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, request("GET", "/x", []string{bearerHeader(tok)}, "")) //nolint:errcheck
	c.SetReadDeadline(time.Now().Add(10 * time.Second))                      //nolint:errcheck
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(first))
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatalf("the first half did not come before the upstream sent the rest: %v", err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != len(first) {
		t.Fatalf("rest: %d bytes, %v", len(rest), err)
	}
}

// A body cut short by the upstream is not taken for a whole one, and its
// connection is not reused.
func TestTransportTruncatedStream(t *testing.T) {
	big := strings.Repeat("b", bufferMaxBytes+10)
	up := newRawUpstream(t, func(i int64, w io.Writer) bool {
		if i == 0 {
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: "+itoa(len(big)+100)+"\r\n\r\n"+big) //nolint:errcheck
			return false
		}
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") //nolint:errcheck
		return true
	})
	s := newStack(t, stackConfig{noEcho: true, upstream: func(string) []string { return []string{"http://" + up.ln.Addr().String()} }})
	_, tok := s.key(keys.CreateKeyInput{})
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, request("GET", "/x", []string{bearerHeader(tok)}, "")) //nolint:errcheck
	c.SetReadDeadline(time.Now().Add(10 * time.Second))                      //nolint:errcheck
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err == nil && len(b) == len(big)+100 {
		t.Fatal("a truncated body arrived whole")
	}
	if r := s.get(t, "/x", bearerHeader(tok)); r.status != 200 || !bytes.Equal(r.body, []byte("ok")) {
		t.Fatalf("next request: status %d, body %q", r.status, r.body)
	}
}

func TestArmDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	dc := &deadlineConn{Conn: a}
	if err := armDeadline(dc, 8*time.Second); err != nil {
		t.Fatal(err)
	}
	first := dc.deadline
	if d := time.Until(first); d < 8*time.Second || d > 9*time.Second {
		t.Fatalf("deadline in %v, want 8s plus at most 1s of slack", d)
	}
	if err := armDeadline(dc, 8*time.Second); err != nil {
		t.Fatal(err)
	}
	if dc.deadline != first {
		t.Error("a deadline still within the slack was re-armed")
	}
	dc.deadline = time.Now().Add(time.Second) // too soon for the next exchange
	if err := armDeadline(dc, 8*time.Second); err != nil {
		t.Fatal(err)
	}
	if time.Until(dc.deadline) < 8*time.Second {
		t.Error("a deadline too soon was kept")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
