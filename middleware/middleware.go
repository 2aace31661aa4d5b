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

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/identity"
)

// Guard is a compiled policy ready to guard handlers. It is safe for
// concurrent use.
type Guard struct {
	eng    *engine.Engine
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

// build compiles the config exactly as `warden serve` and `warden check`
// do: every section is validated, also those the middleware does not use.
func build(cfg *config.Config) (*Guard, error) {
	g := &Guard{eng: engine.New(slog.Default())}
	rt, err := engine.Build(cfg, engine.Options{Logger: slog.Default()})
	if err != nil {
		return nil, err
	}
	store, err := engine.OpenStore(cfg, slog.Default())
	if err != nil {
		rt.Close()
		return nil, err
	}
	if store != nil {
		g.eng.SetStore(store)
	}
	g.eng.Swap(rt)
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	rt.Start(ctx) // key refresh and database reloads
	return g, nil
}

// WithLogger sends the decision log to l instead of slog's default. Which
// decisions are logged is the policy's log.decisions, as for the gateway.
func (g *Guard) WithLogger(l *slog.Logger) *Guard {
	eng := engine.New(l)
	if s := g.eng.Store(); s != nil {
		eng.SetStore(s)
	}
	eng.Swap(g.eng.Runtime())
	g.eng = eng
	return g
}

// Close stops the policy's background work.
func (g *Guard) Close() {
	g.cancel()
	g.eng.Runtime().Close()
	if s := g.eng.Store(); s != nil {
		s.Close()
	}
}

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

// Wrap guards next. The request is judged exactly as the gateway judges it
// (the same engine: override headers, header names, the body limit, the
// rules and the WAF); a refusal is answered as the gateway answers it.
// Allowed requests reach next with the canonical path, the body the WAF
// inspected, and no identity headers a client set for itself.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := g.eng.VerifyEndpoint(r); h != nil {
			h.ServeHTTP(w, r)
			return
		}
		o := &engine.Outcome{Front: "middleware"}
		wire := engine.FromHTTP(r)
		g.eng.Judge(&wire, o)
		w.Header().Set("X-Request-Id", o.ID)
		if o.Refused() {
			if !g.eng.ServeChallenge(w, r, o) {
				g.eng.Respond(w, o)
			}
			g.eng.Log(o)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = o.Request.Path, o.Request.EscapedPath
		r2.Body = o.Body
		r2.Header = wire.Header
		if d := o.Decision.Caller; d != nil {
			r2 = r2.WithContext(context.WithValue(r2.Context(), callerKey{}, d))
		}
		o.Handler = "next"
		for k, v := range o.Header {
			w.Header()[k] = v
		}
		if o.WAFRan {
			inner := w
			w = o.WAF.WrapResponse(w)
			defer func() {
				rv, _ := o.WAF.Finish()
				if rd, refused := rv.Refusal(); refused {
					o.Replace(engine.StageUpstream, rd)
					g.eng.Respond(inner, o)
				}
				g.eng.Log(o)
			}()
		} else {
			defer g.eng.Log(o)
		}
		next.ServeHTTP(w, r2)
	})
}
