package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/usage"
)

// dashPageSize is the length of every dashboard list page.
const dashPageSize = 50

// rateText describes an owner's rate-limit override.
func rateText(r *keys.RateLimit) string {
	switch {
	case r == nil:
		return "none (the key type's limit applies)"
	case r.Limit == 0:
		return "unlimited"
	}
	return fmt.Sprintf("%s requests per %s", thousands(r.Limit), keys.FormatDuration(r.Window))
}

// prettyJSON indents a JSON document for a <pre>; the template escapes it.
func prettyJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// keyView is a key with its status at render time.
type keyView struct {
	keys.Key
	Status string
}

func (d *Dashboard) keyViews(ks []keys.Key) []keyView {
	now := d.now()
	out := make([]keyView, len(ks))
	for i := range ks {
		out[i] = keyView{Key: ks[i], Status: ks[i].Status(now)}
	}
	return out
}

type dashRange struct {
	Name, Label, Href string
	Current           bool
}

// chart draws the usage of q's keys (q names one key, user or org) over
// the range named in the request's "range" parameter (default 24h).
func (d *Dashboard) chart(r *http.Request, q keys.UsageQuery, what string) (template.HTML, []dashRange, error) {
	rng, ok := usage.ParseChartRange(r.URL.Query().Get("range"))
	if !ok {
		rng, _ = usage.ParseChartRange("24h")
	}
	var links []dashRange
	for _, cr := range usage.ChartRanges() {
		links = append(links, dashRange{Name: cr.Name, Label: cr.Label, Href: "?range=" + cr.Name, Current: cr.Name == rng.Name})
	}
	rq := rng.Query(d.now())
	q.From, q.To, q.Interval = rq.From, rq.To, rq.Interval
	points, _, err := d.store.Usage(r.Context(), q)
	if err != nil {
		return "", nil, err
	}
	return chartHTML(points, usage.ChartOptions{Title: what + ", last " + rng.Label, From: q.From, To: q.To, Interval: q.Interval}), links, nil
}

// traffic returns the usage of all keys over q's range, zero-filled.
func (d *Dashboard) traffic(ctx context.Context, q keys.UsageQuery) ([]keys.UsagePoint, string, error) {
	points, _, err := d.store.Usage(ctx, q)
	if err != nil {
		return nil, "", err
	}
	return keys.FillUsage(points, q), "", nil
}

type countRow struct {
	Type                      string
	Enabled                   bool
	Active, Expired, Archived int64
}

type topRow struct {
	Label, Href          string
	Allowed, RateLimited int64
}

type topSection struct {
	Title, What string
	Rows        []topRow
}

type overviewData struct {
	Chart     template.HTML
	ChartNote string
	Counts    []countRow
	Tops      []topSection
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := d.now()
	var data overviewData
	rng, _ := usage.ParseChartRange("24h")
	q := rng.Query(now)
	points, note, err := d.traffic(ctx, q)
	if err != nil {
		d.internal(w, r, "Traffic", err)
		return
	}
	data.ChartNote = note
	data.Chart = chartHTML(points, usage.ChartOptions{Title: "All requests, last 24 hours", From: q.From, To: q.To, Interval: q.Interval})

	counts, err := d.store.CountKeys(ctx, now.Unix())
	if err != nil {
		d.internal(w, r, "Key counts", err)
		return
	}
	for _, t := range keys.Types {
		c := counts[t]
		data.Counts = append(data.Counts, countRow{Type: t.String(), Enabled: d.svc.Enabled(t),
			Active: c["active"], Expired: c["expired"], Archived: c["archived"]})
	}

	since := now.Add(-24 * time.Hour).Unix()
	tops := []struct {
		fn          func(context.Context, int64, int) ([]keys.UsageTop, error)
		title, what string
		path        string
	}{
		{d.store.TopKeys, "Top keys, 24 h", "Key", "/keys/"},
		{d.store.TopUsers, "Top users, 24 h", "User", "/users/"},
		{d.store.TopOrgs, "Top orgs, 24 h", "Org", "/orgs/"},
	}
	for _, t := range tops {
		sec := topSection{Title: t.title, What: t.what}
		rows, err := t.fn(ctx, since, 10)
		if err != nil {
			d.internal(w, r, "Top traffic", err)
			return
		}
		for _, u := range rows {
			row := topRow{Label: u.ID, Href: t.path + u.ID, Allowed: u.Allowed, RateLimited: u.RateLimited}
			if t.path == "/keys/" {
				if k, err := d.svc.GetKey(ctx, u.ID); err == nil {
					row.Label = keyLabel(k)
				}
			}
			sec.Rows = append(sec.Rows, row)
		}
		data.Tops = append(data.Tops, sec)
	}
	d.render(w, r, http.StatusOK, "overview", d.page(r, "Overview", "overview", data))
}
