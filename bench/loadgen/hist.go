// Package loadgen drives HTTP load at a target and measures latency: a Go
// generator on fasthttp, a wrk driver, and the histogram both report into.
package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Log-linear buckets, as in HdrHistogram: values below 2^(subBits+1) ns are
// exact; above, each power of two is split into 2^subBits equal buckets, so a
// bucket's width is at most 1/128 of its value and its midpoint is within 0.4%.
const (
	subBits  = 7
	subCount = 1 << subBits       // buckets per power of two
	exactLen = 2 * subCount       // values [0, 256) have a bucket each
	maxShift = 63 - (subBits + 1) // largest shift of a positive int64
	nBuckets = exactLen + maxShift*subCount
)

// Histogram counts durations. Quantiles are accurate to within 0.4% of the
// value (exact below 256 ns). The zero value is an empty histogram ready to
// use; it is about 60 KB, so allocate it rather than copy it. Not safe for
// concurrent use: give each goroutine its own and Merge them.
type Histogram struct {
	counts [nBuckets]uint64
	n      uint64
	sum    float64 // ns
	max    int64   // ns
}

func bucketOf(v int64) int {
	if v < exactLen {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - (subBits + 1) // ≥ 1 here
	return exactLen + (shift-1)*subCount + int(uint64(v)>>uint(shift)) - subCount
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (low, width int64) {
	if i < exactLen {
		return int64(i), 1
	}
	shift := (i-exactLen)/subCount + 1
	m := int64((i-exactLen)%subCount + subCount)
	return m << uint(shift), 1 << uint(shift)
}

// Record adds one observation. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	if v > h.max {
		h.max = v
	}
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest observation, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the average observation, 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value at or below which a fraction q (0 < q ≤ 1) of
// the observations fall: the smallest bucket holding the ⌈q·n⌉-th one,
// reported at its midpoint (never above Max). 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.n {
		rank = h.n
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		low, width := bucketRange(i)
		v := low + width/2
		if v > h.max {
			v = h.max
		}
		return time.Duration(v)
	}
	return time.Duration(h.max)
}
