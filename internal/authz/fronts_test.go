package authz_test

// One table of requests through every front end that judges with the
// engine and answers a client or a proxy: the gateway, the Go middleware,
// forward-auth (as Traefik and Caddy ask, and as nginx asks) and ext_authz
// (a real gRPC client built from go-control-plane's stubs). Each must give
// the same decision, code and status, and the same decision record but for
// what names the front end itself.

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/warden-gateway/warden/internal/authz/authztest"
	"github.com/warden-gateway/warden/internal/authz/forwardauth"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/middleware"
)

// frontCase is one request of the shared table.
type frontCase struct {
	name   string
	method string
	target string
	// client is the address the request comes from: the gateway and the
	// middleware see it as the TCP peer, forward-auth as the proxy's
	// report, ext_authz as the source address.
	client  string
	headers []string
	// want is the action and code every front end must decide.
	want string
}

const frontUA = "authz-fronts-test/1.0"

func frontCases(p *authztest.Policy, t *testing.T) []frontCase {
	admin, user := p.Token(t, "rita", "admin"), p.Token(t, "ursula", "user")
	return []frontCase{
		{name: "public page", method: "GET", target: "/pub/hello.txt", want: "allow"},
		{name: "blocked address", method: "GET", target: "/pub/hello.txt", client: authztest.Blocked, want: "deny ip_blocked"},
		{name: "blocked via trusted proxy", method: "GET", target: "/pub/hello.txt", client: authztest.Trusted, headers: []string{"X-Forwarded-For: " + authztest.Blocked}, want: "deny ip_blocked"},
		{name: "spoofed forwarded-for", method: "GET", target: "/pub/hello.txt", client: authztest.Untrusted, headers: []string{"X-Forwarded-For: " + authztest.Blocked}, want: "allow"},
		{name: "no credentials", method: "GET", target: "/admin/x", want: "deny unauthenticated"},
		{name: "wrong key", method: "GET", target: "/admin/x", headers: []string{"X-API-Key: nope"}, want: "deny invalid_credentials"},
		{name: "key without the role", method: "GET", target: "/admin/x", headers: []string{"X-API-Key: " + authztest.UserKey}, want: "deny role_required"},
		{name: "admin key", method: "GET", target: "/admin/x", headers: []string{"X-API-Key: " + authztest.AdminKey}, want: "allow"},
		{name: "JWT with the role", method: "GET", target: "/admin/x", headers: []string{"Authorization: Bearer " + admin}, want: "allow"},
		{name: "JWT without the role", method: "GET", target: "/admin/x", headers: []string{"Authorization: Bearer " + user}, want: "deny role_required"},
		{name: "JWT signed by no one", method: "GET", target: "/api/x", headers: []string{"Authorization: Bearer " + user[:len(user)-4] + "AAAA"}, want: "deny invalid_credentials"},
		{name: "JWT on the API", method: "GET", target: "/api/x?page=2", headers: []string{"Authorization: Bearer " + user}, want: "allow"},
		{name: "admin, other case", method: "GET", target: "/ADMIN/x", want: "deny unauthenticated"},
		{name: "concealed", method: "GET", target: "/internal/secret", want: "conceal not_found"},
		{name: "denied method", method: "DELETE", target: "/pub/hello.txt", want: "deny path_forbidden"},
		{name: "user agent", method: "GET", target: "/pub/hello.txt", headers: []string{"User-Agent: sqlmap/1.7"}, want: "deny user_agent_blocked"},
		{name: "dot segments above the root", method: "GET", target: "/%2e%2e/etc/passwd", want: "deny bad_request"},
		{name: "encoded slash", method: "GET", target: "/admin%2Fx", want: "deny bad_request"},
		{name: "path override header", method: "GET", target: "/pub/hello.txt", headers: []string{"X-Original-URL: /admin/x"}, want: "deny bad_request"},
		{name: "method override header", method: "POST", target: "/pub/hello.txt", headers: []string{"X-HTTP-Method-Override: DELETE"}, want: "deny bad_request"},
		{name: "underscore header dropped", method: "GET", target: "/pub/hello.txt", headers: []string{"X_Original_URL: /admin/x"}, want: "allow"},
		{name: "sql injection", method: "GET", target: "/pub/search?q=1%27%20OR%20%271%27%3D%271", want: "deny waf_blocked"},
		{name: "benign query", method: "GET", target: "/pub/search?q=knitting+patterns", want: "allow"},
	}
}

