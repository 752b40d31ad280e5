package admin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/keygate/keygate/keys"
)

// FuzzURLSafeName checks that any org name becomes lower-case ASCII letters
// and digits joined by single dashes, or the org id when it has none.
func FuzzURLSafeName(f *testing.F) {
	for _, s := range []string{"Acme Inc.", "", "--", "a  b", "Ünïcode", "x9-Y", "\x00\xff", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := urlSafeName(name, "org-id")
		if got == "org-id" {
			return
		}
		if got == "" || strings.HasPrefix(got, "-") || strings.HasSuffix(got, "-") || strings.Contains(got, "--") {
			t.Fatalf("urlSafeName(%q) = %q", name, got)
		}
		for _, c := range got {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				t.Fatalf("urlSafeName(%q) = %q: %q is not URL-safe", name, got, c)
			}
		}
	})
}

// FuzzPropelMetadata checks that a metadata field, object or string, is
// either refused naming metadata or handed on as bytes for keys to check;
// a string is handed on as its content.
func FuzzPropelMetadata(f *testing.F) {
	for _, s := range []string{`{"a": 1}`, `"{\"a\": 1}"`, `""`, `"  "`, `null`, `[1]`, `"x`, `"\u0000"`, `3`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // the body decoder refuses it first
		}
		out, err := propelMetadata(raw)
		if err != nil {
			if e, ok := err.(*keys.Error); !ok || len(e.Fields["metadata"]) == 0 {
				t.Fatalf("propelMetadata(%s): %v, want an error naming metadata", raw, err)
			}
			return
		}
		var str string
		if json.Unmarshal(raw, &str) == nil && string(raw) != "null" && string(out) != str {
			t.Fatalf("propelMetadata(%s) = %q, want the string's content", raw, out)
		}
	})
}
