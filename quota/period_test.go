package quota

import (
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

func TestWindow(t *testing.T) {
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name       string
		p          keys.QuotaPeriod
		now        string
		start, end string // RFC 3339; "" = 0
	}{
		{"day middle", keys.PeriodDay, "2026-03-15T13:45:00Z", "2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z"},
		{"day first instant", keys.PeriodDay, "2026-03-15T00:00:00Z", "2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z"},
		{"day last instant", keys.PeriodDay, "2026-03-15T23:59:59.999999999Z", "2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z"},
		{"day in another zone is the UTC day", keys.PeriodDay, "2026-03-15T23:30:00-05:00", "2026-03-16T00:00:00Z", "2026-03-17T00:00:00Z"},
		{"day Dec 31", keys.PeriodDay, "2026-12-31T12:00:00Z", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"leap day", keys.PeriodDay, "2028-02-29T08:00:00Z", "2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z"},
		{"month middle", keys.PeriodMonth, "2026-03-15T13:45:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"},
		{"month 31st", keys.PeriodMonth, "2026-01-31T23:59:59Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"},
		{"month Feb common year", keys.PeriodMonth, "2026-02-28T23:59:59Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		{"month Feb leap year", keys.PeriodMonth, "2028-02-29T23:59:59Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
		{"month Feb 2100 is not leap", keys.PeriodMonth, "2100-02-28T12:00:00Z", "2100-02-01T00:00:00Z", "2100-03-01T00:00:00Z"},
		{"month 30-day", keys.PeriodMonth, "2026-04-30T23:00:00Z", "2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z"},
		{"month Dec to Jan", keys.PeriodMonth, "2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"month Jan 1st", keys.PeriodMonth, "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"},
		{"month in another zone is the UTC month", keys.PeriodMonth, "2026-12-31T20:00:00-08:00", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"},
		{"total", keys.PeriodTotal, "2026-03-15T13:45:00Z", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, end := Window(tc.p, ts(tc.now))
			var ws, we int64
			if tc.start != "" {
				ws, we = ts(tc.start).Unix(), ts(tc.end).Unix()
			}
			if start != ws || end != we {
				t.Errorf("Window(%s, %s) = %s, %s; want %s, %s", tc.p, tc.now,
					time.Unix(start, 0).UTC(), time.Unix(end, 0).UTC(), time.Unix(ws, 0).UTC(), time.Unix(we, 0).UTC())
			}
		})
	}
}
