// Package authzbench is the load harness of the decision-service
// benchmarks: the policy they judge (1,000,000 CIDRs, 100 rules, JWT roles),
// the servers they compare (a plain net/http server answering 200, warden's
// forward-auth and ext_authz, a plain gRPC Authorization server answering
// OK) and a bounded load loop that reports the rate and the 99th
// percentile. internal/authz/bench_test.go runs it; the OPA comparison,
// which needs OPA as a module, runs it from its own module
// (internal/authz/benchopa) so that warden's go.mod does not carry OPA.
package authzbench

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/warden-gateway/warden/internal/authz/extauthz"
	"github.com/warden-gateway/warden/internal/authz/forwardauth"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
)

// InFlight is the number of requests kept in flight.
const InFlight = 32

// Sizes of the benchmark policy.
const (
	CIDRs = 1_000_000
	Rules = 100
)

// Request is the allowed request every target is asked about: an API call
// with a JWT carrying the role the last rule requires, from an address
// that is in no list, so that every rule and the whole IP list are looked
// at.
const (
	Method   = "GET"
	Target   = "/api/v1/orders/12345/items?expand=sku&page=2"
	ClientIP = "198.18.7.9"
	Host     = "api.example.com"
	issuer   = "https://issuer.bench.test/"
	audience = "warden-bench"
)

// Services are the per-service path roots the generated rules guard.
var Services = []string{"orders", "users", "billing", "catalog", "search", "inventory", "shipping", "reports",
	"auth", "files", "media", "notify", "payments", "ledger", "tax", "pricing", "reviews", "support", "audit"}

// Env is the benchmark policy, written to Dir.
type Env struct {
	Dir string
	// Policy is warden's YAML; Rego the equivalent OPA policy, Data its
	// data document (the IP list as two sets: /32 addresses and /24
	// networks, which is how a Rego author makes a 1M-entry list a lookup).
	Policy, Rego string
	Data         []byte
	JWKS         []byte
	Token        string
	Config       *config.Config
	Blocked      []netip.Prefix
}

var (
	sharedOnce sync.Once
	shared     *Env
	sharedErr  error
)

// SharedEnv is NewEnv made once per process: a benchmark runs more than
// once (b.N = 1 first), and writing a million CIDRs twice buys nothing.
// Cleanup removes its folder.
func SharedEnv(tb testing.TB) *Env {
	tb.Helper()
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "authzbench-")
		if err != nil {
			sharedErr = err
			return
		}
		shared = newEnv(tb, dir)
	})
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

// Cleanup removes the shared environment's folder (call it from TestMain).
func Cleanup() {
	if shared != nil {
		os.RemoveAll(shared.Dir)
	}
}

// NewEnv writes the policy and its files under tb's temp dir.
func NewEnv(tb testing.TB) *Env {
	tb.Helper()
	return newEnv(tb, tb.TempDir())
}

