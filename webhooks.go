package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/quota"
	"github.com/keygate/keygate/webhooks"
)

// appWebhooks is the webhook machinery of a node: the outbox the Service
// writes to, a sender and the expiry scheduler. Every node of a cluster runs
// both; the store's leases and marks make each event go out once.
type appWebhooks struct {
	Outbox *webhooks.Outbox
	Sender *webhooks.Sender
	Expiry *webhooks.Expiry

	endpoints []webhooks.Endpoint
	exhausted chan quotaExhausted // from the request path to sendExhausted
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// newWebhooks builds the outbox of cfg's endpoints; nil when none is
// configured (no event is written, nothing runs).
func newWebhooks(cfg config.Webhooks) (*appWebhooks, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, nil
	}
	eps := make([]webhooks.Endpoint, len(cfg.Endpoints))
	for i, e := range cfg.Endpoints {
		secret, err := config.DecodeWebhookSecret(e.Secret)
		if err != nil {
			return nil, fmt.Errorf("webhooks.endpoints[%d].secret: %w", i, err)
		}
		eps[i] = webhooks.Endpoint{URL: e.URL, Secret: secret, Events: e.Events}
	}
	return &appWebhooks{Outbox: webhooks.NewOutbox(eps, nil), endpoints: eps, exhausted: make(chan quotaExhausted, 256)}, nil
}

// startWebhooks starts the sender and the scheduler and their metrics.
func (a *App) startWebhooks() {
	w := a.webhooks
	if w == nil {
		return
	}
	cfg := a.Config.Webhooks
	w.Sender = webhooks.NewSender(webhooks.SenderOptions{
		Store:       a.Store,
		Endpoints:   w.endpoints,
		RetryDelays: cfg.RetryDelays,
		MaxAge:      cfg.MaxAge,
		Timeout:     cfg.Timeout,
		Logger:      a.Logger,
		OnOutcome:   a.Metrics.WebhookAttempt,
	})
	w.Outbox.OnEnqueue(w.Sender.Kick)
	w.Expiry = webhooks.NewExpiry(webhooks.ExpiryOptions{
		Store:   a.Store,
		Outbox:  w.Outbox,
		Notices: cfg.ExpiryNotice,
		Logger:  a.Logger,
	})
	a.Metrics.SetWebhookStats(func() (metrics.WebhookStats, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := a.Store.DeliveryStats(ctx)
		if err != nil {
			return metrics.WebhookStats{}, err
		}
		out := metrics.WebhookStats{ByStatus: st.Count}
		if st.OldestPending > 0 {
			out.OldestPendingAge = max(float64(time.Now().Unix()-st.OldestPending), 0)
		}
		return out, nil
	})
	var ctx context.Context
	ctx, w.cancel = context.WithCancel(context.Background())
	w.wg.Add(3)
	go func() { defer w.wg.Done(); w.Sender.Run(ctx) }()
	go func() { defer w.wg.Done(); w.Expiry.Run(ctx) }()
	go func() { defer w.wg.Done(); w.sendExhausted(ctx, a.Store, a.Logger) }()
}

// quotaExhausted is the data of a quota.exhausted event (never a token).
type quotaExhausted struct {
	OwnerType string           `json:"owner_type"` // user, org or key (a generic key is its own owner)
	OwnerID   string           `json:"owner_id"`
	Limit     int64            `json:"limit"`
	Period    keys.QuotaPeriod `json:"period"`
	Used      int64            `json:"used"`
	ResetsAt  *int64           `json:"resets_at"` // null for period total
}

// onQuotaExhausted is the quota engine's OnExhausted: it runs on the
// request path, so it only hands the event over (nil without endpoints).
func (w *appWebhooks) onQuotaExhausted(log *slog.Logger) func(owner string, q keys.Quota, r quota.Result) {
	if w == nil {
		return nil
	}
	return func(owner string, q keys.Quota, r quota.Result) {
		ev := quotaExhausted{Limit: q.Limit, Period: q.Period, Used: r.Used}
		kind, id, _ := strings.Cut(owner, ":")
		ev.OwnerType, ev.OwnerID = map[string]string{"u": "user", "o": "org", "k": "key"}[kind], id
		if r.ResetsAt != 0 {
			ev.ResetsAt = &r.ResetsAt
		}
		select {
		case w.exhausted <- ev:
		default:
			log.Warn("webhook quota.exhausted dropped: too many at once", "owner_type", ev.OwnerType, "owner_id", ev.OwnerID)
		}
	}
}

// sendExhausted writes quota.exhausted events to the outbox, one
// transaction each; on stop it writes those already handed over.
func (w *appWebhooks) sendExhausted(ctx context.Context, store webhooks.Updater, log *slog.Logger) {
	send := func(ctx context.Context, ev quotaExhausted) {
		if err := w.Outbox.Send(ctx, store, webhooks.EventQuotaExhausted, ev); err != nil {
			log.Error("webhook quota.exhausted not written", "owner_type", ev.OwnerType, "owner_id", ev.OwnerID, "err", err)
		}
	}
	for {
		select {
		case ev := <-w.exhausted:
			send(ctx, ev)
		case <-ctx.Done():
			drain, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			for {
				select {
				case ev := <-w.exhausted:
					send(drain, ev)
				default:
					return
				}
			}
		}
	}
}

// stop ends the sender and the scheduler; deliveries being sent stay
// pending and go out after their lease (from this node after a restart, or
// from another).
func (w *appWebhooks) stop() {
	if w == nil || w.cancel == nil {
		return
	}
	w.cancel()
	w.wg.Wait()
}

// eventSink is the Service's keys.EventSink: nil without endpoints.
func (w *appWebhooks) eventSink() keys.EventSink {
	if w == nil {
		return nil
	}
	return w.Outbox
}

// kick wakes the sender after an admin retry.
func (w *appWebhooks) kick() {
	if w != nil && w.Sender != nil {
		w.Sender.Kick()
	}
}
