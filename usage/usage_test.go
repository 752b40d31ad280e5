package usage

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/sqlite"
)

type tally struct {
	allowed, rateLimited int64
}

// fakeSink keeps what it is given, summed per (key, minute), and fails
// while fail is set.
type fakeSink struct {
	mu      sync.Mutex
	fail    error
	calls   int
	batches [][]keys.UsageCount
	got     map[bucket]tally
}

func newFakeSink() *fakeSink { return &fakeSink{got: map[bucket]tally{}} }

func (f *fakeSink) AddUsage(_ context.Context, counts []keys.UsageCount) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return f.fail
	}
	f.batches = append(f.batches, append([]keys.UsageCount(nil), counts...))
	for _, c := range counts {
		b := bucket{c.KeyID, c.Minute}
		t := f.got[b]
		t.allowed += c.Allowed
		t.rateLimited += c.RateLimited
		f.got[b] = t
	}
	return nil
}

func (f *fakeSink) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

func (f *fakeSink) snapshot() (map[bucket]tally, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[bucket]tally, len(f.got))
	for k, v := range f.got {
		m[k] = v
	}
	return m, f.calls
}

func sumTallies(m map[bucket]tally) (allowed, limited int64) {
	for _, t := range m {
		allowed += t.allowed
		limited += t.rateLimited
	}
	return
}

var t0 = time.Unix(1704067200, 0) // a minute start

// recordMany records, from workers goroutines, perWorker requests spread
// over nkeys keys and 3 minutes, every 7th one rate limited, and returns
// what it recorded.
func recordMany(r *Recorder, workers, perWorker, nkeys int) map[bucket]tally {
	var wg sync.WaitGroup
	want := make([]map[bucket]tally, workers)
	for w := range workers {
		want[w] = map[bucket]tally{}
		wg.Go(func() {
			for i := range perWorker {
				id := "key" + strconv.Itoa((w*31+i)%nkeys)
				now := t0.Add(time.Duration(i%180) * time.Second)
				allowed := i%7 != 0
				r.record(id, allowed, now)
				b := bucket{id, now.Unix() - now.Unix()%60}
				t := want[w][b]
				if allowed {
					t.allowed++
				} else {
					t.rateLimited++
				}
				want[w][b] = t
			}
		})
	}
	wg.Wait()
	all := map[bucket]tally{}
	for _, m := range want {
		for b, t := range m {
			a := all[b]
			a.allowed += t.allowed
			a.rateLimited += t.rateLimited
			all[b] = a
		}
	}
	return all
}

func equalTallies(t *testing.T, got, want map[bucket]tally) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d (key, minute) buckets, want %d", len(got), len(want))
	}
	for b, w := range want {
		if g := got[b]; g != w {
			t.Errorf("%s@%d: got %+v, want %+v", b.keyID, b.minute, g, w)
		}
	}
}

func TestRecordExactWithConcurrentFlushes(t *testing.T) {
	sink := newFakeSink()
	r := New(sink, Options{})
	stop := make(chan struct{})
	var flusher sync.WaitGroup
	flusher.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := r.Flush(context.Background()); err != nil {
				t.Error(err)
			}
		}
	})
	const workers, perWorker = 8, 20000
	want := recordMany(r, workers, perWorker, 500)
	close(stop)
	flusher.Wait()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := sink.snapshot()
	a, l := sumTallies(got)
	if a+l != workers*perWorker {
		t.Fatalf("store total = %d, want %d", a+l, workers*perWorker)
	}
	equalTallies(t, got, want)
}

func TestFlushOneBatchPerFlush(t *testing.T) {
	sink := newFakeSink()
	r := New(sink, Options{})
	r.record("a", true, t0)
	r.record("a", true, t0.Add(59*time.Second))
	r.record("a", false, t0.Add(60*time.Second))
	r.record("b", true, t0)
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(context.Background()); err != nil { // nothing pending: no call
		t.Fatal(err)
	}
	got, calls := sink.snapshot()
	if calls != 1 || len(sink.batches[0]) != 3 {
		t.Fatalf("calls = %d, batches = %+v; want one batch of 3 counts", calls, sink.batches)
	}
	want := map[bucket]tally{
		{"a", t0.Unix()}:      {allowed: 2},
		{"a", t0.Unix() + 60}: {rateLimited: 1},
		{"b", t0.Unix()}:      {allowed: 1},
	}
	equalTallies(t, got, want)
}

