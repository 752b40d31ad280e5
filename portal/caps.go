package portal

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/limiter"
	"github.com/keygate/keygate/web"
)

// openLink shows the page of a portal link: a button that posts the token
// back. Only that post consumes the link, so a mail scanner or chat
// unfurler that fetches the URL leaves it usable. The token is not checked
// here: a page that said whether a token is live would be an oracle.
func (p *Portal) openLink(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	if len(token) != web.TokenLen {
		p.message(w, r, http.StatusGone, "This link has expired",
			"Links to this page work once and only for a short time. Go back to the app and open the API keys page again.")
		return
	}
	pg := p.newPage(nil, "Manage your API keys")
	pg.LinkToken = token
	p.render(w, r, http.StatusOK, "open", pg)
}

// createCapped creates a key for the portal user unless that would pass a
// cap: active keys per user (personal) or per org, and creations per user
// per hour. A refusal is a keys.EInvalid error whose message says which cap
// and what to do.
func (p *Portal) createCapped(ctx context.Context, v *visit, in keys.CreateKeyInput) (*keys.Key, string, error) {
	if p.creates != nil {
		l := limiter.Limit{Limit: int64(p.opts.CreatesPerHour), Window: time.Hour}
		if res, _ := p.creates.Allow(ctx, v.user.ID, l); !res.Allowed {
			return nil, "", keys.Errorf(keys.EInvalid, "You can create at most %d keys an hour; try again in %d minutes.",
				p.opts.CreatesPerHour, max(1, int((res.RetryAfter+time.Minute-1)/time.Minute)))
		}
	}
	max, f := p.opts.MaxUserKeys, keys.KeyFilter{UserID: v.user.ID, Type: keys.TypePersonal}
	if in.Type == keys.TypeOrg {
		max, f = p.opts.MaxOrgKeys, keys.KeyFilter{OrgID: in.OrgID, Type: keys.TypeOrg}
	}
	if max <= 0 {
		return p.svc.CreateKey(v.actor(ctx), in)
	}
	// One creation at a time, so that two at once cannot both pass the cap.
	p.createMu.Lock()
	defer p.createMu.Unlock()
	f.Status, f.Limit = "active", min(max, 1000)
	ks, _, err := p.svc.ListKeys(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("count active keys: %w", err)
	}
	if len(ks) >= max {
		whose := "You have"
		if in.Type == keys.TypeOrg {
			whose = "The organization has"
		}
		return nil, "", keys.Errorf(keys.EInvalid, "%s %d active keys, the most allowed here. Delete one to create another.", whose, max)
	}
	return p.svc.CreateKey(v.actor(ctx), in)
}

// limitsText says in words what caps apply to a section with n active keys
// listed (more when more is set).
func (p *Portal) limitsText(scope string, n int, more bool) string {
	max := p.opts.MaxUserKeys
	if scope == "org" {
		max = p.opts.MaxOrgKeys
	}
	var s string
	if max > 0 {
		count := fmt.Sprint(n)
		if more {
			count = fmt.Sprintf("more than %d", n)
		}
		s = fmt.Sprintf("Up to %d active keys (%s now).", max, count)
	}
	if p.opts.CreatesPerHour > 0 {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("You can create up to %d keys an hour.", p.opts.CreatesPerHour)
	}
	return s
}
