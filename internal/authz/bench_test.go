package authz_test

// Decisions per second of the decision services, for a policy of
// 1,000,000 CIDRs, 100 rules and JWT roles (internal/authz/authzbench),
// against servers that decide nothing, all measured in the same run with
// rounds that rotate the order of the targets:
//
//	go test -run '^$' -bench 'DecisionServices' -benchtime 200000x ./internal/authz/
//
// forward-auth is compared with a plain net/http server answering 200 over
// the same loopback HTTP/1.1 keep-alive connections; ext_authz with a plain
// gRPC Authorization server answering OK, over one gRPC connection each.
// The OPA comparison is in internal/authz/benchopa (its own module).

import (
	"net/http"
	"os"
	"testing"

	"github.com/warden-gateway/warden/internal/authz/authzbench"
	"github.com/warden-gateway/warden/internal/authz/extauthz"
	"github.com/warden-gateway/warden/internal/authz/forwardauth"
)

func TestMain(m *testing.M) {
	code := m.Run()
	authzbench.Cleanup()
	os.Exit(code)
}

func BenchmarkDecisionServices(b *testing.B) {
	env := authzbench.SharedEnv(b)
	eng := env.Engine(b)
	plainURL := authzbench.Serve(b, http.HandlerFunc(authzbench.Plain))
	faURL := authzbench.Serve(b, forwardauth.New(eng))
	c := authzbench.HTTPClient()
	plainConn := authzbench.GRPC(b, authzbench.PlainCheck{})
	eaConn := authzbench.GRPC(b, extauthz.New(eng))
	names := []string{"plain-http", "forward-auth", "plain-grpc", "ext-authz"}
	calls := []authzbench.Caller{
		env.ForwardAuthCaller(c, plainURL+"/auth"),
		env.ForwardAuthCaller(c, faURL+"/auth"),
		env.CheckCaller(plainConn),
		env.CheckCaller(eaConn),
	}
	b.ResetTimer()
	res := authzbench.Rounds(b, b.N, names, calls)
	b.StopTimer()
	authzbench.Report(b, res[:2], 0)
	authzbench.Report(b, res[2:], 0)
	b.ReportMetric(res[3].Rate()/res[0].Rate(), "ext-authz/plain-http")
}

// discardWriter is an http.ResponseWriter that keeps only the status, so
// that BenchmarkForwardAuthHandler measures the handler and not a recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// BenchmarkForwardAuthHandler is the forward-auth handler alone on the
// benchmark request, no network: what the decision costs the service per
// request (reading the proxy's headers, the judgement, the identity headers,
// the decision log), to set against the HTTP server's own cost per request
// in BenchmarkDecisionServices.
//
//	go test -run '^$' -bench ForwardAuthHandler -benchmem ./internal/authz/
func BenchmarkForwardAuthHandler(b *testing.B) {
	env := authzbench.SharedEnv(b)
	fa := forwardauth.New(env.Engine(b))
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/auth", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	h := req.Header
	h["X-Forwarded-Method"] = []string{authzbench.Method}
	h["X-Forwarded-Proto"] = []string{"https"}
	h["X-Forwarded-Host"] = []string{authzbench.Host}
	h["X-Forwarded-Uri"] = []string{authzbench.Target}
	h["X-Forwarded-For"] = []string{authzbench.ClientIP}
	h["Authorization"] = []string{"Bearer " + env.Token}
	h["Accept"] = []string{"application/json"}
	h["User-Agent"] = []string{"bench/1.0"}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		fa.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}
