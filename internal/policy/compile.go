package policy

import (
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/match/ipmatch"
	"github.com/warden-gateway/warden/internal/match/pathmatch"
)

// compiler collects every error of a policy, each with its position.
type compiler struct {
	cfg     *config.Config
	log     *slog.Logger
	baseDir string
	errs    config.Errors
	lists   map[string]*ipmatch.Set
	p       *Policy
	index   []string // see indexNames
	// challengeFailed, botsFailed: the challenger or the bot identifier
	// could not be built (said once).
	challengeFailed, botsFailed bool
}

func (c *compiler) errf(pos config.Pos, hint, format string, args ...any) {
	c.errs = append(c.errs, &config.Error{Pos: pos, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// identityConfigured reports whether any authenticator was configured, even
// one that failed to load (its own error says why; "no authenticator" would
// only mislead).
func (c *compiler) identityConfigured() bool {
	id := &c.cfg.Identity
	return id.APIKeys != nil || id.JWT != nil || id.Htpasswd != nil || id.Headers != nil || id.ClientCert != nil
}

// path resolves a file named in the config relative to the config's folder.
func (c *compiler) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.baseDir, p)
}

// Options are what a caller adds to the config when compiling.
type Options struct {
	// Logger receives what the policy's background work reports: a JWKS
	// URL that cannot be fetched, a GeoIP database that fails to reload, a
	// password file that no longer parses. Nil: discarded.
	Logger *slog.Logger
}

// Compile turns a config into a Policy. Every mistake is reported, each with
// file:line; a policy with any error is never returned, so it never serves.
func Compile(cfg *config.Config) (*Policy, error) { return CompileWith(cfg, Options{}) }

// CompileWith is Compile with options.
func CompileWith(cfg *config.Config, opt Options) (*Policy, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	c := &compiler{cfg: cfg, log: opt.Logger, baseDir: filepath.Dir(cfg.Pos.File), lists: map[string]*ipmatch.Set{}, p: &Policy{Source: cfg.Pos.File}}
	c.compileCanonical()
	c.compileLists()
	c.compileIdentity()
	c.compileGeo()
	c.compileBans()
	switch cfg.Default.Value {
	case "", "allow":
	case "deny":
		c.p.defaultDeny = true
	default:
		c.errf(cfg.Default.Pos, "", "default must be allow or deny, not %q", cfg.Default.Value)
	}
	names := map[string]int{}
	for i := range cfg.Rules {
		r := c.compileRule(i, &cfg.Rules[i])
		if prev, dup := names[r.name]; dup {
			c.errf(cfg.Rules[i].Name.Pos, "give each rule its own name", "rule name %q already used at line %d", r.name, prev)
		}
		names[r.name] = r.line
		c.p.rules = append(c.p.rules, r)
	}
	if len(c.errs) == 0 {
		c.checkShadowing()
	}
	if len(c.errs) > 0 {
		return nil, c.errs.Err()
	}
	for i := range c.p.rules {
		r := &c.p.rules[i]
		if len(r.paths) == 0 {
			c.p.index.AddAlways(i)
			continue
		}
		for j := range r.paths {
			c.p.index.Add(i, &r.paths[j])
		}
	}
	return c.p, nil
}

func (c *compiler) compileCanonical() {
	cfg := c.cfg
	c.p.Canonical.Path = canonical.PathOptions{
		AllowEncodedSlash: cfg.Paths.AllowEncodedSlash,
		AllowSemicolon:    cfg.Paths.AllowSemicolon,
		AllowBackslash:    cfg.Paths.AllowBackslash,
	}
	if len(cfg.TrustedProxies) > 0 {
		set := &ipmatch.Set{}
		for _, s := range cfg.TrustedProxies {
			pfx, err := ipmatch.ParsePrefix(s.Value)
			if err != nil {
				c.errf(s.Pos, "", "trusted_proxies: %v", err)
				continue
			}
			set.Add(pfx)
		}
		c.p.Canonical.TrustedProxies = set
	}
	// Forwarded is read as RFC 7239, X-Real-IP as one address, any other
	// header (X-Forwarded-For, True-Client-IP, CF-Connecting-IP) as a
	// comma-separated chain.
	for _, h := range cfg.ClientIPHeaders {
		c.checkHeaderName(h.Pos, "client_ip_headers", h.Value)
		c.p.Canonical.ClientIPHeaders = append(c.p.Canonical.ClientIPHeaders, http.CanonicalHeaderKey(h.Value))
	}
	if len(cfg.ClientIPHeaders) > 0 && len(cfg.TrustedProxies) == 0 {
		c.errf(cfg.ClientIPHeaders[0].Pos, "list the proxies that set them under trusted_proxies", "client_ip_headers are read only from trusted proxies, and none are listed")
	}
}

func (c *compiler) compileLists() {
	for _, name := range sortedKeys(c.cfg.IPLists) {
		l := c.cfg.IPLists[name]
		set := &ipmatch.Set{}
		for _, s := range l.CIDRs {
			pfx, err := ipmatch.ParsePrefix(s.Value)
			if err != nil {
				c.errf(s.Pos, "", "ip_lists.%s: %v", name, err)
				continue
			}
			set.Add(pfx)
		}
		for _, f := range l.Files {
			for _, err := range ipmatch.LoadFile(c.path(f.Value), set) {
				c.errf(f.Pos, "", "ip_lists.%s: %v", name, err)
			}
		}
		c.lists[name] = set
	}
}

func (c *compiler) ipSet(inline, lists []config.Scalar, key string) (*ipmatch.Set, string) {
	if len(inline) == 0 && len(lists) == 0 {
		return nil, ""
	}
	set := &ipmatch.Set{}
	var src []string
	for _, s := range inline {
		pfx, err := ipmatch.ParsePrefix(s.Value)
		if err != nil {
			c.errf(s.Pos, "", "%s: %v", key, err)
			continue
		}
		set.Add(pfx)
	}
	if len(inline) > 0 {
		src = append(src, "the rule's "+key+" list")
	}
	for _, l := range lists {
		named, ok := c.lists[l.Value]
		if !ok {
			c.errf(l.Pos, c.knownLists(), "%s: no ip list named %q", key, l.Value)
			continue
		}
		if len(inline) == 0 && len(lists) == 1 {
			return named, "ip list " + l.Value // shared, not copied
		}
		set.AddSet(named)
		src = append(src, "ip list "+l.Value)
	}
	return set, strings.Join(src, " + ")
}

func (c *compiler) knownLists() string {
	names := sortedKeys(c.cfg.IPLists)
	if len(names) == 0 {
		return "define it under ip_lists"
	}
	return "known lists: " + strings.Join(names, ", ")
}

var validMethod = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true, "TRACE": true, "CONNECT": true}

