package portal

import "net/http"

// linkRefused tells a visitor why their link did not sign them in: used
// already (opened twice, or by a mail scanner before them), expired, or
// not a link at all. Each says what to do next; none says more than the
// link's state, which only its holder can ask about.
func (p *Portal) linkRefused(w http.ResponseWriter, r *http.Request, state linkState) {
	switch state {
	case linkUsed:
		p.message(w, r, http.StatusGone, "This link was already used",
			"Each link signs you in once. If that was not you, or your session has ended, go back to the app and open the API keys page again for a new link.")
	case linkExpired:
		p.message(w, r, http.StatusGone, "This link has expired",
			"Links to this page work only for a short time. Go back to the app and open the API keys page again for a new link.")
	default:
		p.message(w, r, http.StatusNotFound, "This link is not valid",
			"Check that the whole link was copied, or go back to the app and open the API keys page again for a new link.")
	}
}
