package benchopa

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/runtime"

	"github.com/warden-gateway/warden/internal/authz/authzbench"
	"github.com/warden-gateway/warden/internal/authz/forwardauth"
)

func TestMain(m *testing.M) {
	code := m.Run()
	authzbench.Cleanup()
	os.Exit(code)
}

// startOPA runs OPA's REST server in this process on the Rego policy and
// its data document (what `opa run --server policy.rego data.json` does),
// and waits until it answers.
func startOPA(tb testing.TB, env *authzbench.Env) string {
	tb.Helper()
	dir := tb.TempDir()
	var data map[string]any
	if err := json.Unmarshal(env.Data, &data); err != nil {
		tb.Fatal(err)
	}
	data["jwks"] = string(env.JWKS)
	raw, err := json.Marshal(data)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.json"), raw, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.rego"), []byte(env.Rego), 0o644); err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	logger := logging.New()
	logger.SetLevel(logging.Error)
	rt, err := runtime.NewRuntime(ctx, runtime.Params{
		Addrs:  &[]string{addr},
		Paths:  []string{filepath.Join(dir, "policy.rego"), filepath.Join(dir, "data.json")},
		Logger: logger, ConsoleLogger: logger, Output: io.Discard,
		GracefulShutdownPeriod: 1,
	})
	if err != nil {
		cancel()
		tb.Fatalf("OPA runtime: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); rt.Serve(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := opaCaller(http.DefaultClient, url, env)(); err == nil {
			return url
		} else if time.Now().After(deadline) {
			tb.Fatalf("OPA does not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// opaCaller asks OPA's Data API about the benchmark request.
func opaCaller(c *http.Client, url string, env *authzbench.Env) authzbench.Caller {
	body, _ := json.Marshal(map[string]any{"input": map[string]any{
		"method": authzbench.Method, "path": "/api/v1/orders/12345/items", "host": authzbench.Host,
		"ip": authzbench.ClientIP, "authorization": "Bearer " + env.Token,
	}})
	return func() error {
		resp, err := c.Post(url+"/v1/data/warden/allow", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		var out struct {
			Result *bool `json:"result"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || out.Result == nil || !*out.Result {
			return fmt.Errorf("OPA: status %d, result %v, %v", resp.StatusCode, out.Result, err)
		}
		return nil
	}
}

func BenchmarkOPAvsForwardAuth(b *testing.B) {
	env := authzbench.SharedEnv(b)
	eng := env.Engine(b)
	c := authzbench.HTTPClient()
	plainURL := authzbench.Serve(b, http.HandlerFunc(authzbench.Plain))
	faURL := authzbench.Serve(b, forwardauth.New(eng))
	opaURL := startOPA(b, env)
	names := []string{"plain-http", "forward-auth", "opa-rest"}
	calls := []authzbench.Caller{
		env.ForwardAuthCaller(c, plainURL+"/auth"),
		env.ForwardAuthCaller(c, faURL+"/auth"),
		opaCaller(c, opaURL, env),
	}
	b.ResetTimer()
	res := authzbench.Rounds(b, b.N, names, calls)
	b.StopTimer()
	authzbench.Report(b, res, 0)
}
