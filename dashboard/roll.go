package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/quota"
)

// graceOption is one grace period offered when rolling a key.
type graceOption struct {
	Value, Label string
}

func (d *Dashboard) graceOptions() []graceOption {
	out := make([]graceOption, 0, len(d.graces))
	for _, g := range d.graces {
		label := "none: archive the old key now"
		if g > 0 {
			label = "old key valid " + g.String() + " more"
		}
		out = append(out, graceOption{Value: g.String(), Label: label})
	}
	return out
}

// quotaText describes a standing for the pages: "8,213 of 10,000 left this
// month (1,787 used; refills 1 Jan 2027 00:00 UTC)"; "none" when nil.
func quotaText(q *quotaJSON) string {
	if q == nil {
		return "none"
	}
	when := map[keys.QuotaPeriod]string{keys.PeriodDay: " today", keys.PeriodMonth: " this month"}[q.Period]
	s := fmt.Sprintf("%s of %s left%s (%s used", commas(q.Remaining), commas(q.Limit), when, commas(q.Used))
	if q.ResetsAt != nil {
		s += "; refills " + time.Unix(*q.ResetsAt, 0).UTC().Format("2 Jan 2006 15:04 MST")
	} else {
		s += "; never refills"
	}
	return s + ")"
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	return string(b)
}

// QuotaReader reports an owner's standing under a quota without counting
// anything; *quota.Engine is one.
type QuotaReader interface {
	Peek(ctx context.Context, owner string, q keys.Quota) (quota.Result, error)
}

// quotaJSON is an owner's quota standing as the pages show it.
type quotaJSON struct {
	Limit     int64
	Period    keys.QuotaPeriod
	Used      int64
	Remaining int64
	ResetsAt  *int64 // nil for total
}

// standing returns the quota that applies to owner (its own, else type
// t's) with its use; nil when none applies. A failure to read it is logged
// and shown as none, since the rest of the page is still useful.
func (d *Dashboard) standing(ctx context.Context, owner string, own *keys.Quota, t keys.Type) *quotaJSON {
	if d.quotas == nil {
		return nil
	}
	q := d.quotaDefaults[t]
	if own != nil {
		q = *own
	}
	if q.None() {
		return nil
	}
	res, err := d.quotas.Peek(ctx, owner, q)
	if err != nil {
		d.log.Warn("dashboard: quota", "owner", owner, "err", err)
		return nil
	}
	out := &quotaJSON{Limit: q.Limit, Period: q.Period, Used: res.Used, Remaining: res.Remaining}
	if res.ResetsAt > 0 {
		out.ResetsAt = &res.ResetsAt
	}
	return out
}

// rollKey replaces a key and shows the new token once.
func (d *Dashboard) rollKey(w http.ResponseWriter, r *http.Request) {
	k, ok := d.keyOf(w, r)
	if !ok {
		return
	}
	grace, err := time.ParseDuration(r.PostForm.Get("grace_period"))
	if err != nil {
		d.message(w, r, http.StatusBadRequest, "Bad grace period", "Choose one of the offered grace periods.")
		return
	}
	next, token, err := d.svc.RollKey(r.Context(), k.ID, grace)
	if err != nil {
		if kerr := (*keys.Error)(nil); errors.As(err, &kerr) {
			d.message(w, r, http.StatusConflict, "The key was not rolled", kerr.Message)
			return
		}
		d.internal(w, r, "Rolling the key", err)
		return
	}
	d.log.Info("dashboard key rolled", "key_id", k.ID, "new_key_id", next.ID, "grace", grace.String())
	if old, err := d.svc.GetKey(r.Context(), k.ID); err == nil {
		k = old // as the roll left it: archived, or expiring after the grace
	}
	data := createdData{Key: keyView{Key: *next, Status: next.Status(d.now())}, Token: token, RolledFrom: k}
	d.render(w, r, http.StatusCreated, "key_created", d.page(r, "Key rolled", "keys", data))
}
