package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// credSource says where a request's key came from.
type credSource uint8

const (
	credNone          credSource = iota
	credBearer                   // Authorization: Bearer <key>
	credAuthorization            // Authorization: <key>
	credHeader                   // one of the key headers
	credQuery                    // the key query parameter
)

// credential is the key a request presents and where it was found. token
// points into the request or into the caller's scratch buffer.
type credential struct {
	src    credSource
	token  []byte
	header int // index into extractor.headers for credHeader
}

// extractor finds a request's key in SPEC §3 order.
type extractor struct {
	headers [][]byte // canonical key header names
	param   []byte   // query parameter; nil = off
}

var (
	authorization = []byte("Authorization")
	bearer        = []byte("bearer")
)

// extract returns the first key found in h, in order: Authorization: Bearer,
// a raw Authorization value, the key headers, the query parameter of
// requestURI. An Authorization value with another scheme (Basic …) is not a
// key and the search goes on. Empty values count as absent. A percent-
// encoded query value is decoded into scratch[:0].
func (x *extractor) extract(h *fasthttp.RequestHeader, requestURI []byte, scratch []byte) credential {
	// fasthttp trims "Bearer " to "Bearer": a scheme without a key.
	if v := h.PeekCanonical(authorization); len(v) > 0 && !bytes.EqualFold(v, bearer) {
		if len(v) > len(bearer) && (v[len(bearer)] == ' ' || v[len(bearer)] == '\t') && bytes.EqualFold(v[:len(bearer)], bearer) {
			if t := bytes.TrimLeft(v[len(bearer):], " \t"); len(t) > 0 {
				return credential{src: credBearer, token: t}
			}
		} else if bytes.IndexByte(v, ' ') < 0 && bytes.IndexByte(v, '\t') < 0 {
			return credential{src: credAuthorization, token: v}
		}
	}
	for i, name := range x.headers {
		if v := h.PeekCanonical(name); len(v) > 0 {
			return credential{src: credHeader, token: v, header: i}
		}
	}
	if x.param != nil {
		if v, ok := queryParam(requestURI, x.param); ok && len(v) > 0 {
			if bytes.IndexByte(v, '%') >= 0 || bytes.IndexByte(v, '+') >= 0 {
				v = unescapeQuery(scratch[:0], v)
			}
			if len(v) > 0 {
				return credential{src: credQuery, token: v}
			}
		}
	}
	return credential{}
}

// queryOf returns the raw query of a request URI: what follows the first
// '?', up to any '#'.
func queryOf(uri []byte) (query []byte, start int) {
	i := bytes.IndexByte(uri, '?')
	if i < 0 {
		return nil, len(uri)
	}
	q := uri[i+1:]
	if j := bytes.IndexByte(q, '#'); j >= 0 {
		q = q[:j]
	}
	return q, i + 1
}

// queryParam returns the raw value of the first parameter named name in
// uri's query. Names are compared as sent, without decoding.
func queryParam(uri, name []byte) ([]byte, bool) {
	q, _ := queryOf(uri)
	for len(q) > 0 {
		var pair []byte
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, nil
		}
		k, v, _ := bytes.Cut(pair, []byte{'='})
		if bytes.Equal(k, name) {
			return v, true
		}
	}
	return nil, false
}

// appendWithoutParam appends uri to dst with every parameter named name
// (see paramNameIs) removed from its query, leaving every other byte as it was. A query left
// empty loses its '?'.
func appendWithoutParam(dst, uri, name []byte) []byte {
	q, start := queryOf(uri)
	if start == len(uri) && q == nil {
		return append(dst, uri...)
	}
	dst = append(dst, uri[:start-1]...) // up to, not including, '?'
	rest := uri[start+len(q):]          // '#…' or nothing
	first := true
	for {
		var pair []byte
		i := bytes.IndexByte(q, '&')
		if i >= 0 {
			pair = q[:i]
		} else {
			pair = q
		}
		k, _, _ := bytes.Cut(pair, []byte{'='})
		if !paramNameIs(k, name) {
			if first {
				dst = append(dst, '?')
			} else {
				dst = append(dst, '&')
			}
			dst = append(dst, pair...)
			first = false
		}
		if i < 0 {
			break
		}
		q = q[i+1:]
	}
	return append(dst, rest...)
}

// unescapeQuery appends the query value v to dst with '+' as space and %XX
// decoded; a malformed escape is kept as it is.
func unescapeQuery(dst, v []byte) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '+':
			dst = append(dst, ' ')
		case c == '%' && i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]):
			dst = append(dst, unhex(v[i+1])<<4|unhex(v[i+2]))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
