package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// bufferMaxBytes is the largest response body read into memory before it is
// forwarded. Larger bodies, and bodies of unknown length (chunked, or until
// the upstream closes), stream.
const bufferMaxBytes = 64 << 10

// transport is the upstream round trip, on connections from a HostClient's
// pool (upstream.do calls it). It does what fasthttp's own does, with less
// work per request:
//
//   - A response whose Content-Length is known and at most bufferMaxBytes is
//     read whole into the response, and the connection goes back to the pool
//     at once. fasthttp's StreamResponseBody would make every body a stream:
//     four allocations and a pooled stream object per request, and a copy
//     loop to write it out. Only bodies that need it stream.
//   - The whole exchange, from writing the request to the last byte of the
//     response, is bounded by one deadline, set in one call (fasthttp sets
//     the read and write deadlines apart, each from its own clock read), and
//     re-armed on a connection only when the deadline it has would end the
//     exchange too soon (see deadlineConn).
type transport struct {
	timeout time.Duration // the whole exchange
	streams sync.Pool     // *bodyStream[C], C fasthttp's unexported connection type
	chunks  sync.Pool     // *[]byte, read buffers of chunked request bodies
}

// exchange is one round trip on a pooled connection. The request goes out
// as head (see appendHead) and req's body. retry reports a failure before
// any response came, on a connection that may have been stale.
func (t *transport) exchange(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, head []byte) (retry bool, err error) {
	skipBody := resp.SkipBody || req.Header.IsHead()
	// The head never asks the upstream to close: the client's Connection
	// header is about the client's connection only.
	cc, err := hc.AcquireConn(t.timeout, false)
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	if err := armDeadline(conn, t.timeout); err != nil {
		hc.CloseConn(cc)
		return true, err
	}

	bw := hc.AcquireWriter(conn)
	err = t.writeRequest(bw, req, head)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		return true, timeoutErr(err)
	}

	br := hc.AcquireReader(conn)
	if err = readHeader(resp, br); err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return true, timeoutErr(err)
	}
	status := resp.StatusCode()
	// After a 101 the connection speaks another protocol: never pool it.
	closeConn := resp.ConnectionClose() || status == fasthttp.StatusSwitchingProtocols
	if skipBody || status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified {
		resp.SkipBody = true
		hc.ReleaseReader(br)
		if closeConn {
			hc.CloseConn(cc)
		} else {
			hc.ReleaseConn(cc)
		}
		return false, nil
	}
	cl := resp.Header.ContentLength()
	if cl >= 0 && cl <= bufferMaxBytes {
		resp.StreamBody = false
		if err := resp.ReadBody(br, 0); err != nil {
			hc.ReleaseReader(br)
			hc.CloseConn(cc)
			return false, timeoutErr(err)
		}
		hc.ReleaseReader(br)
		if closeConn {
			hc.CloseConn(cc)
		} else {
			hc.ReleaseConn(cc)
		}
		return false, nil
	}
	return false, streamBody(t, hc, cc, hc.ReleaseConn, hc.CloseConn, br, resp, closeConn)
}

// streamBody makes resp's body a stream of the rest of br. C is fasthttp's
// connection type, which is not exported.
func streamBody[C any](t *transport, hc *fasthttp.HostClient, cc C, rel, cls func(C), br *bufio.Reader, resp *fasthttp.Response, closeConn bool) error {
	cl := resp.Header.ContentLength()

	// Stream: fasthttp's response stream, read by a scratch Response that
	// carries only the framing, so that resp's own header stays as read.
	s, _ := t.streams.Get().(*bodyStream[C])
	if s == nil {
		s = new(bodyStream[C])
	}
	s.pool, s.hc, s.cc, s.rel, s.cls, s.br = &t.streams, hc, cc, rel, cls, br
	s.closeConn = closeConn || cl == -2 // identity: the upstream ends it by closing
	s.eof = false
	s.scratch.Reset()
	s.scratch.StreamBody = true
	s.scratch.Header.SetContentLength(cl)
	if err := s.scratch.ReadBody(br, 0); err != nil {
		s.close(false)
		return err
	}
	s.r = s.scratch.BodyStream()
	if cl == -2 {
		cl = -1 // to the client: chunked
	}
	resp.SetBodyStream(s, cl)
	return nil
}

