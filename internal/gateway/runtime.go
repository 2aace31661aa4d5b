// Package gateway is warden as a server: it makes each request canonical,
// asks the compiled policy, renders refusals, and hands allowed requests to
// the file server or the reverse proxy. A Runtime is one compiled config;
// the Server swaps Runtimes atomically, so a failed reload leaves the old one
// serving.
package gateway

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

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/files"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/proxy"
	"github.com/warden-gateway/warden/internal/refusal"
	"github.com/warden-gateway/warden/internal/waf"
)

// Runtime is everything one config compiles into.
type Runtime struct {
	Config   *config.Config
	Policy   *policy.Policy
	Refusals refusal.Options
	routes   []route
	waf      *waf.Engine
	// LogAll logs allowed requests too, not only refusals.
	LogAll bool
	LogOff bool
	stop   context.CancelFunc
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

type route struct {
	prefix string
	files  *files.Server
	proxy  *proxy.Proxy
}

// Options are what the CLI adds to a config.
type Options struct {
	// SiteFS replaces the root of file handlers whose root is "embed:" (the
	// embedded demo site).
	SiteFS fs.FS
	Logger *slog.Logger
}

// Build compiles a config. All errors come back together, with positions.
func Build(cfg *config.Config, opt Options, onUpstreamError proxy.ErrorFunc) (*Runtime, error) {
	var errs config.Errors
	pol, err := policy.Compile(cfg)
	if err != nil {
		for _, e := range splitErrors(err) {
			errs = append(errs, e)
		}
	}
	rt := &Runtime{Config: cfg, Policy: pol}
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
		if line, dup := seen[prefix]; dup {
			errs = append(errs, &config.Error{Pos: h.Path.Pos, Msg: fmt.Sprintf("handle path %q already handled at line %d", prefix, line)})
			continue
		}
		seen[prefix] = h.Pos.Line
		rte := route{prefix: prefix}
		switch {
		case h.Upstream.Value != "" && h.Root.Value != "":
			errs = append(errs, &config.Error{Pos: h.Pos, Msg: "a handler has either upstream or root, not both"})
			continue
		case h.Upstream.Value != "":
			pc := proxy.Config{Upstream: h.Upstream.Value, PreserveHost: h.PreserveHost, ResponseHeaderTimeout: h.Timeout.Duration, MaxConnsPerHost: h.MaxConnections}
			p, err := proxy.New(pc, onUpstreamError)
			if err != nil {
				errs = append(errs, &config.Error{Pos: h.Upstream.Pos, Msg: err.Error()})
				continue
			}
			rte.proxy = p
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
			rte.files = fsrv
		default:
			errs = append(errs, &config.Error{Pos: h.Pos, Msg: "handler needs upstream (a URL) or root (a folder)"})
			continue
		}
		rt.routes = append(rt.routes, rte)
	}
	if cfg.WAF != nil {
		e, werrs := buildWAF(cfg.WAF)
		errs = append(errs, werrs...)
		rt.waf = e
	}
	// Longest prefix first.
	sort.SliceStable(rt.routes, func(i, j int) bool { return len(rt.routes[i].prefix) > len(rt.routes[j].prefix) })
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

// routeFor finds the handler for a canonical path: the longest handle prefix
// that matches at a segment boundary.
func (rt *Runtime) routeFor(path string) *route {
	for i := range rt.routes {
		p := rt.routes[i].prefix
		if p == "/" || path == p || strings.HasPrefix(path, p) && (p[len(p)-1] == '/' || path[len(p)] == '/') || path+"/" == p {
			return &rt.routes[i]
		}
	}
	return nil
}

// Close stops background work and releases idle upstream connections.
func (rt *Runtime) Close() {
	if rt.stop != nil {
		rt.stop()
	}
	for _, r := range rt.routes {
		if r.proxy != nil {
			r.proxy.Close()
		}
	}
}

// Explain runs the policy over a canonical request with a trace, as the
// gateway would.
func (rt *Runtime) Explain(req *canonical.Request, now time.Time) (decision.Decision, decision.Trace) {
	var tr decision.Trace
	d := rt.Policy.Decide(req, now, &tr)
	return d, tr
}

// HandlerFor names the handler an allowed request would reach.
func (rt *Runtime) HandlerFor(path string) string {
	r := rt.routeFor(path)
	switch {
	case r == nil:
		return "none (404)"
	case r.proxy != nil:
		return "upstream " + r.prefix
	default:
		return "files " + r.prefix
	}
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
	for _, r := range rt.routes {
		if r.files != nil {
			out = append(out, r.files)
		}
	}
	return out
}
