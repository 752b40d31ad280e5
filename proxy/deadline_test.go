package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

func newCoarsePipe(t *testing.T, timeout time.Duration) (*coarseConn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	slack := min(timeout/8, time.Second)
	return &coarseConn{Conn: a, slack: int64(slack)}, b
}

// A deadline that still lies ahead within the slack is not re-armed.
func TestCoarseDeadlineKept(t *testing.T) {
	c, _ := newCoarsePipe(t, 8*time.Second)
	now := time.Now()
	if err := c.SetReadDeadline(now.Add(8 * time.Second)); err != nil {
		t.Fatal(err)
	}
	armed := c.rd.armed.Load()
	if err := c.SetReadDeadline(now.Add(8*time.Second + 500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if c.rd.armed.Load() != armed {
		t.Error("re-armed a deadline that fires in time")
	}
	if err := c.SetReadDeadline(now.Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if c.rd.armed.Load() != armed {
		t.Error("re-armed a deadline that fires early (Read re-arms it when it fires)")
	}
	if err := c.SetReadDeadline(now.Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if c.rd.armed.Load() == armed {
		t.Error("kept a deadline that fires too late")
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil || c.rd.armed.Load() != 0 {
		t.Errorf("clearing: armed %d, err %v", c.rd.armed.Load(), err)
	}
}

// A timer armed for an earlier deadline than the one last asked for does not
// end a Read that the later deadline allows; the later one still ends it.
func TestCoarseDeadlineEarlyFire(t *testing.T) {
	c, peer := newCoarsePipe(t, 100*time.Millisecond)
	now := time.Now()
	if err := c.SetReadDeadline(now.Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(now.Add(10 * time.Second)); err != nil { // kept: fires early
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond) // after the armed timer, before the deadline
		peer.Write([]byte("x"))            //nolint:errcheck
	}()
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read ended by the early timer: %v", err)
	}

	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v, want a deadline error", err)
	}

	// A timer that fired long ago, kept because it is early: the next Read
	// re-arms it instead of failing.
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	go peer.Write([]byte("y")) //nolint:errcheck
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'y' {
		t.Fatalf("read after a long-passed armed timer: %q, %v", buf, err)
	}
}

func TestCoarseListenerWithoutTimeouts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := newCoarseListener(ln, 0, 0, 0); got != ln {
		t.Error("wrapped a listener whose server sets no deadlines")
	}
	if _, ok := newCoarseListener(ln, 0, time.Second, 0).(*coarseListener); !ok {
		t.Error("did not wrap a listener whose server sets deadlines")
	}
}

// Through the real server: a request that stalls mid-header is cut off by
// the read timeout, and an idle keep-alive connection by the idle timeout,
// although the coarse listener keeps most deadlines it is asked for.
func TestServerTimeoutsStillHold(t *testing.T) {
	s := newStack(t, stackConfig{proxy: Options{ReadTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}})
	_, tok := s.key(keys.CreateKeyInput{})
	closed := func(t *testing.T, c net.Conn) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		_, err := io.ReadAll(c)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the server kept the connection open")
		}
	}
	t.Run("stalled header", func(t *testing.T) {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n") //nolint:errcheck
		closed(t, c)
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for range 3 { // keep-alive requests, then silence
			io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n"+bearerHeader(tok)+"\r\n\r\n") //nolint:errcheck
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body) //nolint:errcheck
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the server kept an idle connection open")
		}
	})
}
