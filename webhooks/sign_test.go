package webhooks

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestSignStandardWebhooksVector checks Sign against the example of the
// Standard Webhooks reference libraries.
func TestSignStandardWebhooksVector(t *testing.T) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func BenchmarkSign(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"type":"api_key.created","timestamp":"2026-01-01T00:00:00Z","data":{"id":"3f9c0000000000000000000000000000","type":"personal","user_id":"alice"}}`)
	b.ReportAllocs()
	for b.Loop() {
		Sign(key, "msg_2ksd8x1w0q4n7c3r5v9b6t0m1h", 1767225600, body)
	}
}
