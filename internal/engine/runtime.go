package engine

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/authz"
	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/files"
	"github.com/warden-gateway/warden/internal/obs"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/proxy"
	"github.com/warden-gateway/warden/internal/refusal"
	"github.com/warden-gateway/warden/internal/waf"
)

// Runtime is everything one config compiles into: the policy, the WAF,
// the handlers, how refusals are shown and what is logged. It is immutable;
// a reload builds a new one.
type Runtime struct {
	Config   *config.Config
	Policy   *policy.Policy
	Refusals refusal.Options
	// Routes are the handle: section, longest prefix first.
	Routes []Route
	WAF    *waf.Engine
	// LogAll logs allowed requests too, not only refusals.
	LogAll bool
	LogOff bool
	// MaxBody bounds a request body (0: no bound).
	MaxBody int64
	// OnlyNamedHosts: every handler names its hosts, so a request for any
	// other host is refused rather than served another site's content.
	OnlyNamedHosts bool
	// Services are the decision services (forward_auth, ext_authz) the
	// config asks for; their peers change with the runtime on a reload.
	Services *authz.Services
	stop     context.CancelFunc
}

// Prime fetches what the policy needs before serving (JWKS URLs), waiting
// at most timeout; what fails is returned for the log.
func (rt *Runtime) Prime(parent context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	return rt.Policy.Prime(ctx)
}

// Start runs the runtime's background work (database reloads, JWKS
// refresh) until Close.
func (rt *Runtime) Start(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	rt.stop = cancel
	rt.Policy.Start(ctx)
}

// Route is one handler of the handle: section: files or an upstream.
type Route struct {
	// Hosts are the host names the route serves (lower case; "*.x.y" for
	// one label); none: every host.
	Hosts  []string
	Prefix string
	Files  *files.Server
	Proxy  *proxy.Proxy
}

// Options are what a front end adds to a config.
type Options struct {
	// SiteFS replaces the root of file handlers whose root is "embed:" (the
	// embedded demo site).
	SiteFS fs.FS
	// Logger receives what background work reports (key refresh, database
	// reloads). Nil: discarded.
	Logger *slog.Logger
	// OnUpstreamError renders an upstream's failure (the gateway's);
	// nil renders it plainly.
	OnUpstreamError proxy.ErrorFunc
}

