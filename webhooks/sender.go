package webhooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keygate/keygate/keys"
)

// Outcomes of one attempt, for metrics.
const (
	OutcomeDelivered = "delivered" // a 2xx answer
	OutcomeRetry     = "retry"     // failed, tried again later
	OutcomeFailed    = "failed"    // failed for good (max age reached)
)

// SenderOptions configure a Sender. Zero values take the defaults.
type SenderOptions struct {
	Store     keys.DeliveryStore
	Endpoints []Endpoint
	// RetryDelays are the waits after the 1st, 2nd, … failed attempt; the
	// last repeats. Default: 5s, 1m, 10m, 1h, 6h, 12h.
	RetryDelays []time.Duration
	// MaxAge: a delivery whose next attempt would start later than this
	// after it was created is marked failed instead. Default 72h.
	MaxAge time.Duration
	// Timeout bounds one attempt. Default 10s.
	Timeout time.Duration
	// Poll is how often an idle sender looks for due deliveries. Default 250ms.
	Poll time.Duration
	// Batch is how many deliveries one claim takes. Default 8.
	Batch int
	// Client sends the requests; default: a client with Timeout that does
	// not follow redirects (a 3xx is not a success).
	Client *http.Client
	Now    func() time.Time
	Logger *slog.Logger
	// OnOutcome, when set, is told the outcome of every attempt.
	OnOutcome func(outcome string)
}

// Sender delivers the outbox: it claims due deliveries (a lease, so that
// one node of a cluster sends each), posts them, and records the outcome.
// Deliveries to one endpoint go one at a time in outbox order; endpoints
// are served in parallel.
type Sender struct {
	o       SenderOptions
	secrets map[string][]byte // by endpoint URL
	lease   time.Duration
	kick    chan struct{}
}

// NewSender returns a Sender; Run starts it.
func NewSender(o SenderOptions) *Sender {
	if len(o.RetryDelays) == 0 {
		o.RetryDelays = []time.Duration{5 * time.Second, time.Minute, 10 * time.Minute, time.Hour, 6 * time.Hour, 12 * time.Hour}
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 72 * time.Hour
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Batch <= 0 {
		o.Batch = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Timeout:       o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	s := &Sender{o: o, secrets: map[string][]byte{}, kick: make(chan struct{}, 1)}
	for _, e := range o.Endpoints {
		s.secrets[e.URL] = e.Secret
	}
	// A claim must outlive every attempt of its batch, sent one after the
	// other per endpoint, with room to record the outcome. It is also how
	// long a node that died mid-delivery delays it.
	s.lease = time.Duration(o.Batch)*o.Timeout + max(o.Timeout, 5*time.Second)
	return s
}

// Kick makes an idle sender look for due deliveries now (after a retry
// asked through the admin API, say). It never blocks.
func (s *Sender) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run sends until ctx ends; in-flight attempts are cut short by ctx, and
// their deliveries stay pending (the lease runs out and they are sent again).
func (s *Sender) Run(ctx context.Context) {
	for {
		n, err := s.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			s.o.Logger.Warn("webhook deliveries: claim failed", "err", err)
		}
		if n > 0 && err == nil {
			continue // there may be more due
		}
		t := time.NewTimer(s.o.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// RunOnce claims one batch of due deliveries and sends it, and returns how
// many it claimed.
func (s *Sender) RunOnce(ctx context.Context) (int, error) {
	ds, err := s.o.Store.ClaimDeliveries(ctx, s.o.Now(), s.lease, s.o.Batch)
	if err != nil || len(ds) == 0 {
		return 0, err
	}
	byEndpoint := map[string][]keys.Delivery{}
	var order []string
	for _, d := range ds {
		if _, ok := byEndpoint[d.Endpoint]; !ok {
			order = append(order, d.Endpoint)
		}
		byEndpoint[d.Endpoint] = append(byEndpoint[d.Endpoint], d)
	}
	var wg sync.WaitGroup
	for _, ep := range order {
		wg.Add(1)
		go func(list []keys.Delivery) {
			defer wg.Done()
			for i := range list {
				s.deliver(ctx, &list[i])
			}
		}(byEndpoint[ep])
	}
	wg.Wait()
	return len(ds), nil
}

// deliver makes one attempt and records its outcome.
func (s *Sender) deliver(ctx context.Context, d *keys.Delivery) {
	claimed := *d
	secret, ok := s.secrets[d.Endpoint]
	var err error
	if !ok {
		err = fmt.Errorf("endpoint %s is no longer configured", d.Endpoint)
	} else {
		err = s.post(ctx, d, secret)
	}
	// Record the outcome even if ctx ends now: a sent event must not be
	// sent again for want of a write.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ctx.Err() != nil {
		// Shutting down: hand the delivery back as it was claimed, so that
		// the next sender (this node restarted, or another) need not wait
		// for the lease. The attempt does not count.
		if err := s.o.Store.FinishDelivery(fctx, &claimed); err != nil {
			s.o.Logger.Warn("webhook delivery: release", "id", d.ID, "err", err)
		}
		return
	}
	now := s.o.Now()
	d.Attempts++
	outcome := OutcomeDelivered
	if err == nil {
		at := now.Unix()
		d.Status, d.DeliveredAt, d.LastError = keys.DeliveryDelivered, &at, ""
	} else {
		d.LastError = err.Error()
		next := now.Add(s.delay(d.Attempts))
		if next.Sub(time.Unix(d.CreatedAt, 0)) > s.o.MaxAge || !ok {
			d.Status, outcome = keys.DeliveryFailed, OutcomeFailed
		} else {
			d.NextAt, outcome = next.UnixMilli(), OutcomeRetry
		}
		s.o.Logger.Info("webhook delivery failed", "id", d.ID, "type", d.Type, "endpoint", d.Endpoint, "attempt", d.Attempts, "outcome", outcome, "err", err)
	}
	if err := s.o.Store.FinishDelivery(fctx, d); err != nil {
		s.o.Logger.Warn("webhook delivery: record outcome", "id", d.ID, "err", err)
	}
	if s.o.OnOutcome != nil {
		s.o.OnOutcome(outcome)
	}
}

// delay is the wait after the n-th failed attempt.
func (s *Sender) delay(n int) time.Duration {
	return s.o.RetryDelays[min(n, len(s.o.RetryDelays))-1]
}

// post sends d's payload, signed; nil for a 2xx answer.
func (s *Sender) post(ctx context.Context, d *keys.Delivery, secret []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint, bytes.NewReader(d.Payload))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	// The timestamp is the attempt's, as Standard Webhooks asks, so that a
	// receiver's replay window does not reject late retries; the id stays.
	ts := s.o.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keygate-webhooks")
	req.Header.Set("webhook-id", d.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(secret, d.ID, ts, d.Payload))
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return nil
}
