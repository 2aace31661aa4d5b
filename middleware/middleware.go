// Package middleware puts a warden policy in front of any net/http handler:
// the third way to run warden, beside the gateway and the decision service.
//
//	guard, err := middleware.Load("policy.yaml")
//	if err != nil { log.Fatal(err) }          // file:line for every mistake
//	http.ListenAndServe(":8080", guard.Wrap(mux))
//
// The middleware makes each request canonical, decides it with the same
// code the gateway runs, and answers refusals exactly as the gateway does
// (problem+json, HTML or text, with code and request id). Allowed requests
// reach the next handler with the canonical path in r.URL.Path, and the
// verified caller, when a rule needed one, in the context (see Caller).
// The policy's handle: section is not used here; the next handler serves.
package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/obs"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/refusal"
)

// Guard is a compiled policy ready to guard handlers. It is safe for
// concurrent use.
type Guard struct {
	pol    *policy.Policy
	opts   refusal.Options
	log    *slog.Logger
	now    func() time.Time
	cancel context.CancelFunc
}

// Load reads and compiles a policy file.
func Load(path string) (*Guard, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return build(cfg)
}

// New compiles a policy given as YAML; name is used in error positions.
func New(name string, yaml []byte) (*Guard, error) {
	cfg, err := config.Parse(name, yaml)
	if err != nil {
		return nil, err
	}
	return build(cfg)
}

func build(cfg *config.Config) (*Guard, error) {
	pol, err := policy.Compile(cfg)
	if err != nil {
		return nil, err
	}
	g := &Guard{pol: pol, log: slog.Default(), now: time.Now}
	g.opts.Minimal = cfg.Refusals.Detail.Value == "minimal"
	g.opts.ShowRule = cfg.Refusals.ShowRule
	g.opts.Contact = cfg.Refusals.Contact
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	pol.Start(ctx) // key refresh and database reloads
	return g, nil
}

// WithLogger sends the decision log (refusals) to l instead of slog's default.
func (g *Guard) WithLogger(l *slog.Logger) *Guard { g.log = l; return g }

// Close stops the policy's background work.
func (g *Guard) Close() { g.cancel() }

type callerKey struct{}

// Caller returns the verified caller of a request that a rule identified,
// or ok=false.
func Caller(ctx context.Context) (id string, roles []string, ok bool) {
	p, _ := ctx.Value(callerKey{}).(*identity.Principal)
	if p == nil {
		return "", nil, false
	}
	return p.ID, p.Roles, true
}

// Wrap guards next.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := obs.NewRequestID()
		w.Header().Set("X-Request-Id", id)
		var req canonical.Request
		if err := canonical.FillFrom(&req, r, &g.pol.Canonical); err != nil {
			d := decision.Refuse(decision.BadRequest, err.Error())
			g.refuse(w, r, &d, id)
			return
		}
		d := g.pol.Decide(&req, g.now(), nil)
		if !d.Allowed() {
			g.refuse(w, r, &d, id)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = req.Path, req.EscapedPath
		if d.Caller != nil {
			r2 = r2.WithContext(context.WithValue(r2.Context(), callerKey{}, d.Caller))
		}
		next.ServeHTTP(w, r2)
	})
}

func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, d *decision.Decision, id string) {
	g.log.LogAttrs(r.Context(), slog.LevelInfo, "decision",
		slog.String("request_id", id), slog.String("method", r.Method), slog.String("uri", r.RequestURI),
		slog.String("action", d.Action.String()), slog.String("code", string(d.Code)),
		slog.String("rule", d.Rule), slog.String("reason", d.Reason), slog.String("detail", d.Detail))
	refusal.Write(w, r, d, id, g.opts)
}
