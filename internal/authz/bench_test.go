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
