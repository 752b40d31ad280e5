package metrics

import (
	"fmt"
	"io"
	"sort"

	vm "github.com/VictoriaMetrics/metrics"
)

// WebhookOutcomes are the values of keygate_webhook_attempts_total's
// outcome label (see package webhooks).
var WebhookOutcomes = []string{"delivered", "retry", "failed"}

// WebhookStats is the state of the outbox at a scrape.
type WebhookStats struct {
	ByStatus         map[string]int64 // deliveries by status
	OldestPendingAge float64          // seconds; 0 when none is pending
}

// WebhookAttempt counts one delivery attempt with outcome (one of
// WebhookOutcomes).
func (m *Metrics) WebhookAttempt(outcome string) {
	m.set.GetOrCreateCounter(`keygate_webhook_attempts_total{outcome="` + outcome + `"}`).Inc()
}

// SetWebhookStats turns on the webhook series: attempts by outcome (at zero
// until counted), and, read by f on every scrape, deliveries by status and
// the age of the oldest pending one. Call it once.
func (m *Metrics) SetWebhookStats(f func() (WebhookStats, error)) {
	for _, o := range WebhookOutcomes {
		m.set.GetOrCreateCounter(`keygate_webhook_attempts_total{outcome="` + o + `"}`)
	}
	m.set.RegisterMetricsWriter(func(w io.Writer) {
		st, err := f()
		if err != nil {
			return
		}
		statuses := make([]string, 0, len(st.ByStatus))
		for s := range st.ByStatus {
			statuses = append(statuses, s)
		}
		sort.Strings(statuses)
		vm.WriteMetadataIfNeeded(w, "keygate_webhook_deliveries", "gauge")
		for _, s := range statuses {
			fmt.Fprintf(w, "keygate_webhook_deliveries{status=%q} %d\n", s, st.ByStatus[s])
		}
		vm.WriteMetadataIfNeeded(w, "keygate_webhook_oldest_pending_age_seconds", "gauge")
		fmt.Fprintf(w, "keygate_webhook_oldest_pending_age_seconds %g\n", st.OldestPendingAge)
	})
}
