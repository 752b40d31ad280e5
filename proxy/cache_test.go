package proxy

import (
	"encoding/json"
	"testing"
)

func TestAppendASCIIJSON(t *testing.T) {
	for in, want := range map[string]string{
		`{}`:                    `{}`,
		`{"a":"plain ascii"}`:   `{"a":"plain ascii"}`,
		`{"name":"Zoë"}`:        `{"name":"Zo\u00eb"}`,
		`{"r":"🚀"}`:             `{"r":"\ud83d\ude80"}`,
		`{"k€y":["日本"]}`:        `{"k\u20acy":["\u65e5\u672c"]}`,
		"{\"del\":\"\x7f\"}":    `{"del":"\u007f"}`,
		"{\"bad\":\"\xff\"}":    `{"bad":"\ufffd"}`,
		`{"esc":"\u00e9\n\"q"}`: `{"esc":"\u00e9\n\"q"}`,
	} {
		got := appendASCIIJSON(nil, []byte(in))
		if string(got) != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
		for _, c := range got {
			if c >= 0x7f || c < ' ' {
				t.Errorf("%q: output byte %#x is not printable ASCII", in, c)
			}
		}
		// Valid input means the same after escaping.
		var a, b any
		if json.Unmarshal([]byte(in), &a) == nil {
			if err := json.Unmarshal(got, &b); err != nil {
				t.Errorf("%q: output %s is not JSON: %v", in, got, err)
			} else if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
				t.Errorf("%q: means %s after escaping, want %s", in, jb, ja)
			}
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.com":           "alice@example.com",
		"a@b.c\r\nX-Keygate-Admin: 1": "a@b.c  X-Keygate-Admin: 1",
		"tab\tkept":                   "tab\tkept",
		"nul\x00del\x7f":              "nul del ",
		"Ünited":                      "Ünited",
	} {
		if got := string(headerValue(in)); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}
