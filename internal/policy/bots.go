package policy

import (
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/match/bot"
)

// Verified bots. Proving a crawler takes DNS lookups, which the pure
// decision cannot make: the engine asks Bots() before the rules run, only
// when a rule matches on it, and hands the answer in as a fact of the
// request (canonical.Request.VerifiedBot).

// Bots is the policy's bot identifier, or nil when no rule asks.
func (p *Policy) Bots() *bot.Identifier { return p.bots }

type botCond struct{ want bool }

func (b botCond) match(ctx *evalCtx) bool { return (ctx.req.VerifiedBot != "") == b.want }
func (b botCond) describe() string        { return "verified_bot" }

func (c *compiler) compileBotCond(r *rule, w *config.When) {
	if w.VerifiedBot == nil {
		return
	}
	r.conds = append(r.conds, botCond{want: *w.VerifiedBot})
	if c.p.bots != nil || c.botsFailed {
		return
	}
	vb := c.cfg.VerifiedBots
	if vb == nil {
		c.errf(w.Pos, "add verified_bots: { resolver: 127.0.0.1:53 } (and agents for Web Bot Auth)", "rule %q: verified_bot needs a verified_bots section", r.name)
		c.botsFailed = true
		return
	}
	id := &bot.Identifier{}
	if vb.Resolver.Value != "" {
		v, err := bot.NewVerifier(bot.Config{Resolver: &bot.DNSResolver{Server: vb.Resolver.Value}})
		if err != nil {
			c.errf(vb.Resolver.Pos, "", "verified_bots: %v", err)
		}
		id.Crawlers = v
	}
	if len(vb.Agents) > 0 {
		var agents []bot.AgentKeys
		for _, a := range vb.Agents {
			agents = append(agents, bot.AgentKeys{Agent: a.Agent.Value, JWKSFile: c.path(a.JWKSFile.Value)})
		}
		dir, err := bot.LoadDirectory(agents)
		if err != nil {
			c.errf(vb.Agents[0].Pos, "", "verified_bots.agents: %v", err)
		} else {
			id.Signed = &bot.WebBotAuth{Dir: dir}
		}
	}
	if id.Crawlers == nil && id.Signed == nil {
		c.errf(vb.Pos, "give a resolver, agents, or both", "verified_bots: nothing to verify bots with")
		c.botsFailed = true
		return
	}
	c.p.bots = id
}
