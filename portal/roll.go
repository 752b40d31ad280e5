package portal

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/quota"
)

// QuotaReader reports an owner's standing under a quota without counting
// anything; *quota.Engine is one.
type QuotaReader interface {
	Peek(ctx context.Context, owner string, q keys.Quota) (quota.Result, error)
}

// defaultGraceOptions are offered when Options.RollGraceOptions is nil
// (SPEC §11: portal.roll_grace_options).
var defaultGraceOptions = []time.Duration{0, time.Hour, 24 * time.Hour, 168 * time.Hour}

// graceLabel spells out a grace period: "24h" is "1 day".
func graceLabel(d time.Duration) string {
	switch {
	case d == 0:
		return "Stop the old key now"
	case d%(24*time.Hour) == 0:
		return "Keep the old key for " + plural(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return "Keep the old key for " + plural(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return "Keep the old key for " + plural(int64(d/time.Minute), "minute")
	}
	return "Keep the old key for " + d.String()
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}

func (p *Portal) graceChoices() []choice {
	out := make([]choice, 0, len(p.graces))
	for i, g := range p.graces {
		out = append(out, choice{Value: g.String(), Label: graceLabel(g), Selected: i == 0})
	}
	return out
}

// rollKey replaces one of the visitor's keys and shows the new token once.
func (p *Portal) rollKey(w http.ResponseWriter, r *http.Request, v *visit) {
	k, ok := p.keyFor(w, r, v)
	if !ok {
		return
	}
	grace, err := time.ParseDuration(r.PostForm.Get("grace_period"))
	offered := false
	for _, g := range p.graces {
		offered = offered || (err == nil && g == grace)
	}
	if !offered {
		p.message(w, r, http.StatusBadRequest, "Bad request", "Choose one of the offered grace periods.")
		return
	}
	next, token, err := p.svc.RollKey(v.actor(r.Context()), k.ID, grace)
	if err != nil {
		p.internal(w, r, "roll key", err)
		return
	}
	p.log.Info("portal key rolled", "key_id", k.ID, "new_key_id", next.ID, "user_id", v.user.ID, "grace", grace.String())
	pg := p.newPage(v, "Key rolled")
	pg.Key, pg.Token = &keyRow{Key: *next, Status: next.Status(p.now())}, token
	pg.Rolled = true
	if grace == 0 {
		pg.Message = fmt.Sprintf("The old key %s has stopped working.", k.Display)
	} else {
		pg.Message = fmt.Sprintf("The old key %s keeps working until %s.", k.Display, p.now().Add(grace).UTC().Format("2 Jan 2006 15:04 MST"))
	}
	p.render(w, r, http.StatusOK, "created", pg)
}

// quotaLine describes owner's quota, like "8,213 of 10,000 requests left
// this month"; "" when no quota applies or it cannot be read.
func (p *Portal) quotaLine(ctx context.Context, owner string, own *keys.Quota, t keys.Type) string {
	if p.opts.Quotas == nil {
		return ""
	}
	q := p.opts.QuotaDefaults[t]
	if own != nil {
		q = *own
	}
	if q.None() {
		return ""
	}
	res, err := p.opts.Quotas.Peek(ctx, owner, q)
	if err != nil {
		p.log.Warn("portal: quota", "owner", owner, "err", err)
		return ""
	}
	when := map[keys.QuotaPeriod]string{keys.PeriodDay: " today", keys.PeriodMonth: " this month", keys.PeriodTotal: ""}[q.Period]
	return fmt.Sprintf("%s of %s requests left%s", thousands(res.Remaining), thousands(q.Limit), when)
}

// thousands formats n with commas: 10000 is "10,000".
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var b []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	if neg {
		return "-" + string(b)
	}
	return string(b)
}
