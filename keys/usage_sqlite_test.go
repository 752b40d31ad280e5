package keys

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// Helper names carry a usage prefix so they cannot clash with the other
// test files of the package.

func usageTestStore(t *testing.T) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "usage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// usageInsertKey inserts a bare api_keys row with plain SQL, independent of
// the key-management code.
func usageInsertKey(t *testing.T, s *SQLite, id string, typ Type, userID, orgID string) {
	t.Helper()
	h := sha256.Sum256([]byte(id))
	if _, err := s.wdb.Exec(`INSERT INTO api_keys (id, hash, type, user_id, org_id, display, created_at)
		VALUES (?, ?, ?, ?, ?, 'kg_…', 0)`, id, h[:], typ, userID, orgID); err != nil {
		t.Fatal(err)
	}
}

func usageLastUsed(t *testing.T, s *SQLite, id string) *int64 {
	t.Helper()
	var v *int64
	if err := s.rdb.QueryRow(`SELECT last_used_at FROM api_keys WHERE id = ?`, id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func usageRows(t *testing.T, s *SQLite, table string) int {
	t.Helper()
	var n int
	if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func mustUsage(t *testing.T, s *SQLite, q UsageQuery) ([]UsagePoint, int64) {
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
	usageInsertKey(t, s, "k1", TypeGeneric, "", "")
	usageInsertKey(t, s, "k2", TypeGeneric, "", "")

	if err := s.AddUsage(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := usageLastUsed(t, s, "k1"); got != nil {
		t.Fatalf("last_used_at before traffic = %d, want NULL", *got)
	}
	err := s.AddUsage(ctx, []UsageCount{
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
	err = s.AddUsage(ctx, []UsageCount{
		{KeyID: "k1", Minute: base + 120 + 17, Allowed: 10, RateLimited: 2},
		{KeyID: "k1", Minute: base, Allowed: 1}, // older: last_used_at stays
	})
	if err != nil {
		t.Fatal(err)
	}

	p, total := mustUsage(t, s, UsageQuery{KeyID: "k1", From: base, To: base + 3600, Interval: "minute"})
	want := []UsagePoint{{T: base, Allowed: 1}, {T: base + 60, Allowed: 2}, {T: base + 120, Allowed: 13, RateLimited: 3}}
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
	usageInsertKey(t, s, "k1", TypeGeneric, "", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.AddUsage(ctx, []UsageCount{{KeyID: "k1", Minute: base, Allowed: 1}}); err == nil {
		t.Fatal("AddUsage with a canceled context succeeded")
	}
	if n := usageRows(t, s, "usage_minute"); n != 0 {
		t.Fatalf("usage_minute rows = %d after a failed batch, want 0", n)
	}
}

// usageFixture: user u1 with personal keys p1, p2; org o1 with org keys o1a
// (created by u1, so user_id is set) and o1b; a generic key g.
func usageFixture(t *testing.T) *SQLite {
	t.Helper()
	s := usageTestStore(t)
	usageInsertKey(t, s, "p1", TypePersonal, "u1", "")
	usageInsertKey(t, s, "p2", TypePersonal, "u1", "")
	usageInsertKey(t, s, "p3", TypePersonal, "u2", "")
	usageInsertKey(t, s, "o1a", TypeOrg, "u1", "o1")
	usageInsertKey(t, s, "o1b", TypeOrg, "", "o1")
	usageInsertKey(t, s, "g", TypeGeneric, "", "")
	err := s.AddUsage(context.Background(), []UsageCount{
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
		q     UsageQuery
		want  []UsagePoint
		total int64
	}{
		{"key minutes", UsageQuery{KeyID: "p1", From: base, To: base + 3600, Interval: "minute"},
			[]UsagePoint{{T: base, Allowed: 1}, {T: base + 59*60, Allowed: 2, RateLimited: 1}}, 4},
		{"user minutes sum personal keys only", UsageQuery{UserID: "u1", From: base, To: base + 2*3600, Interval: "minute"},
			[]UsagePoint{{T: base, Allowed: 1}, {T: base + 59*60, Allowed: 6, RateLimited: 1}, {T: base + 60*60, Allowed: 8}}, 16},
		{"user hours", UsageQuery{UserID: "u1", From: base, To: base + 2*day, Interval: "hour"},
			[]UsagePoint{{T: base, Allowed: 7, RateLimited: 1}, {T: base + 3600, Allowed: 8}, {T: base + 25*3600, Allowed: 16}}, 32},
		{"user days", UsageQuery{UserID: "u1", From: base, To: base + 2*day, Interval: "day"},
			[]UsagePoint{{T: base, Allowed: 15, RateLimited: 1}, {T: base + day, Allowed: 16}}, 32},
		{"org keys", UsageQuery{OrgID: "o1", From: base, To: base + day, Interval: "hour"},
			[]UsagePoint{{T: base, Allowed: 32}, {T: base + 3600, RateLimited: 64}}, 96},
		{"generic key", UsageQuery{KeyID: "g", From: base, To: base + day, Interval: "day"},
			[]UsagePoint{{T: base, Allowed: 128}}, 128},
		{"to is exclusive", UsageQuery{KeyID: "p1", From: base, To: base + 59*60, Interval: "minute"},
			[]UsagePoint{{T: base, Allowed: 1}}, 1},
		// From inside a bucket reports that bucket whole; To inside a bucket
		// includes it.
		{"partial buckets are whole", UsageQuery{UserID: "u1", From: base + 1800, To: base + 3601, Interval: "hour"},
			[]UsagePoint{{T: base, Allowed: 7, RateLimited: 1}, {T: base + 3600, Allowed: 8}}, 16},
		{"empty range", UsageQuery{KeyID: "p1", From: base + 3600, To: base + 3600, Interval: "minute"},
			[]UsagePoint{}, 0},
		{"unknown key", UsageQuery{KeyID: "nope", From: base, To: base + day, Interval: "hour"},
			[]UsagePoint{}, 0},
		{"unknown user", UsageQuery{UserID: "nope", From: base, To: base + day, Interval: "hour"},
			[]UsagePoint{}, 0},
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
	for _, q := range []UsageQuery{
		{KeyID: "k", UserID: "u", From: base, To: base + 60, Interval: "minute"},
		{KeyID: "k", From: base, To: base + 60, Interval: "week"},
		{KeyID: "k", From: base, To: base + 60},
	} {
		_, _, err := s.Usage(context.Background(), q)
		if ErrorCode(err) != EInvalid {
			t.Errorf("Usage(%+v) = %v, want an %s error", q, err, EInvalid)
		}
	}
}

func TestCompactUsage(t *testing.T) {
	ctx := context.Background()
	s := usageFixture(t)
	hour := int64(3600)
	series := func() map[string][]UsagePoint {
		out := map[string][]UsagePoint{}
		for _, q := range []UsageQuery{
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
	p, _ := mustUsage(t, s, UsageQuery{UserID: "u1", From: base, To: base + 2*hour, Interval: "minute"})
	if want := []UsagePoint{{T: base + hour, Allowed: 8}}; !reflect.DeepEqual(p, want) {
		t.Fatalf("minute series after compaction = %+v, want %+v", p, want)
	}
	if n := usageRows(t, s, "usage_hour"); n != 4 {
		t.Fatalf("usage_hour rows = %d, want 4 (p1, p2, p3, o1a in the first hour)", n)
	}

	// Late minutes for an hour already rolled up add to it; compacting again
	// changes nothing else.
	if err := s.AddUsage(ctx, []UsageCount{{KeyID: "p1", Minute: base + 120, Allowed: 100}}); err != nil {
		t.Fatal(err)
	}
	p, total := mustUsage(t, s, UsageQuery{KeyID: "p1", From: base, To: base + hour, Interval: "hour"})
	if want := []UsagePoint{{T: base, Allowed: 103, RateLimited: 1}}; !reflect.DeepEqual(p, want) || total != 104 {
		t.Fatalf("before second compaction = %+v total %d, want %+v total 104", p, total, want)
	}
	if err := s.CompactUsage(ctx, now, 48*time.Hour, 90*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	p, total = mustUsage(t, s, UsageQuery{KeyID: "p1", From: base, To: base + hour, Interval: "hour"})
	if want := []UsagePoint{{T: base, Allowed: 103, RateLimited: 1}}; !reflect.DeepEqual(p, want) || total != 104 {
		t.Fatalf("after second compaction = %+v total %d, want %+v total 104", p, total, want)
	}

	// Retention: hour buckets that started more than retention ago go.
	later := time.Unix(base+hour+10*24*hour, 0)
	if err := s.CompactUsage(ctx, later, 48*time.Hour, 10*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	p, _ = mustUsage(t, s, UsageQuery{UserID: "u1", From: base, To: base + 3*86400, Interval: "hour"})
	if want := []UsagePoint{{T: base + hour, Allowed: 8}, {T: base + 25*hour, Allowed: 16}}; !reflect.DeepEqual(p, want) {
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
		top   func(context.Context, int64, int) ([]UsageTop, error)
		since int64
		n     int
		want  []UsageTop
	}{
		{"keys", s.TopKeys, base, 3, []UsageTop{{"p3", 1000, 0}, {"g", 128, 0}, {"o1b", 0, 64}}},
		{"keys since", s.TopKeys, base + 3600, 10, []UsageTop{{"g", 128, 0}, {"o1b", 0, 64}, {"p1", 16, 0}, {"p2", 8, 0}}},
		{"users", s.TopUsers, base, 10, []UsageTop{{"u2", 1000, 0}, {"u1", 31, 1}}},
		{"users top 1", s.TopUsers, base, 1, []UsageTop{{"u2", 1000, 0}}},
		{"orgs", s.TopOrgs, base, 10, []UsageTop{{"o1", 32, 64}}},
		{"none", s.TopKeys, base, 0, []UsageTop{}},
		{"nothing since", s.TopOrgs, base + 86400*30, 5, []UsageTop{}},
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
	if want := []UsageTop{{"u2", 1000, 0}, {"u1", 31, 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after compaction got %+v, want %+v", got, want)
	}
}

func TestFillUsage(t *testing.T) {
	q := UsageQuery{KeyID: "k", From: base + 30, To: base + 4*60 + 1, Interval: "minute"}
	got := FillUsage([]UsagePoint{{T: base + 60, Allowed: 1}, {T: base + 240, RateLimited: 2}}, q)
	want := []UsagePoint{{T: base}, {T: base + 60, Allowed: 1}, {T: base + 120}, {T: base + 180}, {T: base + 240, RateLimited: 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FillUsage = %+v, want %+v", got, want)
	}
	if got := FillUsage(nil, UsageQuery{From: base, To: base, Interval: "hour"}); len(got) != 0 {
		t.Fatalf("FillUsage of an empty range = %+v", got)
	}
}

// BenchmarkAddUsage measures one flush of 1000 keys' counts.
func BenchmarkAddUsage(b *testing.B) {
	s, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "usage.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	counts := make([]UsageCount, 1000)
	for i := range counts {
		id := fmt.Sprintf("%032x", i)
		h := sha256.Sum256([]byte(id))
		if _, err := s.wdb.Exec(`INSERT INTO api_keys (id, hash, type, display, created_at) VALUES (?, ?, 3, 'kgg_…', 0)`, id, h[:]); err != nil {
			b.Fatal(err)
		}
		counts[i] = UsageCount{KeyID: id, Allowed: 10, RateLimited: 1}
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
	usageInsertKey(t, s, "p1", TypePersonal, "u", "")
	usageInsertKey(t, s, "o1", TypeOrg, "", "o")
	usageInsertKey(t, s, "g1", TypeGeneric, "", "")
	if err := s.AddUsage(context.Background(), []UsageCount{
		{KeyID: "p1", Minute: base, Allowed: 3},
		{KeyID: "o1", Minute: base + 60, Allowed: 4, RateLimited: 1},
		{KeyID: "g1", Minute: base + 3600, RateLimited: 2},
	}); err != nil {
		t.Fatal(err)
	}
	points, total := mustUsage(t, s, UsageQuery{From: base, To: base + 7200, Interval: "hour"})
	if total != 10 || len(points) != 2 || points[0].Allowed != 7 || points[0].RateLimited != 1 || points[1].RateLimited != 2 {
		t.Fatalf("all keys: total %d, points %+v", total, points)
	}
}
