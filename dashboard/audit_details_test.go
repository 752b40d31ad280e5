package dashboard

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestAuditDetails(t *testing.T) {
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprintf("k%05d", i)
	}
	big, _ := json.Marshal(map[string]any{"count": 10000, "key_ids": ids})
	tests := []struct {
		raw  string
		want []detailItem
	}{
		{`{}`, nil},
		{``, nil},
		{`{"display_name":"laptop","expires_at":1767225600,"archived":true}`,
			[]detailItem{{"archived", "true"}, {"display_name", "laptop"}, {"expires_at", "1,767,225,600"}}},
		{string(big), []detailItem{{"count", "10,000"}, {"key_ids", "10,000: k00000, k00001, k00002, k00003, k00004 … and 9,995 more"}}},
		{`{"fields":[]}`, []detailItem{{"fields", "none"}}},
		{`{"rate_limit":{"limit":100,"window":"1m"}}`, []detailItem{{"rate_limit", `{"limit":100,"window":"1m"}`}}},
		{`"not an object"`, []detailItem{{"", `"not an object"`}}},
	}
	for _, tt := range tests {
		if got := auditDetails(json.RawMessage(tt.raw)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("auditDetails(%.60s) = %q, want %q", tt.raw, got, tt.want)
		}
	}
	long := auditDetails(json.RawMessage(`{"note":"` + strings.Repeat("é", 300) + `"}`))
	if v := long[0].Value; len(v) > maxDetail+len("…") || !strings.HasSuffix(v, "…") || !json.Valid([]byte(`"`+v+`"`)) {
		t.Errorf("long value not clipped cleanly: %d bytes", len(v))
	}
}
