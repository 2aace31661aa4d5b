// Package admin is warden's admin listener: Prometheus metrics, health and
// readiness, and the admin page (refusals over time, top rules, addresses
// and paths, a request-id search that shows the trace, an explain form,
// current bans). It listens on loopback by default, and everything but
// /healthz and /readyz needs the admin bearer token: the page shows request
// paths, addresses and principals, and explain reveals the policy.
package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/obs/metrics"
)

// DefaultListen is the admin listener's address when the config names none:
// loopback, so metrics and the page are never public by accident.
const DefaultListen = "127.0.0.1:9090"

// Ban is one ban in force, for the page.
type Ban struct {
	Key    string    // what is banned: an address, a principal
	Rule   string    // the rule that banned it
	Until  time.Time // when it ends
	Reason string
}

// Server is the admin listener's handler.
type Server struct {
	Engine  *engine.Engine
	Metrics *metrics.Metrics
	Recent  *Recent
	// Bans lists the bans in force; nil shows none (rate limits and bans
	// plug in here).
	Bans func() []Ban
	// Now is the clock (tests replace it).
	Now   func() time.Time
	token string
	mux   *http.ServeMux
}

// New makes the admin handler for eng. token is the bearer token every path
// but /healthz and /readyz requires; it must not be empty. It registers the
// metrics and the recent-requests ring as observers of eng: call it before
// eng serves.
func New(eng *engine.Engine, m *metrics.Metrics, token string) (*Server, error) {
	if len(token) < 16 {
		return nil, fmt.Errorf("admin token must be at least 16 characters")
	}
	if m == nil {
		m = metrics.New()
	}
	s := &Server{Engine: eng, Metrics: m, Recent: NewRecent(DefaultRecent), Now: time.Now, token: token}
	eng.Observe(m.Observe)
	eng.Observe(s.Recent.Observe)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.auth(promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})))
	mux.Handle("GET /{$}", s.auth(http.HandlerFunc(s.page)))
	mux.Handle("GET /chart.svg", s.auth(http.HandlerFunc(s.chart)))
	mux.Handle("GET /request/{id}", s.auth(http.HandlerFunc(s.request)))
	mux.Handle("GET /api/request/{id}", s.auth(http.HandlerFunc(s.requestJSON)))
	mux.Handle("POST /explain", s.auth(http.HandlerFunc(s.explain)))
	mux.HandleFunc("GET /login", s.login)
	s.mux = mux
	return s, nil
}

// HandleAuthorized serves h at pattern behind the admin token, as the page
// and metrics are: the ban API (/v1/bans) is mounted this way.
func (s *Server) HandleAuthorized(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.auth(h))
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// The page is self-contained: no script or style from anywhere else,
	// never framed (clickjacking of the explain form).
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// readyz is 200 once a policy is in service: before that every request is
// refused 503, and a load balancer should not send any.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.Engine.Runtime() == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "no policy loaded")
		return
	}
	fmt.Fprintf(w, "ready: %d rules, generation %d\n", s.Engine.Runtime().Policy.RuleCount(), s.Metrics.Generation())
}

const cookieName = "warden_admin"

// auth requires the token: as "Authorization: Bearer TOKEN" (scrapers,
// curl) or the cookie /login sets (a browser).
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.authorized(r) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="warden admin"`)
		http.Error(w, "admin token required: Authorization: Bearer TOKEN, or open /login?token=TOKEN in a browser", http.StatusUnauthorized)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	if a := r.Header.Get("Authorization"); a != "" {
		if tok, ok := strings.CutPrefix(a, "Bearer "); ok && s.tokenOK(strings.TrimSpace(tok)) {
			return true
		}
	}
	if c, err := r.Cookie(cookieName); err == nil && s.tokenOK(c.Value) {
		return true
	}
	return false
}

func (s *Server) tokenOK(got string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1
}

// login trades ?token= for a cookie and sends the browser to the page, so
// the token leaves the address bar (and history) at once. The cookie is
// HttpOnly and SameSite=Strict: another site cannot make the browser post
// the explain form with it.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if !s.tokenOK(tok) {
		http.Error(w, "wrong or missing token", http.StatusUnauthorized)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// Token reads the admin token from the config's token_file, or, without
// one, makes a random one; generated tells the caller to print it.
func Token(cfg *config.Config) (token string, generated bool, err error) {
	if cfg.Admin != nil && cfg.Admin.TokenFile.Value != "" {
		p := cfg.Admin.TokenFile.Value
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(cfg.Pos.File), p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", false, &config.Error{Pos: cfg.Admin.TokenFile.Pos, Msg: "admin token_file: " + err.Error()}
		}
		t := strings.TrimSpace(string(b))
		if len(t) < 16 {
			return "", false, &config.Error{Pos: cfg.Admin.TokenFile.Pos, Msg: "admin token_file: the token must be at least 16 characters"}
		}
		return t, false, nil
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, err
	}
	return hex.EncodeToString(b[:]), true, nil
}

// Listen is the admin address in cfg, DefaultListen when unset.
func Listen(cfg *config.Config) string {
	if cfg.Admin != nil && cfg.Admin.Listen.Value != "" {
		return cfg.Admin.Listen.Value
	}
	return DefaultListen
}

// Loopback reports whether addr listens on loopback only (a Unix socket,
// "unix:/path", counts: only this machine reaches it).
func Loopback(addr string) bool {
	if strings.HasPrefix(addr, "unix:") || strings.HasPrefix(addr, "/") {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewHTTPServer wraps h with the timeouts an admin listener needs.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}
