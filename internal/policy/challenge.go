package policy

import (
	"net/http"
	"net/netip"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/challenge"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
)

// DefaultChallengeDifficulty is a challenge rule's proof of work when it
// names none: about 65,000 hashes, well under a second in a browser's
// worker, and a real cost to a fleet that makes millions of requests.
const DefaultChallengeDifficulty = 16

// Challenger is the policy's browser challenge (nil when no rule
// challenges): the page and verify endpoint the front ends serve, and the
// clearance check Decide makes.
func (p *Policy) Challenger() *challenge.Challenger { return p.challenger }

func (c *compiler) compileChallengeRule(r *rule, rc *config.Rule) {
	r.difficulty = DefaultChallengeDifficulty
	if rc.Challenge != nil {
		if r.action != decision.Challenge {
			c.errf(rc.Challenge.Pos, "", "rule %q: challenge settings need action: challenge", r.name)
		}
		if d := rc.Challenge.Difficulty; d != 0 {
			if d < 1 || d > 32 {
				c.errf(rc.Challenge.Pos, "16 takes a browser well under a second; each step doubles it", "rule %q: difficulty must be 1 to 32, not %d", r.name, d)
			}
			r.difficulty = d
		}
	}
	if r.action == decision.Challenge && c.p.challenger == nil && !c.challengeFailed {
		c.compileChallenger()
	}
}

// compileChallenger loads (or makes) the key and builds the challenger.
func (c *compiler) compileChallenger() {
	cc := c.cfg.Challenge
	if cc == nil {
		cc = &config.Challenge{}
	}
	keyFile := cc.KeyFile.Value
	if keyFile == "" {
		keyFile = "challenge.key"
	}
	key, err := challenge.LoadOrCreateKeyFile(c.path(keyFile))
	if err != nil {
		c.errf(cc.KeyFile.Pos, "set challenge.key_file to a file warden may create (mode 0600), shared by every replica", "challenge: %v", err)
		c.challengeFailed = true
		return
	}
	ring, err := challenge.NewKeyring(key)
	if err != nil {
		c.errf(cc.Pos, "", "challenge: %v", err)
		c.challengeFailed = true
		return
	}
	opts := &c.p.Canonical
	ch, err := challenge.New(challenge.Config{
		Keys:         ring,
		ClearanceTTL: cc.ClearanceTTL.Duration,
		CookieName:   cc.CookieName.Value,
		Contact:      c.cfg.Refusals.Contact,
		// The clearance is bound to the client the rules judge, behind
		// trusted proxies too.
		ClientIP: func(r *http.Request) (netip.Addr, bool) {
			var req canonical.Request
			if err := canonical.FillFrom(&req, r, opts); err != nil {
				return netip.Addr{}, false
			}
			return req.ClientIP, true
		},
	})
	if err != nil {
		c.errf(cc.Pos, "", "challenge: %v", err)
		c.challengeFailed = true
		return
	}
	c.p.challenger = ch
}

// checkChallenge decides a challenge rule: a valid clearance lets the
// request go on to the next rule; none, or one that does not verify, is a
// challenge (the front end serves a browser the page, anyone else the
// refusal with a hint).
func (r *rule) checkChallenge(ctx *evalCtx) (decision.Decision, string, bool) {
	st := ctx.p.challenger.Check(ctx.req.Header, ctx.req.ClientIP, ctx.now, r.difficulty)
	switch st.State {
	case challenge.StateValid:
		return decision.Decision{}, "valid", false
	case challenge.StateFailed:
		d := refusal(r, decision.ChallengeFailed, "the security check could not be confirmed: "+st.Reason.Text())
		d.Action = decision.Challenge
		d.Difficulty = r.difficulty
		d.ChallengeState = "failed: " + st.Reason.Code()
		d.Detail = challenge.Hint()
		return d, d.ChallengeState, true
	}
	d := refusal(r, decision.ChallengeRequired, "this page asks browsers to pass a quick security check first")
	d.Action = decision.Challenge
	d.Difficulty = r.difficulty
	d.ChallengeState = "none"
	d.Detail = challenge.Hint()
	return d, "none", true
}