// indexNames are the index documents a refusing rule assumes a folder is
// served with: the usual ones and those of this policy's file handlers.
func (c *compiler) indexNames() []string {
	if c.index != nil {
		return c.index
	}
	c.index = slices.Clone(pathmatch.DefaultIndexNames)
	for _, h := range c.cfg.Handle {
		for _, name := range h.Index {
			if n := strings.ToLower(name.Value); n != "" && !strings.Contains(n, "/") && !slices.Contains(c.index, n) {
				c.index = append(c.index, n)
			}
		}
	}
	return c.index
}

func (c *compiler) compileRule(i int, rc *config.Rule) rule {
	r := rule{name: rc.Name.Value, line: rc.Pos.Line}
	if r.name == "" {
		r.name = fmt.Sprintf("rule-%d", i+1)
	}
	// Action.
	switch rc.Action.Value {
	case "allow":
		r.action = decision.Allow
	case "deny":
		r.action = decision.Deny
	case "conceal":
		r.action = decision.Conceal
	case "challenge":
		r.action = decision.Challenge
	case "":
		if rc.Require == nil && rc.RateLimit == nil {
			c.errf(rc.Pos, "add action: allow, deny or conceal", "rule %q has no action", r.name)
		}
		r.gate = true
		r.action = decision.Allow
	default:
		c.errf(rc.Action.Pos, "", "rule %q: action must be allow, deny, conceal or challenge, not %q", r.name, rc.Action.Value)
	}
	// Case sensitivity: rules that can refuse (deny, conceal, require) match
	// case-insensitively, so that "/ADMIN/" cannot dodge them in front of a
	// case-insensitive upstream; plain allow rules match exactly, so that
	// they never let in more than was written.
	refuses := r.action != decision.Allow || rc.Require != nil
	ci := refuses
	w := &rc.When
	if w.Path != nil {
		if w.Path.CaseSensitive != nil {
			ci = !*w.Path.CaseSensitive
		}
		add := func(kind pathmatch.Kind, list []config.Scalar) {
			for _, s := range list {
				pat, err := pathmatch.New(kind, s.Value, ci)
				if err != nil {
					c.errf(s.Pos, "", "rule %q: %v", r.name, err)
					continue
				}
				// A rule that refuses a file refuses every spelling an
				// upstream serves as that file (/wp-login.php/,
				// /wp-login.php/x, /admin/ for /admin/index.html), as a
				// prefix /admin/ already covers /admin. Allow rules match
				// only what is written, so they never let in more; so does
				// a rule with case_sensitive: true, which asks for the
				// literal path (the nginx importer relies on it: to nginx,
				// /admin and /admin/ are different locations).
				pat.Spellings = refuses && ci
				if pat.Spellings {
					pat.IndexNames = c.indexNames()
				}
				r.paths = append(r.paths, pat)
			}
		}
		add(pathmatch.Exact, w.Path.Exact)
		add(pathmatch.Prefix, w.Path.Prefix)
		add(pathmatch.Glob, w.Path.Glob)
		add(pathmatch.Regex, w.Path.Regex)
		if len(r.paths) == 0 && len(c.errs) == 0 {
			c.errf(w.Path.Pos, "give exact, prefix, glob or regex", "rule %q: empty path matcher", r.name)
		}
	}
	for _, m := range w.Methods {
		up := strings.ToUpper(m.Value)
		if !validMethod[up] && !isToken(up) {
			c.errf(m.Pos, "", "rule %q: %q is not an HTTP method", r.name, m.Value)
		}
		r.methods = append(r.methods, up)
	}
	for _, h := range w.Hosts {
		v := strings.ToLower(strings.TrimSuffix(h.Value, "."))
		if strings.HasPrefix(v, "*.") {
			r.hosts = append(r.hosts, hostPattern{suffix: v[1:]})
		} else if strings.ContainsAny(v, "*/ ") || v == "" {
			c.errf(h.Pos, "write example.com or *.example.com", "rule %q: bad host %q", r.name, h.Value)
		} else {
			r.hosts = append(r.hosts, hostPattern{exact: v})
		}
	}
	for _, e := range w.Extensions {
		r.exts = append(r.exts, strings.ToLower(strings.TrimPrefix(e.Value, ".")))
	}
	r.ip, r.ipSrc = c.ipSet(w.IP, w.IPList, "ip")
	r.notIP, r.notSrc = c.ipSet(w.NotIP, w.NotIPList, "not_ip")
	c.compileConds(&r, rc)
	c.compileRateLimit(&r, rc)
	c.compileChallengeRule(&r, rc)
	switch rc.Mode.Value {
	case "", "enforce":
	case "report":
		r.report = true
		if r.action == decision.Allow && rc.Require == nil {
			c.errf(rc.Mode.Pos, "report mode is for rules that refuse (deny, conceal, require)", "rule %q: an allow rule has nothing to report", r.name)
		}
	default:
		c.errf(rc.Mode.Pos, "", "rule %q: mode must be enforce or report, not %q", r.name, rc.Mode.Value)
	}
	if rc.Require != nil {
		q := &requirement{authenticated: rc.Require.Authenticated}
		q.rolesAny = scalars(rc.Require.RolesAny)
		q.rolesAll = scalars(rc.Require.RolesAll)
		q.scopesAny = scalars(rc.Require.ScopesAny)
		q.scopesAll = scalars(rc.Require.ScopesAll)
		q.clientCert = rc.Require.ClientCert
		if q.clientCert && c.cfg.Identity.ClientCert == nil {
			c.errf(rc.Require.Pos, "configure identity.client_cert with the CA that issues them", "rule %q requires a client certificate but none is configured", r.name)
		}
		r.require = q
		r.needsIdentity = true
		if len(c.p.identity) == 0 && !c.identityConfigured() {
			c.errf(rc.Require.Pos, "configure identity: api_keys, jwt, htpasswd or headers", "rule %q requires a caller but no authenticator is configured", r.name)
		}
	}
	// Outcome: status, code, reason.
	r.code = c.defaultCode(&r, rc)
	if rc.Code.Value != "" {
		code := decision.ReasonCode(rc.Code.Value)
		if !code.Known() {
			c.errf(rc.Code.Pos, "see the reason codes in DESIGN.md", "rule %q: unknown code %q", r.name, rc.Code.Value)
		}
		r.code = code
	}
	r.status = r.code.Status()
	if r.action == decision.Allow {
		r.code, r.status = decision.None, 0
	}
	if r.action == decision.Conceal {
		r.code, r.status = decision.NotFound, 404
	}
	if rc.Status != 0 {
		if r.action != decision.Deny {
			c.errf(rc.Pos, "", "rule %q: status only applies to deny", r.name)
		} else if rc.Status < 400 || rc.Status > 599 {
			c.errf(rc.Pos, "", "rule %q: status %d is not a 4xx or 5xx refusal", r.name, rc.Status)
		} else {
			r.status = rc.Status
		}
	}
	r.reason = rc.Reason.Value
	if r.reason == "" {
		r.reason = defaultReason(r.code)
	}
	return r
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, ch := range s {
		if ch < 'A' || ch > 'Z' {
			return false
		}
	}
	return true
}

