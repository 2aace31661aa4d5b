package bot

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type signer struct {
	agent string
	pub   ed25519.PublicKey
	priv  ed25519.PrivateKey
}

func newSigner(t testing.TB, agent string) signer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{agent, pub, priv}
}

func (s signer) jwks(kid bool) []byte {
	k := fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":"%s"`, base64.RawURLEncoding.EncodeToString(s.pub))
	if kid {
		k += fmt.Sprintf(`,"kid":"%s"`, Thumbprint(s.pub))
	}
	return []byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"},` + k + `}]}`)
}

// sign signs r the way an agent following the draft does, writing the
// signature base by hand from RFC 9421 §2.5 (not with the code under test).
func (s signer) sign(r *http.Request, created, expires int64, authority string) {
	params := fmt.Sprintf(`("@authority" "signature-agent";key="sig1");created=%d;expires=%d;keyid="%s";alg="ed25519";nonce="n0nce";tag="web-bot-auth"`,
		created, expires, Thumbprint(s.pub))
	agentMember := `"` + s.agent + `"`
	base := `"@authority": ` + authority + "\n" +
		`"signature-agent";key="sig1": ` + agentMember + "\n" +
		`"@signature-params": ` + params
	sig := ed25519.Sign(s.priv, []byte(base))
	r.Header.Set("Signature-Agent", "sig1="+agentMember)
	r.Header.Set("Signature-Input", "sig1="+params)
	r.Header.Set("Signature", "sig1=:"+base64.StdEncoding.EncodeToString(sig)+":")
}

