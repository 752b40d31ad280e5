package proxy

import (
	"bytes"
	"strings"
	"testing"
)

// foldName is the reference folding: ASCII lower case, '_' and '.' as '-'.
func foldName(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == '_' || c == '.':
			b[i] = '-'
		}
	}
	return string(b)
}

// FuzzHeaderFold checks hasPrefixFold and equalFoldBytes against the
// reference folding on arbitrary names.
func FuzzHeaderFold(f *testing.F) {
	for _, s := range []string{"X-Keygate-User-Id", "X.Keygate.User.Id", "x_keygate-", "X-Keygat", "X-Forwarded-Port", "Forwarded", ""} {
		f.Add(s, "X-Keygate-")
	}
	f.Fuzz(func(t *testing.T, name, prefix string) {
		want := strings.HasPrefix(foldName(name), foldName(prefix))
		if got := hasPrefixFold([]byte(name), []byte(prefix)); got != want {
			t.Errorf("hasPrefixFold(%q, %q) = %v, want %v", name, prefix, got, want)
		}
		if got, want := equalFoldBytes([]byte(name), []byte(prefix)), foldName(name) == foldName(prefix); got != want {
			t.Errorf("equalFoldBytes(%q, %q) = %v, want %v", name, prefix, got, want)
		}
		wantFwd := strings.HasPrefix(foldName(name), "x-forwarded-") || foldName(name) == "forwarded" || foldName(name) == "x-real-ip"
		if got := isForwarding([]byte(name)); got != wantFwd {
			t.Errorf("isForwarding(%q) = %v, want %v", name, got, wantFwd)
		}
	})
}

// FuzzPublicPath checks that a path the matcher calls public holds nothing
// an upstream could resolve elsewhere: no ';' and no dot-only segment, raw or
// percent-decoded (once or twice), no backslash, no empty segment.
func FuzzPublicPath(f *testing.F) {
	for _, s := range []string{"/docs/a", "/docs/..;/admin", "/docs/..%3B/admin", "/docs/.;/admin", "/docs/%2e%2e/x", "/docs//x", "/docs/a%252e", "/health"} {
		f.Add(s)
	}
	m, err := newPathMatcher([]string{"/docs/**", "/health", "/v*/status/**"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var buf []byte
		if !m.match([]byte(raw), &buf) {
			return
		}
		dec := string(buf)
		for _, p := range []string{raw, dec} {
			if strings.ContainsAny(p, ";\\") || strings.Contains(p, "//") {
				t.Fatalf("%q (decoded %q) is public", raw, dec)
			}
			for _, seg := range strings.Split(p, "/")[1:] {
				if seg != "" && strings.Trim(seg, ".") == "" {
					t.Fatalf("%q (decoded %q) has dot segment %q and is public", raw, dec, seg)
				}
			}
		}
		if strings.Contains(dec, "%") {
			t.Fatalf("%q decodes to %q, which holds a '%%' an upstream may decode again", raw, dec)
		}
	})
}

// FuzzCookieStrip checks that removing keygate's cookies removes exactly
// them: the result holds no such cookie and every other segment, in order.
func FuzzCookieStrip(f *testing.F) {
	for _, s := range []string{"a=1; keygate_admin=x; b=2", "keygate_admin=x", " keygate_portal = y ;c", "a;;b", ""} {
		f.Add(s)
	}
	names := [][]byte{[]byte("keygate_admin"), []byte("keygate_portal")}
	f.Fuzz(func(t *testing.T, v string) {
		out := appendWithoutCookies(nil, []byte(v), names)
		if hasCookie(out, names) {
			t.Fatalf("%q → %q still holds a keygate cookie", v, out)
		}
		var kept []string
		for _, seg := range strings.Split(v, ";") {
			if !isNamed(cookieName([]byte(seg)), names) {
				kept = append(kept, seg)
			}
		}
		want := strings.Join(kept, ";")
		want = strings.TrimLeft(want, " \t")
		if !bytes.Equal(out, []byte(want)) {
			t.Fatalf("%q → %q, want %q", v, out, want)
		}
	})
}