// writeRequest writes head and then req's body, framed as head says (see
// appendHead): a streamed body of unknown length in chunks, any other as is.
func (t *transport) writeRequest(bw *bufio.Writer, req *fasthttp.Request, head []byte) error {
	if _, err := bw.Write(head); err != nil {
		return err
	}
	if !req.IsBodyStream() {
		_, err := bw.Write(req.Body())
		return err
	}
	r := req.BodyStream()
	if cl := req.Header.ContentLength(); cl >= 0 {
		n, err := io.CopyN(bw, r, int64(cl))
		if err == io.EOF && n < int64(cl) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	bp, _ := t.chunks.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 32<<10)
		bp = &b
	}
	defer t.chunks.Put(bp)
	buf := *bp
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if err := writeChunk(bw, buf[:n]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			_, err = bw.WriteString("0\r\n\r\n")
			return err
		}
		if err != nil {
			return err
		}
	}
}

// writeChunk writes p as one chunk of a chunked body.
func writeChunk(bw *bufio.Writer, p []byte) error {
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16)) //nolint:errcheck // a write error sticks to bw
	bw.WriteString("\r\n")                                               //nolint:errcheck
	bw.Write(p)                                                          //nolint:errcheck
	_, err := bw.WriteString("\r\n")
	return err
}

// readHeader reads the response header, skipping interim (1xx) responses
// other than 101 as fasthttp does.
func readHeader(resp *fasthttp.Response, br *bufio.Reader) error {
	for n := 0; ; n++ {
		if err := resp.Header.Read(br); err != nil {
			return err
		}
		s := resp.Header.StatusCode()
		if s < 100 || s > 199 || s == fasthttp.StatusSwitchingProtocols {
			return nil
		}
		if n >= 8 {
			return errors.New("too many interim responses")
		}
	}
}

// timeoutErr maps a deadline error to fasthttp.ErrTimeout (504).
func timeoutErr(err error) error {
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		return fasthttp.ErrTimeout
	}
	return err
}

// bodyStream is a streamed upstream body. The connection goes back to the
// pool when the server closes the stream after writing it out, or is closed
// if the body was not read to its end.
type bodyStream[C any] struct {
	scratch   fasthttp.Response
	r         io.Reader
	pool      *sync.Pool
	hc        *fasthttp.HostClient
	cc        C
	rel, cls  func(C) // hc.ReleaseConn, hc.CloseConn
	br        *bufio.Reader
	closeConn bool
	eof       bool
}

func (s *bodyStream[C]) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.eof = true
	} else if err != nil {
		err = timeoutErr(err)
	}
	return n, err
}

func (s *bodyStream[C]) Close() error {
	s.close(s.eof)
	return nil
}

func (s *bodyStream[C]) close(reuse bool) {
	s.scratch.CloseBodyStream() //nolint:errcheck // releases fasthttp's stream
	s.scratch.Reset()
	s.hc.ReleaseReader(s.br)
	if s.closeConn || !reuse {
		s.cls(s.cc)
	} else {
		s.rel(s.cc)
	}
	var zero C
	pool := s.pool
	s.r, s.hc, s.cc, s.rel, s.cls, s.br, s.pool = nil, nil, zero, nil, nil, nil, nil
	pool.Put(s)
}

// deadlineConn is an upstream connection that remembers its deadline, so
// that armDeadline sets a new one only when it must.
type deadlineConn struct {
	net.Conn
	deadline time.Time
}

// armDeadline makes sure the exchange about to start on c ends by timeout
// from now at the latest, plus a little slack: a deadline set earlier is kept
// when it falls between now+timeout and now+timeout+slack, so that a busy
// connection re-arms its deadline (a runtime timer update) about once per
// slack instead of on every request. slack is an eighth of the timeout, at
// most a second. Connections of another type (TLS) are armed every time.
func armDeadline(c net.Conn, timeout time.Duration) error {
	now := time.Now()
	want := now.Add(timeout)
	dc, ok := c.(*deadlineConn)
	if !ok {
		return c.SetDeadline(want)
	}
	slack := min(timeout/8, time.Second)
	if !dc.deadline.Before(want) && !dc.deadline.After(want.Add(slack)) {
		return nil
	}
	dc.deadline = want.Add(slack)
	return dc.Conn.SetDeadline(dc.deadline)
}