// Build compiles a config into a Runtime: every section is validated here,
// and all errors come back together, with positions.
func Build(cfg *config.Config, opt Options) (*Runtime, error) {
	var errs config.Errors
	pol, err := policy.CompileWith(cfg, policy.Options{Logger: opt.Logger})
	if err != nil {
		for _, e := range splitErrors(err) {
			errs = append(errs, e)
		}
	}
	rt := &Runtime{Config: cfg, Policy: pol, MaxBody: MaxBodyBytes(&cfg.Limits)}
	switch cfg.Refusals.Detail.Value {
	case "", "reason":
	case "minimal":
		rt.Refusals.Minimal = true
	default:
		errs = append(errs, &config.Error{Pos: cfg.Refusals.Detail.Pos, Msg: fmt.Sprintf("refusals.detail must be reason or minimal, not %q", cfg.Refusals.Detail.Value)})
	}
	rt.Refusals.ShowRule = cfg.Refusals.ShowRule
	rt.Refusals.Contact = cfg.Refusals.Contact
	switch cfg.Log.Decisions.Value {
	case "", "refusals":
	case "all":
		rt.LogAll = true
	case "off":
		rt.LogOff = true
	default:
		errs = append(errs, &config.Error{Pos: cfg.Log.Decisions.Pos, Msg: fmt.Sprintf("log.decisions must be refusals, all or off, not %q", cfg.Log.Decisions.Value)})
	}
	errs = append(errs, obs.ValidateLog(&cfg.Log)...)
	base := filepath.Dir(cfg.Pos.File)
	seen := map[string]int{}
	for i := range cfg.Handle {
		h := &cfg.Handle[i]
		prefix := h.Path.Value
		if prefix == "" {
			prefix = "/"
		}
		if !strings.HasPrefix(prefix, "/") {
			errs = append(errs, &config.Error{Pos: h.Path.Pos, Msg: fmt.Sprintf("handle path %q must start with /", prefix)})
			continue
		}
		hosts, herrs := routeHosts(h.Host)
		errs = append(errs, herrs...)
		keys := []string{prefix}
		if len(hosts) > 0 {
			keys = keys[:0]
			for _, host := range hosts {
				keys = append(keys, host+prefix)
			}
		}
		dup := false
		for _, k := range keys {
			if line, ok := seen[k]; ok {
				errs = append(errs, &config.Error{Pos: h.Path.Pos, Msg: fmt.Sprintf("handle path %q already handled at line %d", k, line)})
				dup = true
			}
			seen[k] = h.Pos.Line
		}
		if dup {
			continue
		}
		rte := Route{Prefix: prefix, Hosts: hosts}
		switch {
		case h.Upstream.Value != "" && h.Root.Value != "":
			errs = append(errs, &config.Error{Pos: h.Pos, Msg: "a handler has either upstream or root, not both"})
			continue
		case h.Upstream.Value != "":
			pc := proxy.Config{Upstream: h.Upstream.Value, PreserveHost: h.PreserveHost, ResponseHeaderTimeout: h.Timeout.Duration, MaxConnsPerHost: h.MaxConnections}
			p, err := proxy.New(pc, opt.OnUpstreamError)
			if err != nil {
				errs = append(errs, &config.Error{Pos: h.Upstream.Pos, Msg: err.Error()})
				continue
			}
			rte.Proxy = p
		case h.Root.Value != "":
			fc := files.Config{
				Index:          scalars(h.Index),
				Listing:        h.Listing,
				ListingPaths:   scalars(h.ListingOn),
				NoListingPaths: scalars(h.ListingOff),
				ServeDotfiles:  h.Dotfiles,
			}
			if h.Root.Value == "embed:" {
				if opt.SiteFS == nil {
					errs = append(errs, &config.Error{Pos: h.Root.Pos, Msg: "root embed: is only for the built-in demo"})
					continue
				}
				fc.FS = opt.SiteFS
			} else {
				fc.Root = h.Root.Value
				if !filepath.IsAbs(fc.Root) {
					fc.Root = filepath.Join(base, fc.Root)
				}
			}
			fsrv, err := files.New(fc)
			if err != nil {
				errs = append(errs, &config.Error{Pos: h.Root.Pos, Msg: err.Error()})
				continue
			}
			rte.Files = fsrv
		default:
			errs = append(errs, &config.Error{Pos: h.Pos, Msg: "handler needs upstream (a URL) or root (a folder)"})
			continue
		}
		rt.Routes = append(rt.Routes, rte)
	}
	svc, serrs := authz.Compile(cfg)
	errs = append(errs, serrs...)
	rt.Services = svc
	if cfg.WAF != nil {
		e, werrs := buildWAF(cfg.WAF)
		errs = append(errs, werrs...)
		rt.WAF = e
	}
	rt.OnlyNamedHosts = len(rt.Routes) > 0
	for _, r := range rt.Routes {
		if len(r.Hosts) == 0 {
			rt.OnlyNamedHosts = false
		}
	}
	// Longest prefix first.
	sort.SliceStable(rt.Routes, func(i, j int) bool { return len(rt.Routes[i].Prefix) > len(rt.Routes[j].Prefix) })
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs.Err()
	}
	return rt, nil
}

func splitErrors(err error) []*config.Error {
	var out []*config.Error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if ce, ok := e.(*config.Error); ok {
				out = append(out, ce)
			} else {
				out = append(out, &config.Error{Msg: e.Error()})
			}
		}
		return out
	}
	if ce, ok := err.(*config.Error); ok {
		return []*config.Error{ce}
	}
	return []*config.Error{{Msg: err.Error()}}
}

func scalars(l []config.Scalar) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = s.Value
	}
	return out
}

// RouteFor finds the handler for a canonical host and path: among the
// handlers for that host, the longest handle prefix that matches at a
// segment boundary; only when none does, a handler for every host. A
// site's own handlers so come before shared ones.
func (rt *Runtime) RouteFor(host, path string) *Route {
	var shared *Route
	for i := range rt.Routes {
		r := &rt.Routes[i]
		p := r.Prefix
		if !(p == "/" || path == p || strings.HasPrefix(path, p) && (p[len(p)-1] == '/' || path[len(p)] == '/') || path+"/" == p) {
			continue
		}
		if len(r.Hosts) == 0 {
			if shared == nil {
				shared = r
			}
			continue
		}
		if hostIn(r.Hosts, host) {
			return r
		}
	}
	return shared
}

// ServesHost reports whether some handler serves host.
func (rt *Runtime) ServesHost(host string) bool {
	for i := range rt.Routes {
		if len(rt.Routes[i].Hosts) == 0 || hostIn(rt.Routes[i].Hosts, host) {
			return true
		}
	}
	return false
}

