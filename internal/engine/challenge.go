package engine

import (
	"net/http"

	"github.com/warden-gateway/warden/internal/challenge"
	"github.com/warden-gateway/warden/internal/decision"
)

// The browser challenge at the edge: a front end with a ResponseWriter
// serves a browser the challenge page (and its verify endpoint); any other
// client gets the refusal, whose reason says what would let it in.

// VerifyEndpoint is the challenge's verify endpoint when r is addressed to
// it (nil otherwise). It is served before any rule: a challenge rule on "/"
// must not challenge the answer to its own challenge.
func (e *Engine) VerifyEndpoint(r *http.Request) http.Handler {
	rt := e.rt.Load()
	if rt == nil {
		return nil
	}
	ch := rt.Policy.Challenger()
	if ch == nil || r.URL.Path != ch.VerifyPath() {
		return nil
	}
	return ch
}

// ServeChallenge answers a challenged request from a browser with the
// challenge page and reports true; for any other client it does nothing and
// reports false (the front end renders the refusal).
func (e *Engine) ServeChallenge(w http.ResponseWriter, r *http.Request, o *Outcome) bool {
	if o.Decision.Action != decision.Challenge || o.Runtime == nil || !challenge.WantsPage(r) {
		return false
	}
	ch := o.Runtime.Policy.Challenger()
	if ch == nil {
		return false
	}
	w.Header().Set("X-Request-Id", o.ID)
	ch.Serve(w, r, o.Request.ClientIP, o.Decision.Difficulty, o.Now)
	o.Status = http.StatusForbidden
	return true
}
