package admin

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/keygate/keygate/keys"
)

// FuzzDecodeObject checks that any body either decodes into a request that
// re-encodes and decodes to the same value, or is refused as bad input
// naming at least one field, never anything else.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"user_id": "alice", "metadata": {"a": [1, 2]}, "expires_at": 1900000000}`, `{"user_id":`, `[]`, `null`, ``,
		`{} {}`, `{"user": 1}`, `{"user_id": 5}`, `{"expires_at": 1.5}`, `{"expires_at": 1e30}`, `{"metadata": "x"}`,
		"{\"display_name\": \"\xff\"}", `{"type": "org", "type": "personal"}`, ` {"expires_in": "1mo"} `, `{"a":1}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req createKeyRequest
		err := decodeObject(b, &req, "body")
		if err != nil {
			var ke *keys.Error
			if !errors.As(err, &ke) || ke.Code != keys.EInvalid || len(ke.Fields) == 0 {
				t.Fatalf("decode %q: %v is not bad input naming a field", b, err)
			}
			return
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", req, err)
		}
		var req2 createKeyRequest
		if err := decodeObject(again, &req2, "body"); err != nil {
			t.Fatalf("decode of re-encoded %s: %v", again, err)
		}
		if string(mustJSON(t, req2)) != string(again) {
			t.Fatalf("round trip changed %s into %s", again, mustJSON(t, req2))
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