func scalars(l []config.Scalar) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = s.Value
	}
	return out
}

// defaultCode picks the code a deny rule carries when none is written: the
// most specific matcher family it uses.
func (c *compiler) defaultCode(r *rule, rc *config.Rule) decision.ReasonCode {
	w := &rc.When
	switch {
	case r.action == decision.Conceal:
		return decision.NotFound
	case r.ip != nil:
		return decision.IPBlocked
	case r.notIP != nil:
		return decision.IPNotAllowed
	case len(w.Country) > 0 || len(w.NotCountry) > 0:
		return decision.CountryBlocked
	case len(w.ASN) > 0:
		return decision.ASNBlocked
	case w.UserAgent != nil:
		return decision.UserAgentBlocked
	case len(w.RefererNotIn) > 0 || len(w.OriginNotIn) > 0:
		return decision.HotlinkBlocked
	case rc.Expr.Value != "":
		return decision.PolicyDenied
	}
	return decision.PathForbidden
}

func defaultReason(code decision.ReasonCode) string {
	switch code {
	case decision.IPBlocked:
		return "your IP address is blocked"
	case decision.IPNotAllowed:
		return "your IP address is not on the allow list for this resource"
	case decision.CountryBlocked:
		return "access from your country is blocked"
	case decision.ASNBlocked:
		return "access from your network is blocked"
	case decision.UserAgentBlocked:
		return "your client (user agent) is blocked"
	case decision.HotlinkBlocked:
		return "this resource cannot be linked from another site"
	case decision.PathForbidden:
		return "access to this path is forbidden"
	case decision.PolicyDenied:
		return "a policy rule denies this request"
	case decision.NotFound:
		return "not found"
	case decision.Banned:
		return "your address is temporarily banned"
	}
	return string(code)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
