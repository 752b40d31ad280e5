package quota

import (
	"time"

	"github.com/keygate/keygate/keys"
)

// Window returns the calendar period of kind p that contains now, in UTC, as
// unix seconds: days start at 00:00, months on the 1st. PeriodTotal has one
// period that never ends: start and end are 0.
func Window(p keys.QuotaPeriod, now time.Time) (start, end int64) {
	t := now.UTC()
	switch p {
	case keys.PeriodDay:
		y, m, d := t.Date()
		s := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		return s.Unix(), s.AddDate(0, 0, 1).Unix()
	case keys.PeriodMonth:
		y, m, _ := t.Date()
		// time.Date normalises month 13 to January of the next year.
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC).Unix()
	}
	return 0, 0
}