func TestFailingSinkKeepsCounts(t *testing.T) {
	sink := newFakeSink()
	type flush struct {
		n   int
		err error
	}
	var flushes []flush
	r := New(sink, Options{OnFlush: func(_ time.Duration, n int, err error) { flushes = append(flushes, flush{n, err}) }})
	boom := errors.New("store down")
	sink.setFail(boom)

	r.record("a", true, t0)
	r.record("b", false, t0)
	if err := r.Flush(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Flush = %v, want %v", err, boom)
	}
	// More traffic for the same and new buckets while the store is down.
	r.record("a", true, t0.Add(time.Second))
	r.record("c", true, t0.Add(time.Minute))
	if err := r.Flush(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Flush = %v, want %v", err, boom)
	}
	if got, _ := sink.snapshot(); len(got) != 0 {
		t.Fatalf("failing sink stored %+v", got)
	}

	sink.setFail(nil)
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, calls := sink.snapshot()
	want := map[bucket]tally{
		{"a", t0.Unix()}:      {allowed: 2},
		{"b", t0.Unix()}:      {rateLimited: 1},
		{"c", t0.Unix() + 60}: {allowed: 1},
	}
	equalTallies(t, got, want)
	if calls != 3 {
		t.Fatalf("sink calls = %d, want 3", calls)
	}
	if len(flushes) != 3 || flushes[0] != (flush{2, boom}) || flushes[1] != (flush{3, boom}) || flushes[2] != (flush{3, nil}) {
		t.Fatalf("OnFlush calls = %+v", flushes)
	}
	// Nothing left, nothing written twice.
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got2, _ := sink.snapshot(); fmt.Sprint(got2) != fmt.Sprint(got) {
		t.Fatalf("second flush changed the store: %+v", got2)
	}
}

func TestRecordUsesNow(t *testing.T) {
	sink := newFakeSink()
	now := t0.Add(90 * time.Second)
	r := New(sink, Options{Now: func() time.Time { return now }})
	r.Record("k", true)
	r.Record("k", false)
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := sink.snapshot()
	equalTallies(t, got, map[bucket]tally{{"k", t0.Unix() + 60}: {allowed: 1, rateLimited: 1}})
}

func TestStartClose(t *testing.T) {
	sink := newFakeSink()
	r := New(sink, Options{FlushInterval: time.Millisecond})
	r.Start()
	r.Start() // no second flusher
	r.record("a", true, t0)
	// Wait for the background flusher to write it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got, _ := sink.snapshot(); got[bucket{"a", t0.Unix()}].allowed == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background flush never wrote the count")
		}
		time.Sleep(time.Millisecond)
	}
	// Stop the flusher with the store down: Close's own flush fails and
	// says so; the counts are still pending.
	sink.setFail(errors.New("down"))
	r.record("b", true, t0)
	if err := r.Close(context.Background()); err == nil {
		t.Fatal("Close with a failing sink returned nil")
	}
	sink.setFail(nil)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := sink.snapshot()
	equalTallies(t, got, map[bucket]tally{{"a", t0.Unix()}: {allowed: 1}, {"b", t0.Unix()}: {allowed: 1}})
	r.Start() // after Close: does nothing
}

func TestCloseWithoutStart(t *testing.T) {
	sink := newFakeSink()
	r := New(sink, Options{})
	r.record("a", false, t0)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := sink.snapshot()
	equalTallies(t, got, map[bucket]tally{{"a", t0.Unix()}: {rateLimited: 1}})
}

func TestRecordDoesNotAllocate(t *testing.T) {
	r := New(newFakeSink(), Options{Now: func() time.Time { return t0 }})
	id := "0123456789abcdef0123456789abcdef"
	r.Record(id, true)
	if n := testing.AllocsPerRun(1000, func() { r.Record(id, true) }); n != 0 {
		t.Fatalf("Record allocates %.1f times for a key seen this minute", n)
	}
	// After a flush the key goes into the reused, cleared map.
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.Flush(context.Background()) // swap back to the first map, now cleared
	if n := testing.AllocsPerRun(1000, func() { r.Record(id, false) }); n != 0 {
		t.Fatalf("Record allocates %.1f times after flushes", n)
	}
}

