package policy

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/expr"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/match/geo"
	"github.com/warden-gateway/warden/internal/match/referer"
	"github.com/warden-gateway/warden/internal/match/useragent"
)

// geoSources are the databases country and ASN rules read.
type geoSources struct {
	country geo.Source
	asn     geo.Source
	// missing names a database that could not be opened under
	// on_missing: open; its rules never match.
	missing string
}

// compileGeo opens the databases named in the config. With no country_db,
// the embedded table answers country rules. A database that cannot be read
// is a compile error (the policy does not serve) unless on_missing is
// "open", where rules that need it simply do not match.
func (c *compiler) compileGeo() {
	g := &c.cfg.Geo
	open := false
	switch g.OnMissing.Value {
	case "", "closed":
	case "open":
		open = true
	default:
		c.errf(g.OnMissing.Pos, "", "geo.on_missing must be closed or open, not %q", g.OnMissing.Value)
	}
	load := func(s config.Scalar, what string) geo.Source {
		if s.Value == "" {
			return nil
		}
		log := c.log
		db, err := geo.OpenReloading(c.path(s.Value), geo.ReloadOptions{Interval: g.ReloadInterval.Duration, OnError: func(path string, err error) {
			log.Error("geo database reload failed; the last good copy stays in use", "file", path, "error", err.Error())
		}})
		if err != nil {
			if open {
				c.p.geo.missing = what + " (" + err.Error() + ")"
				return nil
			}
			c.errf(s.Pos, "fix the path, or set geo.on_missing: open", "geo.%s: %v", what, err)
			return nil
		}
		c.p.starters = append(c.p.starters, db.Start)
		return db
	}
	c.p.geo.country = load(g.CountryDB, "country_db")
	if g.CountryDB.Value == "" {
		c.p.geo.country = geo.Default()
	}
	c.p.geo.asn = load(g.ASNDB, "asn_db")
}

// countryCond matches the client's country. For "not_country" (an allow
// list) an unknown country matches too: when warden cannot tell, an allow
// list refuses.
type countryCond struct {
	codes []string
	not   bool
}

func (g countryCond) match(ctx *evalCtx) bool {
	src := ctx.p.geo.country
	if src == nil {
		return false
	}
	code, ok := src.Country(ctx.req.ClientIP)
	if !ok {
		return g.not
	}
	return slices.Contains(g.codes, code) != g.not
}

func (g countryCond) describe() string {
	if g.not {
		return "not_country"
	}
	return "country"
}

type asnCond struct{ asns []uint32 }

func (a asnCond) match(ctx *evalCtx) bool {
	src := ctx.p.geo.asn
	if src == nil {
		return false
	}
	n, _, ok := src.ASN(ctx.req.ClientIP)
	return ok && slices.Contains(a.asns, n)
}

func (a asnCond) describe() string { return "asn" }

func (c *compiler) compileGeoConds(r *rule, w *config.When) {
	codes := func(l []config.Scalar) []string {
		var out []string
		for _, s := range l {
			v := strings.ToUpper(strings.TrimSpace(s.Value))
			if len(v) != 2 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z' {
				c.errf(s.Pos, "use ISO 3166-1 alpha-2 codes such as DE or US", "rule %q: %q is not a country code", r.name, s.Value)
				continue
			}
			if v == "ZZ" || v == "XX" {
				c.errf(s.Pos, "", "rule %q: %q means unknown, not a country", r.name, s.Value)
				continue
			}
			out = append(out, v)
		}
		return out
	}
	if len(w.Country) > 0 {
		r.conds = append(r.conds, countryCond{codes: codes(w.Country)})
	}
	if len(w.NotCountry) > 0 {
		r.conds = append(r.conds, countryCond{codes: codes(w.NotCountry), not: true})
	}
	if len(w.ASN) > 0 {
		if c.cfg.Geo.ASNDB.Value == "" {
			c.errf(w.ASN[0].Pos, "set geo.asn_db to a GeoLite2-ASN, DB-IP or IPinfo ASN database", "rule %q: asn rules need an ASN database", r.name)
		}
		var asns []uint32
		for _, s := range w.ASN {
			v := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s.Value)), "AS")
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 {
				c.errf(s.Pos, "", "rule %q: %q is not an AS number", r.name, s.Value)
				continue
			}
			asns = append(asns, uint32(n))
		}
		r.conds = append(r.conds, asnCond{asns: asns})
	}
}

