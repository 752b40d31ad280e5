package admin

import (
	"net/http"

	"github.com/keygate/keygate/keys"
)

// deliveryView is a webhook delivery as the API shows it: its payload is
// the JSON body sent (keys and owners, never a token).
type deliveryView = keys.Delivery

// listDeliveries answers GET /v1/webhook-deliveries?status=&endpoint=&cursor=&page_size=.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "status", "endpoint", "cursor", "page_size")
	f := keys.DeliveryFilter{Status: q.str("status"), Endpoint: q.str("endpoint"), Cursor: q.str("cursor")}
	switch f.Status {
	case "", keys.DeliveryPending, keys.DeliveryDelivered, keys.DeliveryFailed:
	default:
		q.add("status", "must be pending, delivered or failed")
	}
	f.Limit = int(q.integer("page_size", 100, 1, 1000))
	if err := q.err(); err != nil {
		return err
	}
	ds, next, err := s.svc.Store().ListDeliveries(r.Context(), f)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []deliveryView{} // lists are arrays, never null
	}
	writeJSON(w, http.StatusOK, struct {
		Deliveries []deliveryView `json:"deliveries"`
		NextCursor string         `json:"next_cursor"`
	}{ds, next})
	return nil
}

// retryDelivery answers POST /v1/webhook-deliveries/{id}/retry: the
// delivery is pending again, due now, with the same webhook-id.
func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	d, err := s.svc.Store().RetryDelivery(r.Context(), id, s.now())
	if err != nil {
		return notFoundAs(err, "no webhook delivery %q", id)
	}
	if s.deliveryRetried != nil {
		s.deliveryRetried()
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}
