package admin

import (
	"errors"
	"testing"

	"github.com/keygate/keygate/keys"
)

// FuzzQuotaOf checks that any quota field is absent, null, a valid quota
// (limit ≥ 0, a known period) or refused as bad input naming quota.
func FuzzQuotaOf(f *testing.F) {
	for _, s := range []string{
		`null`, `{"limit": 10000, "period": "month"}`, `{"limit": 0}`, `{"limit": -1, "period": "day"}`, `{"period": "day"}`,
		`{"limit": 5, "period": "week"}`, `{"limit": 1.5}`, `{"limit": "5"}`, `{"limit": 5, "extra": 1}`, `[]`, `"x"`, `{`, `{"limit": 1e30}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, clear, err := quotaOf(b)
		switch {
		case err != nil:
			var ke *keys.Error
			if !errors.As(err, &ke) || ke.Code != keys.EInvalid || len(ke.Fields) == 0 {
				t.Fatalf("quotaOf(%q): %v is not bad input naming a field", b, err)
			}
		case clear:
			if q != nil {
				t.Fatalf("quotaOf(%q): both a quota and clear", b)
			}
		case q == nil:
			t.Fatalf("quotaOf(%q): no quota, no clear, no error", b)
		case q.Limit < 0 || q.Period < keys.PeriodDay || q.Period > keys.PeriodTotal:
			t.Fatalf("quotaOf(%q) = %+v: out of range", b, q)
		}
	})
}
