package keys

// Usage bucket sizes in seconds. Buckets are aligned to unix time, so to UTC.
const (
	minuteSeconds = 60
	hourSeconds   = 3600
	daySeconds    = 86400
)

// UsageTop is one row of a top-traffic list: a key, user or org id and its
// traffic.
type UsageTop struct {
	ID          string `json:"id"`
	Allowed     int64  `json:"allowed"`
	RateLimited int64  `json:"rate_limited"`
}

// UsageStep returns the bucket size in seconds of a usage interval name
// ("minute", "hour" or "day").
func UsageStep(interval string) (int64, bool) {
	switch interval {
	case "minute":
		return minuteSeconds, true
	case "hour":
		return hourSeconds, true
	case "day":
		return daySeconds, true
	}
	return 0, false
}

// AlignDown returns the start of the step-sized bucket holding t.
func AlignDown(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}

// FillUsage returns points, as returned by UsageStore.Usage for q, with a
// zero point for every empty bucket of q's range, so that a chart has one
// point per interval. points must be sorted by T. An unknown interval
// returns points unchanged.
func FillUsage(points []UsagePoint, q UsageQuery) []UsagePoint {
	step, ok := UsageStep(q.Interval)
	if !ok {
		return points
	}
	from := AlignDown(q.From, step)
	if q.To <= from {
		return points
	}
	out := make([]UsagePoint, 0, (q.To-from+step-1)/step)
	i := 0
	for t := from; t < q.To; t += step {
		for i < len(points) && points[i].T < t {
			i++ // outside the range or not aligned
		}
		if i < len(points) && points[i].T == t {
			out = append(out, points[i])
			i++
			continue
		}
		out = append(out, UsagePoint{T: t})
	}
	return out
}
