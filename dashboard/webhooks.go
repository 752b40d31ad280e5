package dashboard

import (
	"errors"
	"net/http"
	"strings"

	"github.com/keygate/keygate/keys"
)

type webhooksData struct {
	Filter     keys.DeliveryFilter
	Statuses   []string
	Deliveries []keys.Delivery
	Older      string
	Enabled    bool
}

// webhooksPage lists webhook deliveries with their attempts and last error.
func (d *Dashboard) webhooksPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := keys.DeliveryFilter{Status: q.Get("status"), Endpoint: strings.TrimSpace(q.Get("endpoint")), Cursor: q.Get("cursor"), Limit: 100}
	data := webhooksData{Filter: f, Statuses: []string{keys.DeliveryPending, keys.DeliveryDelivered, keys.DeliveryFailed}, Enabled: d.webhooks}
	pg := d.page(r, "Webhooks", "webhooks", &data)
	switch f.Status {
	case "", keys.DeliveryPending, keys.DeliveryDelivered, keys.DeliveryFailed:
	default:
		pg.Error = "status: must be pending, delivered or failed"
		d.render(w, r, http.StatusBadRequest, "webhooks", pg)
		return
	}
	ds, next, err := d.store.ListDeliveries(r.Context(), f)
	if err != nil {
		var ke *keys.Error
		if errors.As(err, &ke) {
			pg.Error = ke.Error()
			d.render(w, r, http.StatusBadRequest, "webhooks", pg)
			return
		}
		d.internal(w, r, "Reading webhook deliveries", err)
		return
	}
	data.Deliveries = ds
	if next != "" {
		oq := cloneValues(q)
		oq.Set("cursor", next)
		data.Older = "?" + oq.Encode()
	}
	d.render(w, r, http.StatusOK, "webhooks", pg)
}

// retryDelivery makes a delivery pending again, due now.
func (d *Dashboard) retryDelivery(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := d.store.RetryDelivery(r.Context(), id, d.now()); err != nil {
		if errors.Is(err, keys.ErrNotFound) {
			d.notFound(w, r)
			return
		}
		d.internal(w, r, "Retrying the delivery", err)
		return
	}
	d.setFlash(r, "Delivery "+id+" will be sent again now, with the same webhook-id.")
	http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
}