// originalHeader is the header the client sends in every front end.
func originalHeader(c frontCase) http.Header {
	h := http.Header{}
	h.Set("Accept", "application/json")
	h.Set("User-Agent", frontUA)
	for _, line := range c.headers {
		k, v, _ := strings.Cut(line, ":")
		if k == "User-Agent" {
			h.Del(k)
		}
		h[k] = append(h[k], strings.TrimSpace(v)) // as written: X_Original_URL keeps its '_'
	}
	return h
}

func clientOr(c frontCase) string {
	if c.client == "" {
		return "127.0.0.1"
	}
	return c.client
}

// fromAddr is an HTTP client whose connections come from addr.
func fromAddr(addr string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, DisableCompression: true},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// answer is what one front end told its client.
type answer struct {
	status int
	id     string
	// realStatus is the refusal's own status where the answer had to
	// differ (nginx's auth_request sees only 401 and 403).
	realStatus int
}

func direct(t *testing.T, base string, c frontCase) answer {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = authztest.SiteHost
	req.Header = originalHeader(c)
	resp, err := fromAddr(clientOr(c)).Do(req)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return answer{status: resp.StatusCode, id: resp.Header.Get("X-Request-Id"), realStatus: resp.StatusCode}
}

// forwardAuth asks as a proxy does: Traefik and Caddy with X-Forwarded-*,
// nginx (the documented snippet) with X-Original-*. The proxy's own peer
// is the case's client; the chain the client sent is kept before it, as
// Traefik (trustForwardHeader) and nginx ($proxy_add_x_forwarded_for) do.
func forwardAuth(t *testing.T, addr string, c frontCase, nginx bool) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/auth", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := originalHeader(c)
	chain := clientOr(c)
	if prior := h.Values("X-Forwarded-For"); len(prior) > 0 {
		chain = strings.Join(prior, ", ") + ", " + chain
	}
	h.Set("X-Forwarded-For", chain)
	h.Set("X-Forwarded-Proto", "http")
	if nginx {
		h.Set("X-Original-URI", c.target)
		h.Set("X-Original-Method", c.method)
		req.Host = authztest.SiteHost
	} else {
		h.Set("X-Forwarded-Method", c.method)
		h.Set("X-Forwarded-Uri", c.target)
		h.Set("X-Forwarded-Host", authztest.SiteHost)
	}
	req.Header = h
	resp, err := fromAddr("127.0.0.1").Do(req)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	a := answer{status: resp.StatusCode, id: resp.Header.Get("X-Request-Id"), realStatus: resp.StatusCode}
	if s := resp.Header.Get(forwardauth.StatusHeader); s != "" {
		a.realStatus, _ = strconv.Atoi(s)
	}
	return a
}

// checkRequest is the CheckRequest Envoy sends for the case.
func checkRequest(c frontCase) *authv3.CheckRequest {
	headers := map[string]string{":authority": authztest.SiteHost, ":method": c.method, ":path": c.target}
	for k, v := range originalHeader(c) {
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: clientOr(c), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: c.method, Path: c.target, Host: authztest.SiteHost, Scheme: "http", Protocol: "HTTP/1.1",
			Headers: headers,
		}},
	}}
}

func extAuthz(t *testing.T, client authv3.AuthorizationClient, c frontCase) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Check(ctx, checkRequest(c))
	if err != nil {
		t.Fatalf("%s: Check: %v", c.name, err)
	}
	a := answer{}
	var hs []*corev3.HeaderValueOption
	switch r := resp.HttpResponse.(type) {
	case *authv3.CheckResponse_OkResponse:
		if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
			t.Errorf("%s: an OK response with status %v", c.name, resp.GetStatus())
		}
		a.status, hs = http.StatusOK, r.OkResponse.GetHeaders()
	case *authv3.CheckResponse_DeniedResponse:
		if codes.Code(resp.GetStatus().GetCode()) == codes.OK {
			t.Errorf("%s: a denial with status OK", c.name)
		}
		a.status, hs = int(r.DeniedResponse.GetStatus().GetCode()), r.DeniedResponse.GetHeaders()
	default:
		t.Fatalf("%s: CheckResponse without an HTTP response: %v", c.name, resp)
	}
	for _, h := range hs {
		if h.GetHeader().GetKey() == "x-request-id" {
			a.id = h.GetHeader().GetValue()
		}
	}
	a.realStatus = a.status
	return a
}

