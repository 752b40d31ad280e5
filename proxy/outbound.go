package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// This file builds the request head keygate sends upstream. It is written in
// one pass over the headers as received, straight into a byte buffer: no
// header is deleted from or set on fasthttp's parsed request, which would
// cost a scan of its header list per change and a second serialization when
// fasthttp wrote the request out (together a fifth of keygate's CPU per
// request under load before this).

var (
	httpVersion   = []byte(" HTTP/1.1\r\n")
	hostPrefix    = []byte("Host: ")
	colonSpace    = []byte(": ")
	crlf          = []byte("\r\n")
	contentLength = []byte("Content-Length: ")
	chunkedTE     = []byte("Transfer-Encoding: chunked\r\n")
	hostHeader    = []byte("Host")
	clHeader      = []byte("Content-Length")
)

// appendHead appends to b the request head for upstream u: the request line
// (u's base path in front of the client's request URI, the key parameter
// removed when StripCredentials), Host: u's host, every received header that
// may pass in the order received, the identity headers of e (nil on a public
// path), X-Forwarded-For, -Proto and -Host, and the body's framing
// (Content-Length, or chunked for a body of unknown length). What does not
// pass: identity-prefixed headers, hop-by-hop headers and those Connection
// names, Expect, the forwarding headers keygate owns, the configured drop
// headers, credentials (when StripCredentials) and keygate's own cookies.
func (p *Proxy) appendHead(b []byte, ctx *fasthttp.RequestCtx, rw *rewriter, u *upstream, e *entry) []byte {
	req := &ctx.Request
	h := &req.Header
	uri := upstreamURI(h.RequestURI())

	b = append(b, h.Method()...)
	b = append(b, ' ')
	b = append(b, u.prefix...)
	if p.strip && p.ext.param != nil && hasParam(uri, p.ext.param) {
		b = appendWithoutParam(b, uri, p.ext.param)
	} else {
		b = append(b, uri...)
	}
	b = append(b, httpVersion...)
	b = append(b, hostPrefix...)
	b = append(b, u.host...)
	b = append(b, crlf...)

	extra := p.drop
	if p.strip && authorizationIsKey(h.PeekCanonical(authorization)) {
		extra = p.dropAuth
	}
	rw.collect(h, p.prefix, extra)
	for _, kv := range rw.kept {
		if rw.named(kv.key) {
			continue
		}
		v := kv.value
		if len(p.cookies) > 0 && equalFold(kv.key, "Cookie") && hasCookie(v, p.cookies) {
			n := len(b)
			b = append(b, kv.key...)
			b = append(b, colonSpace...)
			m := len(b)
			if b = appendWithoutCookies(b, v, p.cookies); len(b) == m {
				b = b[:n] // no cookie left: no header
				continue
			}
			b = append(b, crlf...)
			continue
		}
		b = appendHeader(b, kv.key, v)
	}

	if e != nil {
		for i, v := range e.hdr {
			if v != "" {
				b = append(b, p.idNames[i]...)
				b = append(b, colonSpace...)
				b = append(b, v...)
				b = append(b, crlf...)
			}
		}
	}

	// X-Forwarded-For: the client's list, in order, then the client.
	b = append(b, hXForwardedFor...)
	b = append(b, colonSpace...)
	for _, v := range rw.xff {
		b = append(b, v...)
		b = append(b, ", "...)
	}
	b = appendIP(b, ctx.RemoteIP())
	b = append(b, crlf...)
	if ctx.IsTLS() {
		b = appendHeader(b, hXForwardedProto, schemeHTTPS)
	} else {
		b = appendHeader(b, hXForwardedProto, schemeHTTP)
	}
	if host := h.Host(); len(host) > 0 {
		b = appendHeader(b, hXForwardedHost, host)
	}

	// Framing, as fasthttp would write it: a streamed body of unknown
	// length goes chunked; otherwise its length, which a GET or HEAD
	// without a body leaves out.
	switch {
	case req.IsBodyStream() && h.ContentLength() < 0:
		b = append(b, chunkedTE...)
	case req.IsBodyStream():
		b = append(b, contentLength...)
		b = fasthttp.AppendUint(b, h.ContentLength())
		b = append(b, crlf...)
	case len(req.Body()) > 0 || !(h.IsGet() || h.IsHead()):
		b = append(b, contentLength...)
		b = fasthttp.AppendUint(b, len(req.Body()))
		b = append(b, crlf...)
	}
	return append(b, crlf...)
}

// upstreamURI is the request URI as it goes upstream: without a fragment,
// which a request target may not carry (RFC 9112 §3.2) and which an upstream
// could read as part of the path, after the public-path check saw only what
// came before it; and without an empty query's lone "?". fasthttp's client
// did the same before keygate wrote the head itself.
func upstreamURI(uri []byte) []byte {
	if i := bytes.IndexByte(uri, '#'); i >= 0 {
		uri = uri[:i]
	}
	if n := len(uri); n > 1 && uri[n-1] == '?' {
		uri = uri[:n-1]
	}
	if len(uri) == 0 {
		return slash
	}
	return uri
}

var slash = []byte("/")

// appendHeader appends "k: v\r\n". Values come from fasthttp's parser, which
// joins folded lines and refuses control characters, or from keygate.
func appendHeader(b, k, v []byte) []byte {
	b = append(b, k...)
	b = append(b, colonSpace...)
	b = append(b, v...)
	return append(b, crlf...)
}