// TestRecordHashed: counts taken through RecordHashed and Record land in
// one count per (key, minute), also after a failed flush puts them back,
// and RecordHashed allocates nothing for a key seen this minute.
func TestRecordHashed(t *testing.T) {
	sink := newFakeSink()
	r := New(sink, Options{Now: func() time.Time { return t0 }})
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i)
	}
	for _, id := range ids {
		r.RecordHashed(id, r.Hash(id), true, t0)
		r.Record(id, false)
	}
	sink.setFail(errors.New("store down"))
	if err := r.Flush(context.Background()); err == nil {
		t.Fatal("Flush succeeded with a failing sink")
	}
	sink.setFail(nil)
	for _, id := range ids {
		r.RecordHashed(id, r.Hash(id), true, t0.Add(time.Second))
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.batches[0]); n != len(ids) {
		t.Fatalf("batch of %d counts, want %d: a key was counted in two places", n, len(ids))
	}
	want := make(map[bucket]tally, len(ids))
	for _, id := range ids {
		want[bucket{id, t0.Unix()}] = tally{allowed: 2, rateLimited: 1}
	}
	got, _ := sink.snapshot()
	equalTallies(t, got, want)

	id, h := ids[0], r.Hash(ids[0])
	if n := testing.AllocsPerRun(1000, func() { r.RecordHashed(id, h, true, t0) }); n != 0 {
		t.Fatalf("RecordHashed allocates %.1f times for a key seen this minute", n)
	}
}

// TestRecorderSQLite runs the recorder against the real store.
func TestRecorderSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "usage.db")
	store, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const nkeys = 50
	// Key rows go in with plain SQL, so that this test depends on the
	// schema only, not on the key-management code.
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	for i := range nkeys {
		id := "key" + strconv.Itoa(i)
		h := sha256.Sum256([]byte(id))
		if _, err := db.Exec(`INSERT INTO api_keys (id, hash, type, user_id, display, created_at) VALUES (?, ?, 1, 'u1', 'kgp_…', 0)`, id, h[:]); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	r := New(store, Options{})
	const workers, perWorker = 4, 5000
	done := make(chan struct{})
	var flusher sync.WaitGroup
	flusher.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := r.Flush(ctx); err != nil {
				t.Error(err)
			}
		}
	})
	want := recordMany(r, workers, perWorker, nkeys)
	close(done)
	flusher.Wait()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}

	from, to := t0.Unix(), t0.Unix()+3600
	_, total, err := store.Usage(ctx, keys.UsageQuery{UserID: "u1", From: from, To: to, Interval: "hour"})
	if err != nil {
		t.Fatal(err)
	}
	if total != workers*perWorker {
		t.Fatalf("store total = %d, want %d", total, workers*perWorker)
	}
	got := map[bucket]tally{}
	for i := range nkeys {
		id := "key" + strconv.Itoa(i)
		points, _, err := store.Usage(ctx, keys.UsageQuery{KeyID: id, From: from, To: to, Interval: "minute"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range points {
			got[bucket{id, p.T}] = tally{p.Allowed, p.RateLimited}
		}
	}
	equalTallies(t, got, want)
}

func BenchmarkRecord(b *testing.B) {
	r := New(newFakeSink(), Options{})
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i)
		r.Record(ids[i], true)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Record(ids[i%len(ids)], i%10 != 0)
			i++
		}
	})
}

// BenchmarkRecordHashed is BenchmarkRecord with the keys' hashes computed
// once and the clock read by the caller, as the gate does.
func BenchmarkRecordHashed(b *testing.B) {
	r := New(newFakeSink(), Options{})
	ids := make([]string, 1000)
	hs := make([]uint64, len(ids))
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i)
		hs[i] = r.Hash(ids[i])
		r.Record(ids[i], true)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.RecordHashed(ids[i%len(ids)], hs[i%len(ids)], i%10 != 0, time.Now())
			i++
		}
	})
}
