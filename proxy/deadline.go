package proxy

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// fasthttp's server sets up to three deadlines per keep-alive request (the
// idle timeout while waiting, the read timeout from the first byte, the write
// timeout for the answer); each is a runtime timer update under a lock, about
// 5% of keygate's CPU under load. coarseListener's connections keep the
// deadline they asked for, and touch the runtime's timer only when the one
// armed would fire too late (or had already passed). A timer that fires
// before the deadline last asked for is not an error: Read or Write re-arms
// it to that deadline and carries on. So every timeout still holds, ending at
// most slack after it is due, and a busy connection updates its timers about
// once per slack instead of three times per request.
type coarseListener struct {
	net.Listener
	slack time.Duration // an eighth of the shortest timeout, at most 1s
}

func newCoarseListener(ln net.Listener, timeouts ...time.Duration) net.Listener {
	var least time.Duration
	for _, t := range timeouts {
		if t > 0 && (least == 0 || t < least) {
			least = t
		}
	}
	if least == 0 {
		return ln // no deadlines to spare
	}
	return &coarseListener{Listener: ln, slack: min(least/8, time.Second)}
}

func (l *coarseListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &coarseConn{Conn: c, slack: int64(l.slack)}, nil
}

type coarseConn struct {
	net.Conn
	slack  int64 // ns
	rd, wd deadline
}

// deadline is one direction's deadline: the one asked for and the one
// armed, in Unix ns (0: none).
type deadline struct{ want, armed atomic.Int64 }

func (c *coarseConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *coarseConn) SetReadDeadline(t time.Time) error  { return c.set(&c.rd, t, true) }
func (c *coarseConn) SetWriteDeadline(t time.Time) error { return c.set(&c.wd, t, false) }

func (c *coarseConn) set(d *deadline, t time.Time, read bool) error {
	if t.IsZero() {
		d.want.Store(0)
		d.armed.Store(0)
		return c.arm(t, read)
	}
	w := t.UnixNano()
	d.want.Store(w)
	// Keep the armed timer when it fires no more than slack late. One that
	// fires early, or has fired already, is re-armed by Read or Write when it
	// ends one of them: for a deadline already passed the runtime answers
	// that without a system call.
	if a := d.armed.Load(); a != 0 && a <= w+c.slack {
		return nil
	}
	d.armed.Store(w)
	return c.arm(t, read)
}

func (c *coarseConn) arm(t time.Time, read bool) error {
	if read {
		return c.Conn.SetReadDeadline(t)
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *coarseConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if n > 0 || err == nil || !c.early(&c.rd, err, true) {
			return n, err
		}
	}
}

func (c *coarseConn) Write(p []byte) (int, error) {
	total := 0
	for {
		n, err := c.Conn.Write(p)
		total += n
		if err == nil || !c.early(&c.wd, err, false) {
			return total, err
		}
		p = p[n:]
	}
}

// early reports whether err is the armed timer firing before the deadline
// asked for, and if so arms that deadline.
func (c *coarseConn) early(d *deadline, err error, read bool) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	w := d.want.Load()
	if w == 0 || time.Now().UnixNano() >= w {
		return false
	}
	d.armed.Store(w)
	return c.arm(time.Unix(0, w), read) == nil
}
