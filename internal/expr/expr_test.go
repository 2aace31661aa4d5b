package expr

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/identity"
)

func testActivation() *Activation {
	h := http.Header{}
	h.Set("User-Agent", "curl/8.5")
	h.Set("X-Team", "ops")
	h.Add("Accept", "text/html")
	h.Add("Accept", "application/json")
	return &Activation{
		Request: &canonical.Request{
			Method: "GET", Host: "api.example.com", Path: "/admin/users", RawQuery: "page=2",
			Header: h, TLS: true,
		},
		Client: Client{IP: netip.MustParseAddr("203.0.113.7"), Country: "FR", ASN: 64500},
		Principal: &identity.Principal{
			ID: "alice", Method: "jwt", Roles: []string{"admin", "ops"}, Scopes: []string{"read:users"},
			Claims: map[string]any{
				"email":          "alice@example.com",
				"email_verified": true,
				"realm_access":   map[string]any{"roles": []any{"admin"}},
				"level":          float64(3),
			},
		},
	}
}

func TestEval(t *testing.T) {
	anon := testActivation()
	anon.Principal = nil
	cases := []struct {
		src  string
		act  *Activation
		want bool
	}{
		{`request.method == "GET" && "admin" in principal.roles`, testActivation(), true},
		{`request.method == "GET" && "admin" in principal.roles`, anon, false},
		{`request.host == "api.example.com" && request.path.startsWith("/admin/")`, testActivation(), true},
		{`request.query == "page=2" && request.scheme == "https"`, testActivation(), true},
		{`request.headers["user-agent"].startsWith("curl/")`, testActivation(), true},
		{`request.headers["accept"] == "text/html, application/json"`, testActivation(), true},
		{`"x-team" in request.headers && !("x-missing" in request.headers)`, testActivation(), true},
		{`has(request.headers.x_missing)`, testActivation(), false},
		{`request.headers[?"x-missing"].orValue("none") == "none"`, testActivation(), true},
		{`request.headers.size() == 3`, testActivation(), true},
		{`request.headers.exists(k, k == "x-team")`, testActivation(), true},
		{`client.ip == "203.0.113.7" && client.country in ["FR", "DE"] && client.asn == 64500`, testActivation(), true},
		{`principal.authenticated && principal.id == "alice" && principal.method == "jwt"`, testActivation(), true},
		{`principal.authenticated || principal.id == ""`, anon, true},
		{`"read:users" in principal.scopes`, testActivation(), true},
		{`principal.claims.email.endsWith("@example.com") && principal.claims.email_verified == true`, testActivation(), true},
		{`"admin" in principal.claims.realm_access.roles`, testActivation(), true},
		{`principal.claims.level > 2.0`, testActivation(), true},
		{`size(principal.roles) == 0 && size(principal.claims) == 0`, anon, true},
		{`request.path.lowerAscii().contains("admin")`, testActivation(), true},
	}
	for _, tc := range cases {
		p, err := Compile(tc.src)
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		got, err := p.Eval(tc.act)
		if err != nil {
			t.Errorf("%s: eval: %v", tc.src, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s = %v, want %v", tc.src, got, tc.want)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	for _, src := range []string{
		`request.headers["x-missing"] == "a"`,
		`principal.claims.nothing == "a"`,
	} {
		p, err := Compile(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if _, err := p.Eval(testActivation()); err == nil || !strings.Contains(err.Error(), "no such key") {
			t.Errorf("%s: err = %v, want a no such key error", src, err)
		}
	}
	p, _ := Compile(`true`)
	if _, err := p.Eval(&Activation{}); err == nil {
		t.Error("evaluation without a request succeeded")
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		src, want string
	}{
		{`request.methd == "GET"`, `1:8: undefined field 'methd'`},
		{"request.method == \"GET\" &&\n  client.asn == \"64500\"", `2:14: found no matching overload for '_==_' applied to '(int, string)'`},
		{`nosuch == 1`, `1:1: undeclared reference to 'nosuch'`},
		{`request.method`, `1:1: expression must yield a bool, but yields string`},
		{`principal.claims.admin`, `principal.claims.admin == true`},
		{`request.method ==`, `1:18: Syntax error`},
		{`   `, `empty expression`},
		{`warden.Request{method: "x"}.method == "x"`, `1:15: warden.Request values cannot be created`},
		{`principal.roles.exists(principal, principal == "x")`, `1:23: variable name "principal" hides the top-level principal`},
	}
	for _, tc := range cases {
		_, err := Compile(tc.src)
		if err == nil {
			t.Errorf("%q compiled", tc.src)
			continue
		}
		var ce *CompileError
		if !errors.As(err, &ce) && tc.want != "" {
			t.Errorf("%q: error %T is not a *CompileError", tc.src, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %q, want it to contain %q", tc.src, err, tc.want)
		}
	}
	_, err := Compile("request.path == 1")
	var ce *CompileError
	if !errors.As(err, &ce) || len(ce.Issues) != 1 || ce.Issues[0].Line != 1 || ce.Issues[0].Column != 14 || !strings.Contains(ce.Detail, "^") {
		t.Fatalf("issues = %+v detail=%q", ce, ce.Detail)
	}
}

func TestUses(t *testing.T) {
	cases := []struct {
		src               string
		principal, client bool
	}{
		{`request.method == "GET"`, false, false},
		{`"admin" in principal.roles`, true, false},
		{`client.country == "FR"`, false, true},
		{`client.asn == 1 || principal.authenticated`, true, true},
	}
	for _, tc := range cases {
		p, err := Compile(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if p.UsesPrincipal() != tc.principal || p.UsesClient() != tc.client {
			t.Errorf("%s: UsesPrincipal=%v UsesClient=%v, want %v %v", tc.src, p.UsesPrincipal(), p.UsesClient(), tc.principal, tc.client)
		}
		if p.Source() != tc.src {
			t.Errorf("source = %q", p.Source())
		}
	}
}

func TestConcurrentEval(t *testing.T) {
	p, err := Compile(`request.method == "GET" && "admin" in principal.roles`)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for i := range 8 {
		go func() {
			a := testActivation()
			if i%2 == 1 {
				a.Principal = nil
			}
			for range 500 {
				got, err := p.Eval(a)
				if err != nil || got != (i%2 == 0) {
					done <- errors.New("wrong result under concurrency")
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkEval(b *testing.B) {
	p, err := Compile(`request.method == "GET" && "admin" in principal.roles`)
	if err != nil {
		b.Fatal(err)
	}
	a := testActivation()
	b.ReportAllocs()
	for b.Loop() {
		ok, err := p.Eval(a)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkEvalHeaders(b *testing.B) {
	p, err := Compile(`request.headers["x-team"] == "ops" && client.country == "FR"`)
	if err != nil {
		b.Fatal(err)
	}
	a := testActivation()
	b.ReportAllocs()
	for b.Loop() {
		ok, err := p.Eval(a)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