// comparable keeps what must be the same whichever front end judged.
func comparable(r engine.Record) engine.Record {
	r.RequestID, r.Front, r.Handler, r.Peer, r.Bytes, r.Target = "", "", "", "", 0, ""
	if r.Action == "allow" {
		// What an allowed request's handler answered is not the
		// decision's (the middleware's application, a file, a proxy).
		r.Status = 0
	}
	if r.WAF != nil {
		w := *r.WAF
		w.Matches = nil // their lines carry the request id
		r.WAF = &w
	}
	for i, d := range r.Dropped {
		// Envoy hands header names over in lower case.
		r.Dropped[i] = strings.ToLower(d)
	}
	return r
}

func TestDecisionServicesAgreeWithTheGateway(t *testing.T) {
	p := authztest.WritePolicy(t, "")
	cfg := p.Config(t)

	var gwLog, mwLog, faLog, eaLog authztest.RecordLog
	gw := gatewaytest.Start(t, cfg, gwLog.Logger(), nil)

	guard, err := middleware.New(p.Path, p.YAML)
	if err != nil {
		t.Fatal(err)
	}
	defer guard.Close()
	guard.WithLogger(mwLog.Logger())
	app := httptest.NewServer(guard.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "the application\n")
	})))
	defer app.Close()

	faAddr := authztest.ForwardAuth(t, authztest.Engine(t, p.Config(t), faLog.Logger()), "127.0.0.1:0")
	eaAddr := authztest.ExtAuthz(t, authztest.Engine(t, p.Config(t), eaLog.Logger()))
	conn, err := grpc.NewClient(eaAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	checks := authv3.NewAuthorizationClient(conn)

	type fronts struct{ gw, mw, traefik, nginx, envoy answer }
	answers := map[string]fronts{}
	cases := frontCases(p, t)
	for _, c := range cases {
		answers[c.name] = fronts{
			gw:      direct(t, gw.URL(), c),
			mw:      direct(t, app.URL, c),
			traefik: forwardAuth(t, faAddr, c, false),
			nginx:   forwardAuth(t, faAddr, c, true),
			envoy:   extAuthz(t, checks, c),
		}
	}
	gwRecs, mwRecs, faRecs, eaRecs := gwLog.ByID(t), mwLog.ByID(t), faLog.ByID(t), eaLog.ByID(t)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := answers[c.name]
			one := func(front string, recs map[string][]engine.Record, id string) engine.Record {
				t.Helper()
				if len(recs[id]) != 1 {
					t.Fatalf("%s: %d decision records for request id %q, want exactly one", front, len(recs[id]), id)
				}
				return recs[id][0]
			}
			g := one("gateway", gwRecs, a.gw.id)
			if got := strings.TrimSpace(g.Action + " " + g.Code); got != c.want {
				t.Errorf("gateway decided %q (stage %s, rule %s, reason %s), want %q", got, g.Stage, g.Rule, g.Reason, c.want)
			}
			if a.gw.status != g.Status {
				t.Errorf("gateway answered %d, its record says %d", a.gw.status, g.Status)
			}
			wantStatus := g.Status // the gateway's refusal, or its file's 200
			for _, f := range []struct {
				name string
				recs map[string][]engine.Record
				ans  answer
			}{
				{"middleware", mwRecs, a.mw},
				{"forward-auth (X-Forwarded-*)", faRecs, a.traefik},
				{"forward-auth (X-Original-*)", faRecs, a.nginx},
				{"ext_authz", eaRecs, a.envoy},
			} {
				r := one(f.name, f.recs, f.ans.id)
				if !reflect.DeepEqual(comparable(r), comparable(g)) {
					t.Errorf("%s and the gateway disagree:\n%-10s %+v\ngateway    %+v", f.name, f.name, comparable(r), comparable(g))
				}
				if f.ans.realStatus != wantStatus {
					t.Errorf("%s answered %d, the gateway %d", f.name, f.ans.realStatus, wantStatus)
				}
			}
			// nginx's auth_request passes on only 401 and 403.
			if s := a.nginx.status; s != http.StatusOK && s != http.StatusUnauthorized && s != http.StatusForbidden {
				t.Errorf("forward-auth answered nginx %d; auth_request would turn it into a 500", s)
			}
		})
	}
}