// compileConds adapts the matcher families that live in their own packages.
func (c *compiler) compileConds(r *rule, rc *config.Rule) {
	w := &rc.When
	c.compileGeoConds(r, w)
	if ua := w.UserAgent; ua != nil {
		c.compileUA(r, ua)
	}
	if len(w.RefererNotIn) > 0 {
		if v := c.compileReferers(r, w.RefererNotIn); v != nil {
			r.conds = append(r.conds, refererCond{valid: v})
		}
	}
	if len(w.OriginNotIn) > 0 {
		if v := c.compileReferers(r, w.OriginNotIn); v != nil {
			r.conds = append(r.conds, refererCond{valid: v, origin: true})
		}
	}
	if rc.Expr.Value != "" {
		prog, err := expr.Compile(rc.Expr.Value)
		if err != nil {
			c.errf(rc.Expr.Pos, "", "rule %q: expr: %v", r.name, err)
		} else {
			refuses := r.action != decision.Allow || rc.Require != nil
			r.conds = append(r.conds, exprCond{prog: prog, onFailure: refuses})
			if prog.UsesPrincipal() {
				r.needsIdentity = true
			}
		}
	}
	if w.Authenticated != nil {
		r.conds = append(r.conds, authCond{want: *w.Authenticated})
		r.needsIdentity = true
	}
	c.compileBotCond(r, w)
}

// exprCond is a CEL expression rule. Expressions are type-checked when the
// policy compiles; one that still fails at run time (a missing claim) takes
// the safe side: it matches in a rule that refuses and does not match in a
// rule that allows.
type exprCond struct {
	prog      *expr.Program
	onFailure bool
}

func (e exprCond) match(ctx *evalCtx) bool {
	act := expr.Activation{Request: ctx.req}
	if e.prog.UsesClient() {
		act.Client.IP = ctx.req.ClientIP
		if src := ctx.p.geo.country; src != nil {
			act.Client.Country, _ = src.Country(ctx.req.ClientIP)
		}
		if src := ctx.p.geo.asn; src != nil {
			act.Client.ASN, _, _ = src.ASN(ctx.req.ClientIP)
		}
	}
	if e.prog.UsesPrincipal() {
		act.Principal = ctx.identity().Principal
	}
	ok, err := e.prog.Eval(&act)
	if err != nil {
		return e.onFailure
	}
	return ok
}

func (e exprCond) describe() string { return "expr " + e.prog.Source() }

type authCond struct{ want bool }

func (a authCond) match(ctx *evalCtx) bool {
	return (ctx.identity().Principal != nil) == a.want
}
func (a authCond) describe() string { return "authenticated" }

