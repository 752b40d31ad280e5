package config

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Webhooks configures event delivery to HTTP endpoints (SPEC §13).
type Webhooks struct {
	Endpoints []WebhookEndpoint `config:"endpoints"`
	// ExpiryNotice lists how long before expires_at an api_key.expiring
	// event goes out, once per notice per key.
	ExpiryNotice []time.Duration `config:"expiry_notice"`
	// MaxAge is how long a delivery is retried before it is marked failed.
	MaxAge time.Duration `config:"max_age"`
	// RetryDelays are the waits after the 1st, 2nd, … failed attempt; the
	// last one repeats until MaxAge.
	RetryDelays []time.Duration `config:"retry_delays"`
	// Timeout bounds one attempt (connect, send, and the answer's status).
	Timeout time.Duration `config:"timeout"`
}

// WebhookEndpoint is one receiver of events.
type WebhookEndpoint struct {
	URL string `json:"url"`
	// Secret is the signing secret: "whsec_" and base64 (Standard Webhooks).
	Secret string `json:"secret"`
	// Events lists the event types sent; empty means all.
	Events []string `json:"events"`
}

// WebhookEvents are the event types an endpoint may name (SPEC §13):
// every audit action, the expiry events and quota.exhausted.
var WebhookEvents = []string{
	"api_key.created", "api_key.updated", "api_key.archived", "api_key.deleted", "api_key.imported", "api_key.rolled",
	"api_key.expiring", "api_key.expired",
	"user.upserted", "user.blocked", "user.unblocked", "user.deleted",
	"org.upserted", "org.deleted", "org.member_added", "org.member_removed",
	"quota.exhausted",
}

// DecodeWebhookSecret returns the key bytes of a "whsec_<base64>" secret.
func DecodeWebhookSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, fmt.Errorf("must start with whsec_ (whsec_ and base64, as in Standard Webhooks)")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("is not whsec_ followed by standard base64")
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("must decode to 24 to 64 bytes, got %d", len(key))
	}
	return key, nil
}

// toDurations is toStrings for durations.
func toDurations(raw any) ([]time.Duration, int, string) {
	list, i, msg := toStrings(raw)
	if msg != "" {
		return nil, i, msg
	}
	out := make([]time.Duration, 0, len(list))
	for i, s := range list {
		d, msg := toDuration(s)
		if msg != "" {
			return nil, i, msg
		}
		out = append(out, d)
	}
	return out, -1, ""
}

// toEndpoints accepts a YAML list of {url, secret, events}, or (from env)
// the same list as one JSON string.
func toEndpoints(raw any) ([]WebhookEndpoint, string) {
	if s, ok := raw.(string); ok {
		var list []any
		if err := json.Unmarshal([]byte(s), &list); err != nil {
			return nil, "expected a JSON list of {url, secret, events}"
		}
		raw = list
	}
	items, ok := raw.([]any)
	if !ok {
		return nil, "expected a list of {url, secret, events}, got " + describe(raw)
	}
	out := make([]WebhookEndpoint, 0, len(items))
	for i, item := range items {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Sprintf("[%d]: expected {url, secret, events}, got %s", i, describe(item))
		}
		var ep WebhookEndpoint
		for k, v := range m {
			var msg string
			switch k {
			case "url":
				ep.URL, msg = toString(v)
			case "secret":
				ep.Secret, msg = toString(v)
			case "events":
				ep.Events, _, msg = toStrings(v)
			default:
				msg = "unknown key " + strconv.Quote(k) + " (url, secret or events)"
			}
			if msg != "" {
				return nil, fmt.Sprintf("[%d].%s: %s", i, k, msg)
			}
		}
		if ep.Events == nil {
			ep.Events = []string{}
		}
		out = append(out, ep)
	}
	return out, ""
}

// endpointEnv matches the per-endpoint overrides, such as
// KEYGATE_WEBHOOKS_ENDPOINTS_0_SECRET: list items have no key of their own,
// so the item's index (from 0) stands in.
var endpointEnv = regexp.MustCompile(`^KEYGATE_WEBHOOKS_ENDPOINTS_([0-9]+)_(URL|SECRET|EVENTS)$`)

// applyEndpointEnv sets endpoint fields from their env overrides, so that
// secrets can stay out of the YAML file.
func applyEndpointEnv(c *Config, env map[string]string) []Problem {
	var problems []Problem
	names := make([]string, 0)
	for name := range env {
		if endpointEnv.MatchString(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		m := endpointEnv.FindStringSubmatch(name)
		i, _ := strconv.Atoi(m[1])
		if i >= len(c.Webhooks.Endpoints) {
			problems = append(problems, Problem{"webhooks.endpoints", fmt.Sprintf("%s names endpoint %d, but only %d are configured", name, i, len(c.Webhooks.Endpoints))})
			continue
		}
		ep := &c.Webhooks.Endpoints[i]
		switch v := env[name]; m[2] {
		case "URL":
			ep.URL = v
		case "SECRET":
			ep.Secret = v
		case "EVENTS":
			ep.Events, _, _ = toStrings(v)
		}
	}
	return problems
}

func (c *Config) webhookProblems(v *checker) {
	w := c.Webhooks
	for i, ep := range w.Endpoints {
		key := fmt.Sprintf("webhooks.endpoints[%d]", i)
		if u, err := url.Parse(ep.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(key+".url", "%q is not an http(s) URL", ep.URL)
		}
		if _, err := DecodeWebhookSecret(ep.Secret); err != nil {
			v.add(key+".secret", "%s", err) // never the secret itself
		}
		for j, e := range ep.Events {
			if !slices.Contains(WebhookEvents, e) {
				v.add(fmt.Sprintf("%s.events[%d]", key, j), "%q is not an event type (%s)", e, strings.Join(WebhookEvents, ", "))
			}
		}
	}
	for i, d := range w.ExpiryNotice {
		if d <= 0 {
			v.add(fmt.Sprintf("webhooks.expiry_notice[%d]", i), "must be a positive duration, got %s", formatDuration(d))
		}
	}
	v.positive("webhooks.max_age", w.MaxAge)
	v.positive("webhooks.timeout", w.Timeout)
	if len(w.RetryDelays) == 0 {
		v.add("webhooks.retry_delays", "must list at least one delay")
	}
	for i, d := range w.RetryDelays {
		if d <= 0 {
			v.add(fmt.Sprintf("webhooks.retry_delays[%d]", i), "must be a positive duration, got %s", formatDuration(d))
		}
	}
}

// formatEndpoints writes endpoints for the settings page, secrets redacted.
func formatEndpoints(eps []WebhookEndpoint) string {
	parts := make([]string, len(eps))
	for i, ep := range eps {
		secret := ""
		if ep.Secret != "" {
			secret = Redaction
		}
		parts[i] = fmt.Sprintf("{url: %q, secret: %q, events: %s}", ep.URL, secret, formatValue(ep.Events))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func formatDurations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = formatDuration(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
