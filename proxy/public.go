package proxy

import (
	"bytes"
	"fmt"
	"path"
	"strings"
	"unsafe"
)

// pathMatcher matches request paths against the public path globs.
type pathMatcher struct {
	globs    []string // path.Match patterns
	prefixes []string // "/docs" for "/docs/**"
}

func newPathMatcher(patterns []string) (pathMatcher, error) {
	var m pathMatcher
	for _, pat := range patterns {
		if !strings.HasPrefix(pat, "/") {
			return m, fmt.Errorf("%q must start with /", pat)
		}
		if base, ok := strings.CutSuffix(pat, "/**"); ok {
			if _, err := path.Match(base, ""); err != nil {
				return m, fmt.Errorf("%q: %w", pat, err)
			}
			m.prefixes = append(m.prefixes, base)
			continue
		}
		if _, err := path.Match(pat, ""); err != nil {
			return m, fmt.Errorf("%q: %w", pat, err)
		}
		m.globs = append(m.globs, pat)
	}
	return m, nil
}

// match reports whether the raw path is public. scratch receives the
// decoded path.
func (m *pathMatcher) match(raw []byte, scratch *[]byte) bool {
	if len(m.globs) == 0 && len(m.prefixes) == 0 {
		return false
	}
	p, ok := cleanPath(raw, (*scratch)[:0])
	*scratch = p
	if !ok {
		return false
	}
	s := unsafe.String(unsafe.SliceData(p), len(p))
	for _, g := range m.globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	for _, base := range m.prefixes {
		if matchPrefixGlob(base, s) {
			return true
		}
	}
	return false
}

// matchPrefixGlob reports whether some leading segments of s match the glob
// base as a whole.
func matchPrefixGlob(base, s string) bool {
	n := strings.Count(base, "/")
	i, seen := 0, 0
	for ; i < len(s); i++ {
		if s[i] == '/' {
			seen++
			if seen > n {
				break
			}
		}
	}
	if seen < n {
		return false
	}
	ok, _ := path.Match(base, s[:i])
	return ok
}

// cleanPath percent-decodes a raw path into dst, refusing any path that an
// upstream might resolve to another one: not starting with '/', holding
// "//", a backslash, a segment of dots only (".", "..", "..."), a ';' (path
// parameters: Tomcat-style servers resolve "/docs/..;/admin" to "/admin"), an
// encoded '/', '\', '.', ';', '%' or control character.
func cleanPath(raw, dst []byte) ([]byte, bool) {
	if len(raw) == 0 || raw[0] != '/' {
		return dst, false
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\\' || c == ';' || c < ' ' || c == 0x7f:
			return dst, false
		case c == '/':
			if i+1 < len(raw) && raw[i+1] == '/' {
				return dst, false
			}
			seg := raw[i+1:]
			if j := bytes.IndexByte(seg, '/'); j >= 0 {
				seg = seg[:j]
			}
			if dotsOnly(seg) {
				return dst, false
			}
			dst = append(dst, c)
		case c == '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return dst, false
			}
			d := unhex(raw[i+1])<<4 | unhex(raw[i+2])
			if d == '/' || d == '\\' || d == '.' || d == ';' || d < ' ' || d == 0x7f || d == '%' {
				return dst, false
			}
			dst = append(dst, d)
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst, true
}

// dotsOnly reports whether seg is one or more '.'.
func dotsOnly(seg []byte) bool {
	if len(seg) == 0 {
		return false
	}
	for _, c := range seg {
		if c != '.' {
			return false
		}
	}
	return true
}
