package crs

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental"
	txhttp "github.com/corazawaf/coraza/v3/http"
	"github.com/corazawaf/coraza/v3/types"

	"github.com/warden-gateway/warden/internal/waf"
)

// startCorazaMiddleware serves Coraza's own net/http middleware
// (txhttp.WrapHandler) around the upstream handler, in process, the way
// Coraza's CRS harness (testing/coreruleset) does, over a WAF built from
// exactly the SecLang warden's engine loads for cfg (Engine.Directives).
// This is the baseline warden is held to: every test it passes, warden
// passes too, or warden's different outcome is asserted.
//
// The judge reads Coraza's error-log lines, as go-ftw does. To tie them to
// their request without marker requests, an outer handler gives each
// request an id (the X-Request-Id answer header) and the WAF is wrapped so
// that the middleware's transaction takes that id as its own; the error
// callback then files every line under the transaction's id. The outer
// handler also logs a "seen" record, so the runner knows which requests
// reached the middleware (Go's server answers some malformed ones itself).
func startCorazaMiddleware(t testing.TB, cfg waf.Config, upstream http.Handler) *serverUnderTest {
	t.Helper()
	su := &serverUnderTest{log: newDecisionLog(), conns: newConnTracker()}
	engine, err := waf.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logger := su.log.logger()
	w, err := coraza.NewWAF(coraza.NewWAFConfig().
		WithRootFS(coreruleset.FS).
		WithDirectives(engine.Directives()).
		WithErrorCallback(func(mr types.MatchedRule) {
			if len(mr.MatchedDatas()) == 0 {
				return // ErrorLog indexes the first match data
			}
			logger.Info("waf", slog.String("request_id", mr.TransactionID()), slog.Any("matches", []string{mr.ErrorLog()}))
		}))
	if err != nil {
		t.Fatal(err)
	}
	mw := txhttp.WrapHandler(idFromContext{w}, upstream)
	var seq atomic.Uint64
	front := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		id := fmt.Sprintf("cz-%012d", seq.Add(1)) // fixed width: no id is a substring of another
		rw.Header().Set("X-Request-Id", id)
		logger.Info("seen", slog.String("request_id", id))
		mw.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: front, ConnState: su.conns.observe, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	su.addr = ln.Addr().String()
	su.judged = func(sr *stageRun) bool {
		for _, r := range sr.records {
			if r.msg == "seen" {
				return true // the middleware processes every request it is handed
			}
		}
		return false
	}
	return su
}

type requestIDKey struct{}

// idFromContext is a coraza.WAF whose transactions, when the middleware
// creates them with the request's context, take the id the outer handler
// put there.
type idFromContext struct{ coraza.WAF }

func (w idFromContext) NewTransactionWithOptions(o experimental.Options) types.Transaction {
	if id, ok := o.Context.Value(requestIDKey{}).(string); ok {
		o.ID = id
	}
	return w.WAF.(experimental.WAFWithOptions).NewTransactionWithOptions(o)
}