func newEnv(tb testing.TB, dir string) *Env {
	env := &Env{Dir: dir}
	env.Blocked = randomPrefixes(CIDRs)
	f, err := os.Create(filepath.Join(env.Dir, "blocked.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	b32, b24 := map[string]bool{}, map[string]bool{}
	for _, p := range env.Blocked {
		fmt.Fprintln(w, p)
		a := p.Addr().As4()
		if p.Bits() == 32 {
			b32[p.Addr().String()] = true
		} else {
			b24[fmt.Sprintf("%d.%d.%d", a[0], a[1], a[2])] = true
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	env.Data, err = json.Marshal(map[string]any{"blocked32": b32, "blocked24": b24})
	if err != nil {
		tb.Fatal(err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	env.JWKS, _ = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err := os.WriteFile(filepath.Join(env.Dir, "jwks.json"), env.JWKS, 0o644); err != nil {
		tb.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), "k1"))
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	env.Token, err = jwt.Signed(s).Claims(map[string]any{
		"iss": issuer, "aud": []string{audience}, "sub": "bench-user",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(), "roles": []string{"user"},
	}).Serialize()
	if err != nil {
		tb.Fatal(err)
	}

	env.Policy, env.Rego = policies()
	p := filepath.Join(env.Dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(env.Policy), 0o644); err != nil {
		tb.Fatal(err)
	}
	env.Config, err = config.Load(p)
	if err != nil {
		tb.Fatal(err)
	}
	return env
}

// randomPrefixes are n distinct IPv4 prefixes (3 in 4 host addresses, 1 in
// 4 /24s) outside 127/8 and 198.18/15, where the benchmark client is.
func randomPrefixes(n int) []netip.Prefix {
	rng := mrand.New(mrand.NewPCG(42, 7))
	seen := make(map[netip.Prefix]bool, n)
	out := make([]netip.Prefix, 0, n)
	for len(out) < n {
		first := byte(11 + rng.IntN(212))
		if first == 127 || first == 198 {
			continue
		}
		bits := 32
		if rng.IntN(4) == 0 {
			bits = 24
		}
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{first, byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}), bits).Masked()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// policies are warden's policy and the equivalent Rego, rule for rule.
func policies() (yaml, rego string) {
	var y, r strings.Builder
	y.WriteString(`ip_lists:
  blocked: { files: [blocked.txt] }
identity:
  jwt:
    jwks_file: jwks.json
    issuer: "` + issuer + `"
    audiences: [` + audience + `]
    algorithms: [ES256]
    roles_claim: roles
forward_auth: { listen: "127.0.0.1:0", peers: [127.0.0.1/32] }
ext_authz: { listen: "127.0.0.1:0", peers: [127.0.0.1/32] }
rules:
  - name: blocklist
    when: { ip_list: blocked }
    action: deny
  - name: no-trace
    when: { methods: [TRACE, CONNECT] }
    action: deny
  - name: dotfiles
    when: { path: { glob: ["/**/.*"] } }
    action: conceal
  - name: admin-area
    when: { path: { prefix: [/admin/] } }
    require: { roles_any: [admin] }
    action: allow
`)
	r.WriteString(`package warden

import rego.v1

default allow := false

blocked if data.blocked32[input.ip]

blocked if {
	parts := split(input.ip, ".")
	data.blocked24[concat(".", array.slice(parts, 0, 3))]
}

denied if blocked

denied if input.method in {"TRACE", "CONNECT"}

denied if regex.match(` + "`/\\.[^/]*`" + `, input.path)

denied if {
	startswith(input.path, "/admin/")
	not roles.admin
}

claims := payload if {
	token := trim_prefix(input.authorization, "Bearer ")
	[valid, _, payload] := io.jwt.decode_verify(token, {"cert": data.jwks, "iss": "` + issuer + `", "aud": "` + audience + `"})
	valid
}

roles contains role if some role in claims.roles

`)
	for i, svc := range Services {
		root := "/api/v" + strconv.Itoa(1+i%2) + "/" + svc + "/"
		fmt.Fprintf(&y, "  - name: %s-internal\n    when: { path: { prefix: [%sinternal/] } }\n    action: deny\n", svc, root)
		fmt.Fprintf(&y, "  - name: %s-writes\n    when: { path: { prefix: [%sadmin/] }, methods: [PUT, DELETE, PATCH] }\n    action: deny\n", svc, root)
		fmt.Fprintf(&y, "  - name: %s-exports\n    when: { path: { glob: [\"%s*/export/**\"] } }\n    action: conceal\n", svc, root)
		fmt.Fprintf(&y, "  - name: %s-debug\n    when: { path: { prefix: [%sdebug/, %smetrics] } }\n    action: deny\n", svc, root, root)
		fmt.Fprintf(&y, "  - name: %s-partners\n    when: { path: { prefix: [%spartner/] }, hosts: [partners.example.com] }\n    action: allow\n", svc, root)
		fmt.Fprintf(&r, "denied if startswith(input.path, %q)\n\n", root+"internal/")
		fmt.Fprintf(&r, "denied if {\n\tstartswith(input.path, %q)\n\tinput.method in {\"PUT\", \"DELETE\", \"PATCH\"}\n}\n\n", root+"admin/")
		fmt.Fprintf(&r, "denied if glob.match(%q, [\"/\"], input.path)\n\n", root+"*/export/**")
		fmt.Fprintf(&r, "denied if startswith(input.path, %q)\n\ndenied if startswith(input.path, %q)\n\n", root+"debug/", root+"metrics")
		fmt.Fprintf(&r, "partner if {\n\tstartswith(input.path, %q)\n\tinput.host == \"partners.example.com\"\n}\n\n", root+"partner/")
	}
	y.WriteString(`  - name: api
    when: { path: { prefix: [/api/] } }
    require: { roles_any: [user, admin] }
    action: allow
`)
	r.WriteString(`allow if {
	not denied
	partner
}

allow if {
	not denied
	startswith(input.path, "/api/")
	some role in ["user", "admin"]
	roles[role]
}
`)
	return y.String(), r.String()
}

// Engine builds the policy into a running engine (decision log: refusals
// only, the default), its background work stopped when tb ends.
func (env *Env) Engine(tb testing.TB) *engine.Engine {
	tb.Helper()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	rt, err := engine.Build(env.Config, engine.Options{Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	if n := rt.Policy.RuleCount(); n != Rules {
		tb.Fatalf("the policy has %d rules, want %d", n, Rules)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt.Start(ctx)
	tb.Cleanup(func() { cancel(); rt.Close() })
	eng := engine.New(logger)
	eng.Swap(rt)
	return eng
}

// Serve serves h on 127.0.0.1 until tb ends, with the forward-auth
// service's server settings, and returns the base URL.
func Serve(tb testing.TB, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hs := forwardauth.NewHTTPServer(ln.Addr().String(), h, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	go hs.Serve(ln)
	tb.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

// Plain answers 200 to everything: the no-policy baseline.
func Plain(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }

// Caller sends one request and checks the answer; the load loop calls it
// from InFlight goroutines at once.
type Caller func() error

// HTTPClient is a keep-alive HTTP/1.1 client with one connection per
// request in flight.
func HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: 2 * InFlight, MaxIdleConnsPerHost: 2 * InFlight,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true,
	}, Timeout: 10 * time.Second}
}

// ForwardAuthCaller asks url as Traefik's ForwardAuth does about Request.
func (env *Env) ForwardAuthCaller(c *http.Client, url string) Caller {
	return func() error {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		h := req.Header
		h["X-Forwarded-Method"] = []string{Method}
		h["X-Forwarded-Proto"] = []string{"https"}
		h["X-Forwarded-Host"] = []string{Host}
		h["X-Forwarded-Uri"] = []string{Target}
		h["X-Forwarded-For"] = []string{ClientIP}
		h["Authorization"] = []string{"Bearer " + env.Token}
		h["Accept"] = []string{"application/json"}
		h["User-Agent"] = []string{"bench/1.0"}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}

// CheckRequest is Request as Envoy describes it.
func (env *Env) CheckRequest() *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: ClientIP, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 50123}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: Method, Path: Target, Host: Host, Scheme: "https", Protocol: "HTTP/1.1",
			Headers: map[string]string{":authority": Host, ":method": Method, ":path": Target,
				"authorization": "Bearer " + env.Token, "accept": "application/json", "user-agent": "bench/1.0"},
		}},
	}}
}

// GRPC serves an Authorization server on 127.0.0.1 until tb ends and
// returns one client connection to it.
func GRPC(tb testing.TB, srv authv3.AuthorizationServer) *grpc.ClientConn {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var gs *grpc.Server
	if s, ok := srv.(*extauthz.Server); ok {
		gs = extauthz.NewGRPCServer(s, 0)
	} else {
		gs = grpc.NewServer()
		authv3.RegisterAuthorizationServer(gs, srv)
	}
	go gs.Serve(ln)
	tb.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// PlainCheck answers OK to every check: the no-policy gRPC baseline.
type PlainCheck struct {
	authv3.UnimplementedAuthorizationServer
}

func (PlainCheck) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, nil
}

// CheckCaller sends the CheckRequest over conn.
func (env *Env) CheckCaller(conn *grpc.ClientConn) Caller {
	c := authv3.NewAuthorizationClient(conn)
	req := env.CheckRequest()
	return func() error {
		resp, err := c.Check(context.Background(), req)
		if err != nil {
			return err
		}
		if resp.GetOkResponse() == nil {
			return fmt.Errorf("denied: %v", resp)
		}
		return nil
	}
}

// Result is one target's share of a run.
type Result struct {
	Name     string
	Requests int
	Wall     time.Duration
	// CPU is the process's CPU time (user + system) while this target was
	// driven: client and server both, since both run in this process; the
	// client's share is the same for every HTTP target, so differences are
	// the servers'.
	CPU time.Duration
	lat []time.Duration
}

// CPUPerRequest is the process's CPU time per request, in microseconds.
func (r *Result) CPUPerRequest() float64 {
	return float64(r.CPU.Microseconds()) / float64(r.Requests)
}

// processCPU is the CPU time this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Rate is requests per second.
func (r *Result) Rate() float64 { return float64(r.Requests) / r.Wall.Seconds() }

// P99 is the 99th percentile latency.
func (r *Result) P99() time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[(len(s)*99)/100]
}

