package sqlite

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
)

// Helper names carry a usage prefix so they cannot clash with the other
// test files of the package.

func usageTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "usage.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// usageInsertKey inserts a bare api_keys row with plain SQL, independent of
// the key-management code.
func usageInsertKey(t *testing.T, s *Store, id string, typ keys.Type, userID, orgID string) {
	t.Helper()
	h := sha256.Sum256([]byte(id))
	if _, err := s.wdb.Exec(`INSERT INTO api_keys (id, hash, type, user_id, org_id, display, created_at)
		VALUES (?, ?, ?, ?, ?, 'kg_…', 0)`, id, h[:], typ, userID, orgID); err != nil {
		t.Fatal(err)
	}
}

func usageLastUsed(t *testing.T, s *Store, id string) *int64 {
	t.Helper()
	var v *int64
	if err := s.rdb.QueryRow(`SELECT last_used_at FROM api_keys WHERE id = ?`, id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func usageRows(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func mustUsage(t *testing.T, s *Store, q keys.UsageQuery) ([]keys.UsagePoint, int64) {
	t.Helper()
	p, total, err := s.Usage(context.Background(), q)
	if err != nil {
		t.Fatalf("Usage(%+v): %v", q, err)
	}
	return p, total
}

// base is a made-up day start (2024-01-01 00:00 UTC).
const base = int64(1704067200)

func TestAddUsage(t *testing.T) {
	ctx := context.Background()
	s := usageTestStore(t)
	usageInsertKey(t, s, "k1", keys.TypeGeneric, "", "")
	usageInsertKey(t, s, "k2", keys.TypeGeneric, "", "")

	if err := s.AddUsage(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := usageLastUsed(t, s, "k1"); got != nil {
		t.Fatalf("last_used_at before traffic = %d, want NULL", *got)
	}
	err := s.AddUsage(ctx, []keys.UsageCount{
		{KeyID: "k1", Minute: base + 120, Allowed: 3, RateLimited: 1},
		{KeyID: "k1", Minute: base + 60, Allowed: 2},
		{KeyID: "gone", Minute: base, Allowed: 5}, // deleted meanwhile: dropped
		{KeyID: "k2", Minute: base + 600, Allowed: 0, RateLimited: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Additive: a second batch for the same minute adds up; a minute that is
	// not aligned lands in its minute.
	err = s.AddUsage(ctx, []keys.UsageCount{
		{KeyID: "k1", Minute: base + 120 + 17, Allowed: 10, RateLimited: 2},
		{KeyID: "k1", Minute: base, Allowed: 1}, // older: last_used_at stays
	})
	if err != nil {
		t.Fatal(err)
	}

	p, total := mustUsage(t, s, keys.UsageQuery{KeyID: "k1", From: base, To: base + 3600, Interval: "minute"})
	want := []keys.UsagePoint{{T: base, Allowed: 1}, {T: base + 60, Allowed: 2}, {T: base + 120, Allowed: 13, RateLimited: 3}}
	if !reflect.DeepEqual(p, want) || total != 19 {
		t.Fatalf("usage = %+v total %d, want %+v total 19", p, total, want)
	}
	if got := usageLastUsed(t, s, "k1"); got == nil || *got != base+120 {
		t.Fatalf("k1 last_used_at = %v, want %d", got, base+120)
	}
	if got := usageLastUsed(t, s, "k2"); got != nil {
		t.Fatalf("k2 had only empty counts, last_used_at = %d, want NULL", *got)
	}
	if n := usageRows(t, s, "usage_minute"); n != 3 {
		t.Fatalf("usage_minute rows = %d, want 3 (no row for the deleted key or the empty count)", n)
	}
}

func TestAddUsageCanceled(t *testing.T) {
	s := usageTestStore(t)
	usageInsertKey(t, s, "k1", keys.TypeGeneric, "", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.AddUsage(ctx, []keys.UsageCount{{KeyID: "k1", Minute: base, Allowed: 1}}); err == nil {
		t.Fatal("AddUsage with a canceled context succeeded")
	}
	if n := usageRows(t, s, "usage_minute"); n != 0 {
		t.Fatalf("usage_minute rows = %d after a failed batch, want 0", n)
	}
}

// usageFixture: user u1 with personal keys p1, p2; org o1 with org keys o1a
// (created by u1, so user_id is set) and o1b; a generic key g.
func usageFixture(t *testing.T) *Store {
	t.Helper()
	s := usageTestStore(t)
	usageInsertKey(t, s, "p1", keys.TypePersonal, "u1", "")
	usageInsertKey(t, s, "p2", keys.TypePersonal, "u1", "")
	usageInsertKey(t, s, "p3", keys.TypePersonal, "u2", "")
	usageInsertKey(t, s, "o1a", keys.TypeOrg, "u1", "o1")
	usageInsertKey(t, s, "o1b", keys.TypeOrg, "", "o1")
	usageInsertKey(t, s, "g", keys.TypeGeneric, "", "")
	err := s.AddUsage(context.Background(), []keys.UsageCount{
		{KeyID: "p1", Minute: base + 0*60, Allowed: 1},
		{KeyID: "p1", Minute: base + 59*60, Allowed: 2, RateLimited: 1},
		{KeyID: "p2", Minute: base + 59*60, Allowed: 4},
		{KeyID: "p2", Minute: base + 60*60, Allowed: 8},
		{KeyID: "p1", Minute: base + 25*3600, Allowed: 16},
		{KeyID: "p3", Minute: base, Allowed: 1000},
		{KeyID: "o1a", Minute: base + 30*60, Allowed: 32},
		{KeyID: "o1b", Minute: base + 90*60, RateLimited: 64},
		{KeyID: "g", Minute: base + 2*3600, Allowed: 128},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUsageSeries(t *testing.T) {
	s := usageFixture(t)
	day := int64(86400)
	tests := []struct {
		name  string
		q     keys.UsageQuery
		want  []keys.UsagePoint
		total int64
	}{
		{"key minutes", keys.UsageQuery{KeyID: "p1", From: base, To: base + 3600, Interval: "minute"},
			[]keys.UsagePoint{{T: base, Allowed: 1}, {T: base + 59*60, Allowed: 2, RateLimited: 1}}, 4},
		{"user minutes sum personal keys only", keys.UsageQuery{UserID: "u1", From: base, To: base + 2*3600, Interval: "minute"},
			[]keys.UsagePoint{{T: base, Allowed: 1}, {T: base + 59*60, Allowed: 6, RateLimited: 1}, {T: base + 60*60, Allowed: 8}}, 16},
		{"user hours", keys.UsageQuery{UserID: "u1", From: base, To: base + 2*day, Interval: "hour"},
			[]keys.UsagePoint{{T: base, Allowed: 7, RateLimited: 1}, {T: base + 3600, Allowed: 8}, {T: base + 25*3600, Allowed: 16}}, 32},
		{"user days", keys.UsageQuery{UserID: "u1", From: base, To: base + 2*day, Interval: "day"},
			[]keys.UsagePoint{{T: base, Allowed: 15, RateLimited: 1}, {T: base + day, Allowed: 16}}, 32},
		{"org keys", keys.UsageQuery{OrgID: "o1", From: base, To: base + day, Interval: "hour"},
			[]keys.UsagePoint{{T: base, Allowed: 32}, {T: base + 3600, RateLimited: 64}}, 96},
		{"generic key", keys.UsageQuery{KeyID: "g", From: base, To: base + day, Interval: "day"},
			[]keys.UsagePoint{{T: base, Allowed: 128}}, 128},
		{"to is exclusive", keys.UsageQuery{KeyID: "p1", From: base, To: base + 59*60, Interval: "minute"},
			[]keys.UsagePoint{{T: base, Allowed: 1}}, 1},
		// From inside a bucket reports that bucket whole; To inside a bucket
		// includes it.
		{"partial buckets are whole", keys.UsageQuery{UserID: "u1", From: base + 1800, To: base + 3601, Interval: "hour"},
			[]keys.UsagePoint{{T: base, Allowed: 7, RateLimited: 1}, {T: base + 3600, Allowed: 8}}, 16},
		{"empty range", keys.UsageQuery{KeyID: "p1", From: base + 3600, To: base + 3600, Interval: "minute"},
			[]keys.UsagePoint{}, 0},
		{"unknown key", keys.UsageQuery{KeyID: "nope", From: base, To: base + day, Interval: "hour"},
			[]keys.UsagePoint{}, 0},
		{"unknown user", keys.UsageQuery{UserID: "nope", From: base, To: base + day, Interval: "hour"},
			[]keys.UsagePoint{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, total := mustUsage(t, s, tt.q)
			if !reflect.DeepEqual(p, tt.want) || total != tt.total {
				t.Fatalf("got %+v total %d, want %+v total %d", p, total, tt.want, tt.total)
			}
		})
	}
}

func TestUsageBadQuery(t *testing.T) {
	s := usageTestStore(t)
	for _, q := range []keys.UsageQuery{
		{KeyID: "k", UserID: "u", From: base, To: base + 60, Interval: "minute"},
		{KeyID: "k", From: base, To: base + 60, Interval: "week"},
		{KeyID: "k", From: base, To: base + 60},
	} {
		_, _, err := s.Usage(context.Background(), q)
		if keys.ErrorCode(err) != keys.EInvalid {
			t.Errorf("Usage(%+v) = %v, want an %s error", q, err, keys.EInvalid)
		}
	}
}

func TestCompactUsage(t *testing.T) {
	ctx := context.Background()
	s := usageFixture(t)
	hour := int64(3600)
	series := func() map[string][]keys.UsagePoint {
		out := map[string][]keys.UsagePoint{}
		for _, q := range []keys.UsageQuery{
			{UserID: "u1", From: base, To: base + 3*86400, Interval: "hour"},
			{UserID: "u1", From: base, To: base + 3*86400, Interval: "day"},
			{OrgID: "o1", From: base, To: base + 3*86400, Interval: "hour"},
			{KeyID: "g", From: base, To: base + 3*86400, Interval: "hour"},
		} {
			p, _ := mustUsage(t, s, q)
			out[q.UserID+q.OrgID+q.KeyID+q.Interval] = p
		}
		return out
	}
	before := series()

	// 48 h after base+1h30: hours before base+1h are whole and rolled up;
	// the hour starting at base+1h is not whole yet and stays in minutes.
	now := time.Unix(base+hour+1800+48*hour, 0)
	if err := s.CompactUsage(ctx, now, 48*time.Hour, 90*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if after := series(); !reflect.DeepEqual(after, before) {
		t.Fatalf("hour/day series changed by compaction:\nbefore %+v\nafter  %+v", before, after)
	}
	// Rolled-up minutes are gone from the minute series.
	p, _ := mustUsage(t, s, keys.UsageQuery{UserID: "u1", From: base, To: base + 2*hour, Interval: "minute"})
	if want := []keys.UsagePoint{{T: base + hour, Allowed: 8}}; !reflect.DeepEqual(p, want) {
		t.Fatalf("minute series after compaction = %+v, want %+v", p, want)
	}
	if n := usageRows(t, s, "usage_hour"); n != 4 {
		t.Fatalf("usage_hour rows = %d, want 4 (p1, p2, p3, o1a in the first hour)", n)
	}

	// Late minutes for an hour already rolled up add to it; compacting again
	// changes nothing else.
	if err := s.AddUsage(ctx, []keys.UsageCount{{KeyID: "p1", Minute: base + 120, Allowed: 100}}); err != nil {
		t.Fatal(err)
	}
	p, total := mustUsage(t, s, keys.UsageQuery{KeyID: "p1", From: base, To: base + hour, Interval: "hour"})
	if want := []keys.UsagePoint{{T: base, Allowed: 103, RateLimited: 1}}; !reflect.DeepEqual(p, want) || total != 104 {
		t.Fatalf("before second compaction = %+v total %d, want %+v total 104", p, total, want)
	}
	if err := s.CompactUsage(ctx, now, 48*time.Hour, 90*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	p, total = mustUsage(t, s, keys.UsageQuery{KeyID: "p1", From: base, To: base + hour, Interval: "hour"})
	if want := []keys.UsagePoint{{T: base, Allowed: 103, RateLimited: 1}}; !reflect.DeepEqual(p, want) || total != 104 {
		t.Fatalf("after second compaction = %+v total %d, want %+v total 104", p, total, want)
	}

	// Retention: hour buckets that started more than retention ago go.
	later := time.Unix(base+hour+10*24*hour, 0)
	if err := s.CompactUsage(ctx, later, 48*time.Hour, 10*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	p, _ = mustUsage(t, s, keys.UsageQuery{UserID: "u1", From: base, To: base + 3*86400, Interval: "hour"})
	if want := []keys.UsagePoint{{T: base + hour, Allowed: 8}, {T: base + 25*hour, Allowed: 16}}; !reflect.DeepEqual(p, want) {
		t.Fatalf("after retention = %+v, want %+v", p, want)
	}
	if n := usageRows(t, s, "usage_minute"); n != 0 {
		t.Fatalf("usage_minute rows = %d, want 0", n)
	}
}

func TestTopUsage(t *testing.T) {
	ctx := context.Background()
	s := usageFixture(t)
	tests := []struct {
		name  string
		top   func(context.Context, int64, int) ([]keys.UsageTop, error)
		since int64
		n     int
		want  []keys.UsageTop
	}{
		{"keys", s.TopKeys, base, 3, []keys.UsageTop{{ID: "p3", Allowed: 1000, RateLimited: 0}, {ID: "g", Allowed: 128, RateLimited: 0}, {ID: "o1b", Allowed: 0, RateLimited: 64}}},
		{"keys since", s.TopKeys, base + 3600, 10, []keys.UsageTop{{ID: "g", Allowed: 128, RateLimited: 0}, {ID: "o1b", Allowed: 0, RateLimited: 64}, {ID: "p1", Allowed: 16, RateLimited: 0}, {ID: "p2", Allowed: 8, RateLimited: 0}}},
		{"users", s.TopUsers, base, 10, []keys.UsageTop{{ID: "u2", Allowed: 1000, RateLimited: 0}, {ID: "u1", Allowed: 31, RateLimited: 1}}},
		{"users top 1", s.TopUsers, base, 1, []keys.UsageTop{{ID: "u2", Allowed: 1000, RateLimited: 0}}},
		{"orgs", s.TopOrgs, base, 10, []keys.UsageTop{{ID: "o1", Allowed: 32, RateLimited: 64}}},
		{"none", s.TopKeys, base, 0, []keys.UsageTop{}},
		{"nothing since", s.TopOrgs, base + 86400*30, 5, []keys.UsageTop{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.top(ctx, tt.since, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}

	// Rolled-up hours count too.
	if err := s.CompactUsage(ctx, time.Unix(base+30*86400, 0), 48*time.Hour, 90*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := s.TopUsers(ctx, base, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []keys.UsageTop{{ID: "u2", Allowed: 1000, RateLimited: 0}, {ID: "u1", Allowed: 31, RateLimited: 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after compaction got %+v, want %+v", got, want)
	}
}

func TestFillUsage(t *testing.T) {
	q := keys.UsageQuery{KeyID: "k", From: base + 30, To: base + 4*60 + 1, Interval: "minute"}
	got := keys.FillUsage([]keys.UsagePoint{{T: base + 60, Allowed: 1}, {T: base + 240, RateLimited: 2}}, q)
	want := []keys.UsagePoint{{T: base}, {T: base + 60, Allowed: 1}, {T: base + 120}, {T: base + 180}, {T: base + 240, RateLimited: 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FillUsage = %+v, want %+v", got, want)
	}
	if got := keys.FillUsage(nil, keys.UsageQuery{From: base, To: base, Interval: "hour"}); len(got) != 0 {
		t.Fatalf("FillUsage of an empty range = %+v", got)
	}
}

// BenchmarkAddUsage measures one flush of 1000 keys' counts.
func BenchmarkAddUsage(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "usage.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	counts := make([]keys.UsageCount, 1000)
	for i := range counts {
		id := fmt.Sprintf("%032x", i)
		h := sha256.Sum256([]byte(id))
		if _, err := s.wdb.Exec(`INSERT INTO api_keys (id, hash, type, display, created_at) VALUES (?, ?, 3, 'kgg_…', 0)`, id, h[:]); err != nil {
			b.Fatal(err)
		}
		counts[i] = keys.UsageCount{KeyID: id, Allowed: 10, RateLimited: 1}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range counts {
			counts[j].Minute = base + int64(i/10)*60
		}
		if err := s.AddUsage(context.Background(), counts); err != nil {
			b.Fatal(err)
		}
	}
}

func TestUsageAllKeys(t *testing.T) {
	s := usageTestStore(t)
	usageInsertKey(t, s, "p1", keys.TypePersonal, "u", "")
	usageInsertKey(t, s, "o1", keys.TypeOrg, "", "o")
	usageInsertKey(t, s, "g1", keys.TypeGeneric, "", "")
	if err := s.AddUsage(context.Background(), []keys.UsageCount{
		{KeyID: "p1", Minute: base, Allowed: 3},
		{KeyID: "o1", Minute: base + 60, Allowed: 4, RateLimited: 1},
		{KeyID: "g1", Minute: base + 3600, RateLimited: 2},
	}); err != nil {
		t.Fatal(err)
	}
	points, total := mustUsage(t, s, keys.UsageQuery{From: base, To: base + 7200, Interval: "hour"})
	if total != 10 || len(points) != 2 || points[0].Allowed != 7 || points[0].RateLimited != 1 || points[1].RateLimited != 2 {
		t.Fatalf("all keys: total %d, points %+v", total, points)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "0123abcdef", `a"b\c`, "tab\tnl\ncr\r\x00\x1f", "café ✓"} {
		var got string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil || got != s {
			t.Errorf("appendJSONString(%q) = %s: decodes to %q, %v", s, appendJSONString(nil, s), got, err)
		}
	}
}