// hostIn matches a canonical host against names: exact, or "*.x.y" for
// one label under x.y.
func hostIn(names []string, host string) bool {
	for _, n := range names {
		if n == host {
			return true
		}
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			if i := strings.IndexByte(host, '.'); i > 0 && host[i+1:] == rest {
				return true
			}
		}
	}
	return false
}

func routeHosts(list []config.Scalar) ([]string, config.Errors) {
	var out []string
	var errs config.Errors
	for _, s := range list {
		h := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s.Value)), ".")
		name := strings.TrimPrefix(h, "*.")
		if name == "" || strings.ContainsAny(name, "*/:@ ") {
			errs = append(errs, &config.Error{Pos: s.Pos, Msg: fmt.Sprintf("handle host %q: want a host name such as example.com or *.example.com (no port)", s.Value)})
			continue
		}
		out = append(out, h)
	}
	return out, errs
}

// Redirect reports whether the route answers path with a redirect to its
// folder: "/api" for a handler on "/api/", as nginx does for a proxied
// prefix, rather than send upstream a path outside the prefix it serves.
func (r *Route) Redirect(path string) bool {
	return r.Proxy != nil && len(r.Prefix) > 1 && path+"/" == r.Prefix
}

// Close stops background work and releases idle upstream connections.
func (rt *Runtime) Close() {
	if rt.stop != nil {
		rt.stop()
	}
	for _, r := range rt.Routes {
		if r.Proxy != nil {
			r.Proxy.Close()
		}
	}
}

// Name names the handler, for the decision record and explain.
func (r *Route) Name() string {
	if r.Proxy != nil {
		return "upstream " + r.Prefix
	}
	return "files " + r.Prefix
}

// buildWAF turns the waf section into an engine. Coraza's own errors name
// the directive; the position given is the waf section's.
func buildWAF(c *config.WAF) (*waf.Engine, config.Errors) {
	var errs config.Errors
	wc := waf.Config{
		Mode:               c.Mode.Value,
		ParanoiaLevel:      c.ParanoiaLevel,
		InboundThreshold:   c.InboundThreshold,
		OutboundThreshold:  c.OutboundThreshold,
		BodyLimit:          c.BodyLimit,
		BodyOverLimit:      c.BodyOverLimit.Value,
		ResponseInspection: c.ResponseInspection,
		SetupDirectives:    c.SetupDirectives.Value,
		Directives:         c.Directives.Value,
	}
	for _, r := range c.Routes {
		rt := waf.RouteTuning{PathPrefix: r.Path.Value, Off: r.Off, RemoveRuleIDs: r.RemoveRuleIDs, RemoveTags: scalars(r.RemoveTags)}
		for _, t := range r.RemoveTargets {
			id, target, ok := strings.Cut(t.Value, ";")
			n, err := strconv.Atoi(strings.TrimSpace(id))
			if !ok || err != nil || strings.TrimSpace(target) == "" {
				errs = append(errs, &config.Error{Pos: t.Pos, Msg: fmt.Sprintf("waf remove_targets: %q: want RULEID;TARGET such as 942100;ARGS:q", t.Value)})
				continue
			}
			rt.RemoveTargets = append(rt.RemoveTargets, waf.TargetExclusion{RuleID: n, Target: strings.TrimSpace(target)})
		}
		wc.Routes = append(wc.Routes, rt)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	e, err := waf.New(wc)
	if err != nil {
		return nil, config.Errors{{Pos: c.Pos, Msg: err.Error()}}
	}
	return e, nil
}

// FileServers lists the runtime's file handlers, for `warden doctor`.
func (rt *Runtime) FileServers() []*files.Server {
	var out []*files.Server
	for _, r := range rt.Routes {
		if r.Files != nil {
			out = append(out, r.Files)
		}
	}
	return out
}

// Route picks the handler for an allowed request and names it in the
// outcome. With no handler for the path, the outcome becomes a 404; when
// the handler answers the path with a redirect to its folder, redirect is
// the target. The gateway serves what this picks; explain reports it.
func (o *Outcome) Route() (route *Route, redirect string) {
	req := &o.Request
	route = o.Runtime.RouteFor(req.Host, req.Path)
	if route == nil {
		o.Replace(StageHandler, decision.Refuse(decision.NotFound, "not found"))
		return nil, ""
	}
	o.Handler = route.Name()
	if route.Redirect(req.Path) {
		redirect = canonical.Escape(route.Prefix)
		if req.RawQuery != "" {
			redirect += "?" + req.RawQuery
		}
	}
	return route, redirect
}