func TestWebBotAuth(t *testing.T) {
	good := newSigner(t, "https://agent.example")
	other := newSigner(t, "https://other.example")
	dir := NewDirectory()
	if err := dir.AddJWKS("https://agent.example/", good.jwks(true)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other.jwks")
	os.WriteFile(path, other.jwks(false), 0o644)
	if err := dir.LoadJWKSFile("https://other.example:443", path); err != nil {
		t.Fatal(err)
	}
	v := &WebBotAuth{Dir: dir}
	now := time.Unix(1_800_000_000, 0)
	c, e := now.Unix()-10, now.Unix()+300

	req := func() *http.Request {
		r := httptest.NewRequest("GET", "https://www.site.example/articles/1?page=2", nil)
		r.TLS = &tls.ConnectionState{}
		return r
	}
	r := req()
	good.sign(r, c, e, "www.site.example")
	a, err := v.Verify(r, now)
	if err != nil {
		t.Fatalf("good signature: %v", err)
	}
	if a.URL != "https://agent.example" || a.KeyID != Thumbprint(good.pub) || a.Label != "sig1" {
		t.Fatalf("agent %+v", a)
	}
	r = req()
	other.sign(r, c, e, "www.site.example")
	if a, err := v.Verify(r, now); err != nil || a.URL != "https://other.example" {
		t.Fatalf("second agent from a file: %+v %v", a, err)
	}

	cases := []struct {
		name string
		edit func(r *http.Request)
		now  time.Time
		want WBAReason
	}{
		{"unsigned", func(r *http.Request) {}, now, WBANotSigned},
		{"expired", func(r *http.Request) { good.sign(r, c-600, c-300, "www.site.example") }, now, WBAExpired},
		{"created in the future", func(r *http.Request) { good.sign(r, now.Unix()+3600, now.Unix()+3700, "www.site.example") }, now, WBANotYetValid},
		{"valid for two days", func(r *http.Request) { good.sign(r, c, c+48*3600, "www.site.example") }, now, WBATooLong},
		{"signed for another host", func(r *http.Request) { good.sign(r, c, e, "elsewhere.example") }, now, WBABadSignature},
		{"agent URL swapped after signing", func(r *http.Request) {
			good.sign(r, c, e, "www.site.example")
			r.Header.Set("Signature-Agent", `sig1="https://other.example"`)
		}, now, WBAUnknownKey}, // other.example has no key with good's thumbprint: (URL, key) pairs
		{"agent not in the directory", func(r *http.Request) {
			s := newSigner(t, "https://stranger.example")
			s.sign(r, c, e, "www.site.example")
		}, now, WBAUnknownAgent},
		{"key not the agent's", func(r *http.Request) {
			s := newSigner(t, "https://agent.example")
			s.sign(r, c, e, "www.site.example")
		}, now, WBAUnknownKey},
		{"signature bytes flipped", func(r *http.Request) {
			good.sign(r, c, e, "www.site.example")
			sig := r.Header.Get("Signature")
			b, _ := base64.StdEncoding.DecodeString(sig[6 : len(sig)-1])
			b[0] ^= 1
			r.Header.Set("Signature", "sig1=:"+base64.StdEncoding.EncodeToString(b)+":")
		}, now, WBABadSignature},
		{"tag is not web-bot-auth", func(r *http.Request) {
			good.sign(r, c, e, "www.site.example")
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), `tag="web-bot-auth"`, `tag="other"`, 1))
		}, now, WBANotSigned},
		{"no keyid", func(r *http.Request) {
			good.sign(r, c, e, "www.site.example")
			in := r.Header.Get("Signature-Input")
			i := strings.Index(in, ";keyid=")
			j := strings.Index(in, ";alg=")
			r.Header.Set("Signature-Input", in[:i]+in[j:])
		}, now, WBAMissingParam},
		{"signature-agent not covered", func(r *http.Request) {
			good.sign(r, c, e, "www.site.example")
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), ` "signature-agent";key="sig1"`, ``, 1))
		}, now, WBAMissingComponent},
		{"not https agent", func(r *http.Request) {
			good.sign(r, c, e, "www.site.example")
			r.Header.Set("Signature-Agent", `sig1="http://agent.example"`)
		}, now, WBAUnknownAgent},
		{"garbage", func(r *http.Request) {
			r.Header.Set("Signature-Input", `sig1=("@authority";created=1`)
		}, now, WBAMalformed},
		{"rsa algorithm", func(r *http.Request) {
			good.sign(r, c, e, "www.site.example")
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), `alg="ed25519"`, `alg="rsa-pss-sha512"`, 1))
		}, now, WBAUnsupported},
	}
	for _, tc := range cases {
		r := req()
		tc.edit(r)
		if _, err := v.Verify(r, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

// The legacy form of Signature-Agent, a bare String covered as
// "signature-agent", is accepted as the draft allows; the Host's default
// port is not part of @authority.
func TestWebBotAuthLegacyAgent(t *testing.T) {
	s := newSigner(t, "https://agent.example")
	dir := NewDirectory()
	dir.AddJWKS(s.agent, s.jwks(false))
	v := &WebBotAuth{Dir: dir}
	now := time.Unix(1_800_000_000, 0)
	params := fmt.Sprintf(`("@authority" "signature-agent");created=%d;expires=%d;keyid="%s";tag="web-bot-auth"`, now.Unix(), now.Unix()+60, Thumbprint(s.pub))
	base := "\"@authority\": site.example\n\"signature-agent\": \"https://agent.example\"\n\"@signature-params\": " + params
	r := httptest.NewRequest("GET", "http://SITE.example:80/", nil)
	r.Header.Set("Signature-Agent", `"https://agent.example"`)
	r.Header.Set("Signature-Input", "wba="+params)
	r.Header.Set("Signature", "wba=:"+base64.StdEncoding.EncodeToString(ed25519.Sign(s.priv, []byte(base)))+":")
	if a, err := v.Verify(r, now); err != nil || a.Label != "wba" {
		t.Fatalf("legacy agent: %+v %v", a, err)
	}
}

func TestDirectoryRefusesBadKeys(t *testing.T) {
	s := newSigner(t, "https://agent.example")
	d := NewDirectory()
	if err := d.AddJWKS("http://agent.example", s.jwks(false)); err == nil {
		t.Fatal("http agent accepted")
	}
	if err := d.AddJWKS("https://agent.example/path", s.jwks(false)); err == nil {
		t.Fatal("agent with a path accepted")
	}
	if err := d.AddJWKS("https://agent.example", []byte(`{"keys":[{"kty":"RSA"}]}`)); err == nil {
		t.Fatal("a set with no Ed25519 key accepted")
	}
	wrongKid := strings.Replace(string(s.jwks(true)), Thumbprint(s.pub), "not-the-thumbprint", 1)
	if err := d.AddJWKS("https://agent.example", []byte(wrongKid)); err == nil {
		t.Fatal("kid that is not the thumbprint accepted")
	}
}

// RFC 8037 Appendix A.3: the thumbprint of the example Ed25519 key.
func TestThumbprintRFC8037(t *testing.T) {
	x, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if got := Thumbprint(ed25519.PublicKey(x)); got != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Fatalf("thumbprint %s", got)
	}
}

func TestParseDictionary(t *testing.T) {
	d, err := parseDictionary(`a=1, b="x\"y";p=?0, c=(1 "two";k=t), d, e=:aGk=:`)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 5 || d[0].item.num != 1 || d[1].item.str != `x"y` || d[1].raw != `"x\"y";p=?0` ||
		!d[2].isList || len(d[2].list) != 2 || d[2].list[1].raw != `"two";k=t` || !d[3].item.boolean || string(d[4].item.bytes) != "hi" {
		t.Fatalf("%+v", d)
	}
	for _, bad := range []string{`a=`, `A=1`, `a=1,`, `a=(1`, `a="x`, `a=:!!:`, `a=1 b=2`, `a=12345678901234567`} {
		if _, err := parseDictionary(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
