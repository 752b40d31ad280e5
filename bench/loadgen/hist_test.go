package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	// Every bucket's range starts where the previous one ends, and every value
	// maps back into the bucket whose range holds it.
	var next int64
	for i := 0; i < nBuckets; i++ {
		low, width := bucketRange(i)
		if low != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, low, next)
		}
		if i >= exactLen && float64(width)/float64(low) > 1.0/subCount+1e-12 {
			t.Fatalf("bucket %d: width %d too wide for %d", i, width, low)
		}
		for _, v := range []int64{low, low + width/2, low + width - 1} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		next = low + width
		if next <= 0 { // overflowed past the last bucket
			break
		}
	}
	if got := bucketOf(math.MaxInt64); got != nBuckets-1 {
		t.Fatalf("bucketOf(MaxInt64) = %d, want %d", got, nBuckets-1)
	}
}

func TestQuantileAccuracy(t *testing.T) {
	tests := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{"uniform 1µs–100ms", func(r *rand.Rand) time.Duration {
			return time.Microsecond + time.Duration(r.Int64N(int64(100*time.Millisecond)))
		}},
		{"lognormal around 300µs", func(r *rand.Rand) time.Duration {
			return time.Duration(300e3 * math.Exp(0.8*r.NormFloat64()))
		}},
		{"small exact values", func(r *rand.Rand) time.Duration {
			return time.Duration(r.Int64N(200))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			h := new(Histogram)
			vals := make([]time.Duration, 200_000)
			for i := range vals {
				vals[i] = tt.gen(r)
				h.Record(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				want := vals[int(math.Ceil(q*float64(len(vals))))-1]
				got := h.Quantile(q)
				if diff := math.Abs(float64(got-want)) / float64(want); diff > 0.005 && got-want > 1 {
					t.Errorf("q%v = %v, want %v (off by %.2f%%)", q, got, want, 100*diff)
				}
			}
			if h.Max() != vals[len(vals)-1] {
				t.Errorf("Max = %v, want %v", h.Max(), vals[len(vals)-1])
			}
			if h.Count() != uint64(len(vals)) {
				t.Errorf("Count = %d, want %d", h.Count(), len(vals))
			}
		})
	}
}

func TestMerge(t *testing.T) {
	a, b, all := new(Histogram), new(Histogram), new(Histogram)
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Microsecond
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(b)
	if *a != *all {
		t.Fatalf("merged histogram differs: p50 %v vs %v, n %d vs %d", a.Quantile(0.5), all.Quantile(0.5), a.Count(), all.Count())
	}
}

func TestEmpty(t *testing.T) {
	h := new(Histogram)
	if h.Quantile(0.99) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
}
