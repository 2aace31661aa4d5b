package identity

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/canonical"
)

func TestLooksLikeJWT(t *testing.T) {
	for v, want := range map[string]bool{
		b64(`{"alg":"RS256"}`) + ".e30.c2ln":                     true,
		b64("{\n  \"alg\": \"RS256\"\n}") + ".e30.c2ln":          true, // pretty-printed: "ewog..."
		b64(" {\"alg\":\"RS256\"}") + ".e30.c2ln":                true,
		b64(`{"alg":"RS256"`) + ".e30.c2ln":                      true, // malformed, but a JOSE header: the JWT authenticator says why
		b64(`{"alg":"none"}`) + ".e30.":                          true, // empty signature
		b64(`["RS256"]`) + ".e30.c2ln":                           false,
		"abc.def.ghi":                                            false, // opaque key with dots
		"eyJhbGciOiJSUzI1NiJ9.e30":                               false, // two segments
		"eyJhbGciOiJSUzI1NiJ9.e30.c2ln.eHl6":                     false, // four: a JWE has five, nothing has four
		"eyJhbGciOiJSUzI1NiJ9=.e30.c2ln":                         false, // padding is not base64url (RFC 7515 2)
		"eyJhbGciOiJSUzI1NiJ9.e3+0.c2ln":                         true,  // broken payload: a malformed token, not an API key
		"eyJhbGciOiJSUzI1NiJ9.%%%.xyz":                           true,
		"eyJhbGciOiJSUzI1NiJ9+.e30.c2ln":                         false, // header in the standard alphabet
		".e30.c2ln":                                              false,
		"corpus-admin-key-0123456789":                            false,
		"eyJ" + strings.Repeat("A", maxTokenBytes) + ".e30.c2ln": true, // over the bound: judged by shape, refused for length
	} {
		if got := looksLikeJWT(v); got != want {
			t.Errorf("looksLikeJWT(%.60q) = %v, want %v", v, got, want)
		}
	}
}

func TestClaimPathAmbiguity(t *testing.T) {
	parse := func(s string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	cases := []struct {
		claims, path string
		want         []string
		ambiguous    bool
	}{
		{`{"realm_access":{"roles":["user"]}}`, "realm_access.roles", []string{"user"}, false},
		{`{"https://example.com/roles":["staff"]}`, "https://example.com/roles", []string{"staff"}, false},
		{`{"a":{"b":{"c":["x"]}}}`, "a.b.c", []string{"x"}, false},
		{`{"a":{"b.c":["x"]}}`, "a.b.c", []string{"x"}, false},
		{`{"realm_access":{}}`, "realm_access.roles", nil, false},
		{`{}`, "realm_access.roles", nil, false},
		// issue 10 (a): the literal member beside the nested one.
		{`{"realm_access":{"roles":["user"]},"realm_access.roles":["admin"]}`, "realm_access.roles", nil, true},
		// ... beside a nested object that lacks the member.
		{`{"realm_access":{"other":1},"realm_access.roles":["admin"]}`, "realm_access.roles", nil, true},
		// ... at a deeper level.
		{`{"a":{"b":{"c":["x"]},"b.c":["y"]}}`, "a.b.c", nil, true},
		{`{"a.b":{"c":["x"]},"a":{"b":{"c":["y"]}}}`, "a.b.c", nil, true},
	}
	for _, tc := range cases {
		v, err := claimPath(parse(tc.claims), tc.path)
		var amb errAmbiguousClaim
		if tc.ambiguous != errors.As(err, &amb) {
			t.Errorf("%s %s: err = %v, ambiguous %v", tc.claims, tc.path, err, tc.ambiguous)
			continue
		}
		if got := claimStrings(v, false); !slices.Equal(got, tc.want) {
			t.Errorf("%s %s: %v, want %v", tc.claims, tc.path, got, tc.want)
		}
	}
}

// Through the authenticator: the ambiguous token is refused naming the
// path, and never yields the literal member's roles.
func TestJWTRefusesAmbiguousRoles(t *testing.T) {
	ek := ecTK()
	j := newJWTForTest(t, JWTConfig{JWKSFile: writeJWKS(t, ek), Algorithms: []string{"ES256"}, RolesClaim: "realm_access.roles"})
	tok := sign(t, ek.signer, ek.kid, "ES256", claimsAt(t0, map[string]any{
		"roles": nil, "realm_access": map[string]any{"roles": []string{"user"}}, "realm_access.roles": []string{"admin"},
	}))
	p, err := j.Authenticate(bearerRequest(tok), t0)
	if p != nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `claim path "realm_access.roles" is ambiguous`) {
		t.Fatalf("p=%+v err=%v", p, err)
	}
}

func TestRepeatedAuthorizationRefused(t *testing.T) {
	h := http.Header{"Authorization": {"Basic YTpi", "Bearer x.y.z"}}
	if !repeatedScheme(h, "basic ") || !repeatedScheme(h, "bearer ") {
		t.Fatal("repeated headers not seen")
	}
	if repeatedScheme(http.Header{"Authorization": {"Basic YTpi"}}, "basic ") {
		t.Fatal("one header counted as repeated")
	}
	a := &APIKeys{Bearer: true, Keys: []APIKey{{ID: "k", SHA256: [32]byte{}}}}
	r := &canonical.Request{Header: http.Header{"Authorization": {"Bearer one", "Bearer two"}}}
	if _, err := a.Authenticate(r, t0); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "more than one Authorization") {
		t.Fatalf("err = %v", err)
	}
}
