package extauthz_test

// The ext_authz service driven by a real gRPC client built from
// go-control-plane's generated stubs, as Envoy calls it.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/warden-gateway/warden/internal/authz/authztest"
	"github.com/warden-gateway/warden/internal/authz/extauthz"
)

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func start(t *testing.T, peers string) (*authztest.Policy, authv3.AuthorizationClient, *grpc.ClientConn, *authztest.RecordLog) {
	t.Helper()
	p := authztest.WritePolicy(t, peers)
	var log authztest.RecordLog
	addr := authztest.ExtAuthz(t, authztest.Engine(t, p.Config(t), log.Logger()))
	conn := dial(t, addr)
	return p, authv3.NewAuthorizationClient(conn), conn, &log
}

// check builds a CheckRequest as Envoy sends it: lower-case headers with
// the pseudo-headers among them.
func check(method, path, source string, headers map[string]string) *authv3.CheckRequest {
	h := map[string]string{":authority": authztest.SiteHost, ":method": method, ":path": path, "accept": "application/json"}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: source, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Path: path, Host: authztest.SiteHost, Scheme: "https", Protocol: "HTTP/2", Headers: h,
		}},
	}}
}

func call(t *testing.T, c authv3.AuthorizationClient, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return resp
}

func headerMap(hs []*corev3.HeaderValueOption) map[string]string {
	out := map[string]string{}
	for _, h := range hs {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			out["!append "+h.GetHeader().GetKey()] = h.GetAppendAction().String()
		}
		out[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return out
}

type problem struct {
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Reason    string `json:"reason"`
	RequestID string `json:"request_id"`
}

func deniedOf(t *testing.T, resp *authv3.CheckResponse) (*authv3.DeniedHttpResponse, problem) {
	t.Helper()
	d := resp.GetDeniedResponse()
	if d == nil {
		t.Fatalf("want a denial, got %v", resp)
	}
	var p problem
	if err := json.Unmarshal([]byte(d.GetBody()), &p); err != nil {
		t.Fatalf("denial body is not warden's problem+json: %v\n%s", err, d.GetBody())
	}
	return d, p
}

func TestAllowAddsIdentityAndRemovesForgeries(t *testing.T) {
	p, c, _, _ := start(t, "")
	resp := call(t, c, check("GET", "/admin/x?page=1", "192.0.2.7", map[string]string{
		"authorization":  "Bearer " + p.Token(t, "rita", "admin", "ops"),
		"x-warden-user":  "mallory", // the client's own: must not reach the upstream
		"x-warden-extra": "1",
		"x_real_ip":      "127.0.0.1", // dropped before any rule, and removed
	}))
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("status %v, want OK: %v", resp.GetStatus(), resp)
	}
	ok := resp.GetOkResponse()
	h := headerMap(ok.GetHeaders())
	if h["x-warden-user"] != "rita" || h["x-warden-roles"] != "admin,ops" || len(h["x-request-id"]) != 16 {
		t.Errorf("headers for the upstream %v; want x-warden-user rita, x-warden-roles admin,ops, x-request-id, all overwriting", h)
	}
	for k := range h {
		if strings.HasPrefix(k, "!append") {
			t.Errorf("%s: %s, want OVERWRITE_IF_EXISTS_OR_ADD", k, h[k])
		}
	}
	removed := strings.Join(ok.GetHeadersToRemove(), " ")
	for _, want := range []string{"x-warden-extra", "x_real_ip"} {
		if !strings.Contains(removed, want) {
			t.Errorf("headers_to_remove %q lacks %s", removed, want)
		}
	}
	if strings.Contains(removed, "x-warden-user") {
		t.Errorf("headers_to_remove %q would remove the identity warden sets", removed)
	}

	// An anonymous allow removes the client's identity headers.
	resp = call(t, c, check("GET", "/pub/hello.txt", "192.0.2.7", map[string]string{"x-warden-user": "root", "x-warden-roles": "admin"}))
	ok = resp.GetOkResponse()
	if ok == nil {
		t.Fatalf("want an allow: %v", resp)
	}
	if removed := strings.Join(ok.GetHeadersToRemove(), " "); !strings.Contains(removed, "x-warden-user") || !strings.Contains(removed, "x-warden-roles") {
		t.Errorf("anonymous allow: headers_to_remove %q must hold the client's x-warden-user and x-warden-roles", removed)
	}
	if h := headerMap(ok.GetHeaders()); h["x-warden-user"] != "" {
		t.Errorf("anonymous allow sets x-warden-user %q", h["x-warden-user"])
	}
}