func (c *compiler) compileIdentity() {
	id := &c.cfg.Identity
	if ak := id.APIKeys; ak != nil {
		c.checkHeaderName(ak.Pos, "identity.api_keys.header", ak.Header)
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
	if j := id.JWT; j != nil {
		jc := identity.JWTConfig{
			JWKSFile:        c.path(j.JWKSFile.Value),
			JWKSURL:         j.JWKSURL.Value,
			Issuer:          j.Issuer.Value,
			Audiences:       scalars(j.Audiences),
			Algorithms:      scalars(j.Algorithms),
			Leeway:          j.Leeway.Duration,
			RolesClaim:      j.RolesClaim.Value,
			ScopesClaim:     j.ScopesClaim.Value,
			SubjectClaim:    j.Subject.Value,
			RefreshInterval: j.Refresh.Duration,
			Logger:          c.log,
		}
		a, err := identity.NewJWT(jc)
		if err != nil {
			c.errf(j.Pos, "", "identity.jwt: %v", err)
		} else {
			c.p.identity = append(c.p.identity, a)
			c.p.starters = append(c.p.starters, a.Start)
			if jc.JWKSURL != "" {
				c.p.primers = append(c.p.primers, a.Refresh)
			}
		}
	}
	if h := id.Htpasswd; h != nil {
		roles := map[string][]string{}
		for user, rs := range h.Roles {
			roles[user] = scalars(rs)
		}
		if h.File.Value == "" {
			c.errf(h.Pos, "", "identity.htpasswd: file is required")
		} else {
			a, err := identity.NewHtpasswd(c.path(h.File.Value), identity.HtpasswdOptions{AllowWeakHashes: h.AllowWeakHashes, Roles: roles, Realm: h.Realm, Logger: c.log})
			if err != nil {
				c.errf(h.File.Pos, "", "identity.htpasswd: %v", err)
			} else {
				c.p.identity = append(c.p.identity, a)
				c.p.starters = append(c.p.starters, a.Start)
			}
		}
	}
	if h := id.Headers; h != nil {
		c.checkHeaderName(h.Pos, "identity.headers.user", h.UserHeader)
		c.checkHeaderName(h.Pos, "identity.headers.groups", h.GroupsHeader)
		c.checkHeaderName(h.Pos, "identity.headers.email", h.EmailHeader)
		if len(c.cfg.TrustedProxies) == 0 {
			c.errf(h.Pos, "list the authenticating proxy under trusted_proxies", "identity.headers: no trusted_proxies, so no identity header would ever be believed")
		}
		a := identity.NewHeaders(identity.HeaderConfig{UserHeader: h.UserHeader, GroupsHeader: h.GroupsHeader, EmailHeader: h.EmailHeader})
		c.p.identity = append(c.p.identity, a)
		c.p.identityHeaders = a.HeaderNames()
	}
	if cc := id.ClientCert; cc != nil {
		roles := map[string][]string{}
		for name, rs := range cc.Roles {
			roles[name] = scalars(rs)
		}
		if cc.CAFile.Value == "" {
			c.errf(cc.Pos, "", "identity.client_cert: ca_file is required")
		} else if a, err := identity.NewClientCert(c.path(cc.CAFile.Value), roles); err != nil {
			c.errf(cc.CAFile.Pos, "", "identity.client_cert: %v", err)
		} else {
			// First in the chain: a certificate is proven in the
			// handshake, before any header is read, and a client that
			// presents one means to be known by it.
			c.p.identity = append(identity.Chain{a}, c.p.identity...)
		}
	}
}

// checkHeaderName refuses header names the gateway would never see: names
// with '_' are dropped before any rule (CGI reads X_User as X-User), so
// credentials sent in one would always fail.
func (c *compiler) checkHeaderName(pos config.Pos, key, name string) {
	if name == "" {
		return
	}
	if strings.Contains(name, "_") {
		c.errf(pos, "use '-' instead, as in "+strings.ReplaceAll(name, "_", "-"), "%s: header name %q contains '_'; warden drops such headers before any rule", key, name)
		return
	}
	for _, ch := range name {
		if !(ch == '-' || ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z') {
			c.errf(pos, "", "%s: %q is not a header name", key, name)
			return
		}
	}
}

// IdentityHeaders are the headers an upstream authenticator sets; the
// gateway strips them from requests of untrusted peers before forwarding.
func (p *Policy) IdentityHeaders() []string { return p.identityHeaders }

// Prime fetches what the policy needs from the network before it serves
// (JWKS URLs), so a new or reloaded policy does not answer 503 while its
// first fetch is under way. Errors are returned for the log; the policy can
// still serve, and rules that need the missing keys answer 503 until the
// background refresh succeeds.
func (p *Policy) Prime(ctx context.Context) error {
	var errs []error
	for _, f := range p.primers {
		if err := f(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Start runs the policy's background work (database reloads, key refresh)
// until ctx ends. Decide never waits for it.
func (p *Policy) Start(ctx context.Context) {
	for _, f := range p.starters {
		f(ctx)
	}
}

// uaCond matches the User-Agent header against a compiled pattern set.
type uaCond struct{ set *useragent.Set }

func (u uaCond) match(ctx *evalCtx) bool {
	_, ok := u.set.Match(ctx.req.Header.Get("User-Agent"))
	return ok
}

func (u uaCond) describe() string { return "user_agent" }

func (c *compiler) compileUA(r *rule, ua *config.UAMatch) {
	var pats []useragent.Pattern
	var pos []config.Pos
	add := func(kind string, l []config.Scalar) {
		for _, s := range l {
			pats = append(pats, useragent.Pattern{Kind: kind, Value: s.Value, CaseSensitive: ua.CaseSensitive})
			pos = append(pos, s.Pos)
		}
	}
	add(useragent.KindSubstring, ua.Substring)
	add(useragent.KindGlob, ua.Glob)
	add(useragent.KindRegex, ua.Regex)
	set, err := useragent.Compile(pats)
	if err != nil {
		// Find the pattern at fault, to report its own line.
		for i := range pats {
			if _, e := useragent.Compile(pats[i : i+1]); e != nil {
				c.errf(pos[i], "", "rule %q: user_agent: %v", r.name, e)
				return
			}
		}
		c.errf(ua.Pos, "", "rule %q: user_agent: %v", r.name, err)
		return
	}
	set.MatchEmpty = ua.Empty
	if len(pats) == 0 && !ua.Empty {
		c.errf(ua.Pos, "give substring, glob, regex or empty: true", "rule %q: empty user_agent matcher", r.name)
	}
	r.conds = append(r.conds, uaCond{set: set})
}

// refererCond matches a request whose Referer (or Origin) is NOT among the
// valid ones: nginx's $invalid_referer. Only the first header counts, as in
// nginx.
type refererCond struct {
	valid  *referer.Valid
	origin bool
}

func (rc refererCond) match(ctx *evalCtx) bool {
	name := "Referer"
	if rc.origin {
		name = "Origin"
	}
	vals := ctx.req.Header[name]
	v, present := "", len(vals) > 0
	if present {
		v = vals[0]
	}
	if rc.origin {
		return !rc.valid.ValidOrigin(v, present)
	}
	return !rc.valid.Valid(v, present)
}

func (rc refererCond) describe() string {
	if rc.origin {
		return "origin_not_in"
	}
	return "referer_not_in"
}

func (c *compiler) compileReferers(r *rule, l []config.Scalar) *referer.Valid {
	names := scalars(c.cfg.ServerNames)
	if len(names) == 0 {
		names = []string{""} // nginx's default server_name is empty
	}
	v, err := referer.Compile(scalars(l), names)
	if err != nil {
		c.errf(l[0].Pos, "entries are none, blocked, server_names, host names, *.example.com, example.* or ~regex", "rule %q: %v", r.name, err)
		return nil
	}
	return v
}
