package policy

import (
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
)

// geoSources are the databases country and ASN rules read.
type geoSources struct{}

func (c *compiler) compileGeo() {}

// compileConds adapts the matcher families that live in their own packages.
func (c *compiler) compileConds(r *rule, rc *config.Rule) {
	w := &rc.When
	notYet := func(pos config.Pos, what string) {
		c.errf(pos, "", "rule %q: %s rules are not supported in this build", r.name, what)
	}
	if len(w.Country) > 0 || len(w.NotCountry) > 0 || len(w.ASN) > 0 {
		notYet(w.Pos, "country/asn")
	}
	if w.UserAgent != nil {
		notYet(w.UserAgent.Pos, "user_agent")
	}
	if len(w.RefererNotIn) > 0 || len(w.OriginNotIn) > 0 {
		notYet(w.Pos, "referer")
	}
	if rc.Expr.Value != "" {
		notYet(rc.Expr.Pos, "expr")
	}
	if w.Authenticated != nil {
		r.conds = append(r.conds, authCond{want: *w.Authenticated})
		r.needsIdentity = true
	}
}

type authCond struct{ want bool }

func (a authCond) match(ctx *evalCtx) bool {
	return (ctx.identity().Principal != nil) == a.want
}
func (a authCond) describe() string { return "authenticated" }

func (c *compiler) compileIdentity() {
	id := &c.cfg.Identity
	if ak := id.APIKeys; ak != nil {
		a := &identity.APIKeys{Header: ak.Header, Bearer: ak.Bearer == nil || *ak.Bearer}
		seen := map[string]bool{}
		for _, k := range ak.Keys {
			h, err := identity.ParseKeyHash(k.SHA256.Value)
			if err != nil {
				c.errf(k.SHA256.Pos, "", "identity.api_keys: %v", err)
				continue
			}
			if k.ID.Value == "" {
				c.errf(k.Pos, "", "identity.api_keys: key without id")
			}
			if seen[k.ID.Value] {
				c.errf(k.ID.Pos, "", "identity.api_keys: duplicate key id %q", k.ID.Value)
			}
			seen[k.ID.Value] = true
			a.Keys = append(a.Keys, identity.APIKey{ID: k.ID.Value, SHA256: h, Roles: scalars(k.Roles), Scopes: scalars(k.Scopes)})
		}
		if len(a.Keys) == 0 && ak.File.Value == "" {
			c.errf(ak.Pos, "", "identity.api_keys: no keys")
		}
		c.p.identity = append(c.p.identity, a)
	}
	if id.JWT != nil {
		c.errf(id.JWT.Pos, "", "identity.jwt is not supported in this build")
	}
	if id.Htpasswd != nil {
		c.errf(id.Htpasswd.Pos, "", "identity.htpasswd is not supported in this build")
	}
	if id.Headers != nil {
		c.errf(id.Headers.Pos, "", "identity.headers is not supported in this build")
	}
}