func TestDenialCarriesWardensRefusal(t *testing.T) {
	p, c, _, log := start(t, "")
	cases := []struct {
		name      string
		req       *authv3.CheckRequest
		status    int
		code      string
		rpc       codes.Code
		challenge bool
	}{
		{"no credentials", check("GET", "/admin/x", "192.0.2.7", nil), 401, "unauthenticated", codes.Unauthenticated, true},
		{"JWT without the role", check("GET", "/admin/x", "192.0.2.7", map[string]string{"authorization": "Bearer " + p.Token(t, "u", "user")}), 403, "role_required", codes.PermissionDenied, false},
		{"blocked source", check("GET", "/pub/hello.txt", authztest.Blocked, nil), 403, "ip_blocked", codes.PermissionDenied, false},
		{"concealed", check("GET", "/internal/secret", "192.0.2.7", nil), 404, "not_found", codes.PermissionDenied, false},
		{"bad path", check("GET", "/a/%2e%2e/%2e%2e/etc/passwd", "192.0.2.7", nil), 400, "bad_request", codes.PermissionDenied, false},
		{"override header", check("GET", "/pub/hello.txt", "192.0.2.7", map[string]string{"x-original-url": "/admin/x"}), 400, "bad_request", codes.PermissionDenied, false},
		{"WAF on the body", func() *authv3.CheckRequest {
			r := check("POST", "/pub/search", "192.0.2.7", map[string]string{"content-type": "application/x-www-form-urlencoded"})
			r.Attributes.Request.Http.Body = "q=1' OR '1'='1"
			return r
		}(), 403, "waf_blocked", codes.PermissionDenied, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := call(t, c, tc.req)
			if got := codes.Code(resp.GetStatus().GetCode()); got != tc.rpc {
				t.Errorf("rpc status %v, want %v", got, tc.rpc)
			}
			d, prob := deniedOf(t, resp)
			if int(d.GetStatus().GetCode()) != tc.status || prob.Status != tc.status || prob.Code != tc.code {
				t.Errorf("denied %d with %+v, want %d %s", d.GetStatus().GetCode(), prob, tc.status, tc.code)
			}
			h := headerMap(d.GetHeaders())
			if h["content-type"] != "application/problem+json" || h["x-request-id"] != prob.RequestID || h["content-length"] != "" {
				t.Errorf("denial headers %v: want warden's content-type and x-request-id, no content-length", h)
			}
			if (h["www-authenticate"] != "") != tc.challenge {
				t.Errorf("www-authenticate %q (want one: %v)", h["www-authenticate"], tc.challenge)
			}
			if recs := log.ByID(t)[prob.RequestID]; len(recs) != 1 || recs[0].Code != tc.code || recs[0].Front != extauthz.Front {
				t.Errorf("decision records for %s: %+v", prob.RequestID, recs)
			}
		})
	}
}

func TestMalformedChecksAreDenied(t *testing.T) {
	_, c, _, log := start(t, "")
	noHTTP := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{}}
	noSource := check("GET", "/pub/", "", nil)
	noSource.Attributes.Source = nil
	pipe := check("GET", "/pub/", "/run/envoy.sock", nil)
	noMethod := check("", "/pub/", "192.0.2.7", nil)
	noPath := check("GET", "", "192.0.2.7", nil)
	for name, tc := range map[string]struct {
		req    *authv3.CheckRequest
		reason string
	}{
		"empty":             {&authv3.CheckRequest{}, "no HTTP request"},
		"no http":           {noHTTP, "no HTTP request"},
		"no source":         {noSource, "source address"},
		"source not an IP":  {pipe, "source address"},
		"no method":         {noMethod, "no method"},
		"no path":           {noPath, "no path"},
		"a path, not a URI": {check("GET", "pub/x", "192.0.2.7", nil), "does not start with /"},
	} {
		t.Run(name, func(t *testing.T) {
			resp := call(t, c, tc.req)
			d, prob := deniedOf(t, resp)
			if d.GetStatus().GetCode() != 400 || prob.Code != "bad_request" || !strings.Contains(prob.Reason, tc.reason) {
				t.Errorf("denied %d %+v, want 400 bad_request saying %q", d.GetStatus().GetCode(), prob, tc.reason)
			}
			if got := codes.Code(resp.GetStatus().GetCode()); got == codes.OK {
				t.Errorf("rpc status OK for a malformed check")
			}
			if len(log.ByID(t)[prob.RequestID]) != 1 {
				t.Errorf("the denial is not logged")
			}
		})
	}
}

func TestOversizedCheckIsRefused(t *testing.T) {
	// The shared policy bounds a CheckRequest at 64 KiB.
	_, c, _, _ := start(t, "")
	req := check("POST", "/pub/search", "192.0.2.7", nil)
	req.Attributes.Request.Http.Body = strings.Repeat("a", 128<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Check(ctx, req)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a 128 KiB CheckRequest: %v, want RESOURCE_EXHAUSTED", err)
	}
	// The connection still serves the next check.
	if resp := call(t, c, check("GET", "/pub/hello.txt", "192.0.2.7", nil)); resp.GetOkResponse() == nil {
		t.Errorf("after an oversized check: %v", resp)
	}
}

func TestOnlyPeersAreAnswered(t *testing.T) {
	_, c, _, log := start(t, "10.0.0.0/8")
	resp := call(t, c, check("GET", "/pub/hello.txt", "192.0.2.7", nil))
	d, prob := deniedOf(t, resp)
	if d.GetStatus().GetCode() != 403 || prob.Code != "policy_denied" || !strings.Contains(prob.Reason, "ext_authz.peers") {
		t.Errorf("a check from a peer not listed: %d %+v", d.GetStatus().GetCode(), prob)
	}
	if recs := log.ByID(t)[prob.RequestID]; len(recs) != 1 || !strings.Contains(recs[0].Detail, "127.0.0.1") {
		t.Errorf("not logged with the peer: %+v", recs)
	}
}

func TestHealth(t *testing.T) {
	_, _, conn, _ := start(t, "")
	h := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", "envoy.service.auth.v3.Authorization"} {
		resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q: %v %v", svc, resp, err)
		}
	}
	if _, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("health of an unknown service: %v, want NOT_FOUND", err)
	}
}