// Drive sends total requests through call, InFlight at a time, and adds
// them to r. It stops at total or at the first error.
func (r *Result) Drive(call Caller, total int) error {
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), processCPU()
	for range min(InFlight, total) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, total/InFlight+1)
			for next.Add(1) <= int64(total) {
				t0 := time.Now()
				if err := call(); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					break
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			r.lat = append(r.lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.Wall += time.Since(start)
	r.CPU += processCPU() - cpu0
	r.Requests += total
	return firstErr
}

// Rounds drives every target with n requests in all, in rounds that
// rotate their order so that other load on the machine falls on all alike,
// after a warm-up of each.
func Rounds(tb testing.TB, n int, names []string, calls []Caller) []*Result {
	tb.Helper()
	res := make([]*Result, len(calls))
	for i, c := range calls {
		res[i] = &Result{Name: names[i]}
		warm := &Result{}
		if err := warm.Drive(c, 4*InFlight); err != nil {
			tb.Fatalf("%s warm-up: %v", names[i], err)
		}
	}
	const rounds = 8
	for r := range rounds {
		per := n / rounds
		if r < n%rounds {
			per++
		}
		if per == 0 {
			continue
		}
		for k := range calls {
			i := (k + r) % len(calls)
			if err := res[i].Drive(calls[i], per); err != nil {
				tb.Fatalf("%s: %v", names[i], err)
			}
		}
	}
	return res
}

// Report puts each target's rate and p99 on b, and ratio/name for each
// target against base.
func Report(b *testing.B, res []*Result, base int) {
	for _, r := range res {
		b.ReportMetric(r.Rate(), r.Name+"-req/s")
		b.ReportMetric(float64(r.P99().Microseconds()), r.Name+"-p99-us")
		b.ReportMetric(r.CPUPerRequest(), r.Name+"-cpu-us/req")
	}
	for i, r := range res {
		if i != base {
			b.ReportMetric(r.Rate()/res[base].Rate(), r.Name+"/"+res[base].Name)
		}
	}
}
