package crs

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/waf"
)

// startEngineServer serves the bare WAF engine the way Coraza's harness
// serves its middleware: Engine.Inspect on the request as net/http parsed
// it, then the upstream handler in-process through the response inspection.
// Every matched rule goes to the decision log as a "waf" record, like
// warden's, so the same runner judges both servers.
func startEngineServer(t testing.TB, e *waf.Engine, upstream http.Handler) *serverUnderTest {
	t.Helper()
	su := &serverUnderTest{log: newDecisionLog(), conns: newConnTracker()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           inspectThenForward(e, upstream, su.log.logger()),
		ConnState:         su.conns.observe,
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	su.addr = ln.Addr().String()
	return su
}

func inspectThenForward(e *waf.Engine, upstream http.Handler, log *slog.Logger) http.Handler {
	var seq atomic.Uint64
	logMatches := func(msg, id string, ms []waf.Match) {
		if len(ms) == 0 {
			return
		}
		lines := make([]string, len(ms))
		for i, m := range ms {
			lines[i] = m.ErrorLog
		}
		log.Info(msg, slog.String("request_id", id), slog.Any("matches", lines))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Fixed width, so no id is a substring of another.
		id := fmt.Sprintf("req-%012d", seq.Add(1))
		w.Header().Set("X-Request-Id", id)
		peer, _ := netip.ParseAddrPort(r.RemoteAddr)
		verdict, body, err := e.Inspect(waf.RequestFrom(r, id, requestTarget(r), r.URL.RawQuery, peer.Addr()))
		if err != nil {
			log.Info("error", slog.String("request_id", id), slog.String("error", err.Error()))
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		defer body.Close()
		logMatches("waf", id, verdict.Matches)
		if d, refused := verdict.Refusal(); refused {
			http.Error(w, d.Reason, d.Status)
			return
		}
		r.Body = body
		upstream.ServeHTTP(verdict.WrapResponse(w), r)
		rv, _ := verdict.Finish()
		logMatches("waf response", id, rv.Matches)
		if d, refused := rv.Refusal(); refused {
			http.Error(w, d.Reason, d.Status)
		}
	})
}

// requestTarget is what Coraza's net/http adapter gives the WAF: the escaped
// path for an origin-form target, and for the other forms (CONNECT's
// authority, absolute-form, "*") the target without the query (URL.String),
// so that the 920100 tests on those forms see what they see under Coraza.
func requestTarget(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.URL.EscapedPath()
	}
	u := *r.URL
	u.RawQuery, u.ForceQuery = "", false
	return u.String()
}
