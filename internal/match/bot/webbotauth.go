package bot

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Web Bot Auth (draft-meunier-webbotauth-httpsig-protocol; the IETF
// webbotauth working group): an agent signs each request with HTTP Message
// Signatures (RFC 9421) using Ed25519. The Signature-Input member carries
// tag="web-bot-auth", created, expires and keyid (the key's JWK SHA-256
// thumbprint, RFC 7638 / RFC 8037 §A.3), and covers @authority (or
// @target-uri) and the Signature-Agent member that names the agent's URL.
// Keys are looked up by the pair (agent URL, keyid), never by keyid alone
// (the draft's "Key lookup MUST be keyed on the (URL, key) pair"): otherwise
// a key learned from one agent would verify a request claiming another.
//
// This implementation takes keys from a directory the operator configures
// (JWKS files per agent URL); it never fetches keys from the URL a request
// names, so an unknown agent is simply not verified.

// WBAReason says why a Web Bot Auth signature was not accepted.
type WBAReason uint8

const (
	WBANotSigned        WBAReason = iota + 1 // no Signature-Input with tag="web-bot-auth"
	WBAMalformed                             // headers that do not parse, or a signature of the wrong size
	WBAMissingParam                          // created, expires or keyid missing
	WBAUnsupported                           // an algorithm or component this verifier does not do
	WBANotYetValid                           // created is in the future (beyond the allowed skew)
	WBAExpired                               // past expires
	WBATooLong                               // expires - created beyond the allowed validity
	WBAMissingComponent                      // @authority/@target-uri or the Signature-Agent member not covered
	WBAUnknownAgent                          // Signature-Agent names no agent in the directory
	WBAUnknownKey                            // the agent has no key with this keyid
	WBABadSignature                          // the Ed25519 signature does not verify
)

var wbaText = [...]string{
	WBANotSigned:        "not signed for web-bot-auth",
	WBAMalformed:        "malformed signature headers",
	WBAMissingParam:     "signature lacks created, expires or keyid",
	WBAUnsupported:      "unsupported algorithm or component",
	WBANotYetValid:      "signature created in the future",
	WBAExpired:          "signature expired",
	WBATooLong:          "signature valid for too long",
	WBAMissingComponent: "signature does not cover the authority and the Signature-Agent",
	WBAUnknownAgent:     "unknown signature agent",
	WBAUnknownKey:       "unknown key for this agent",
	WBABadSignature:     "signature does not verify",
}

func (r WBAReason) Error() string {
	if int(r) < len(wbaText) && wbaText[r] != "" {
		return "web bot auth: " + wbaText[r]
	}
	return "web bot auth: refused"
}

// Directory holds the agents' public keys: agent URL (an https origin) to
// keyid (JWK thumbprint) to key.
type Directory struct {
	keys map[string]map[string]ed25519.PublicKey
}

// NewDirectory returns an empty directory.
func NewDirectory() *Directory { return &Directory{keys: map[string]map[string]ed25519.PublicKey{}} }

// Thumbprint is the JWK SHA-256 thumbprint of an Ed25519 key (RFC 7638 over
// the required members crv, kty, x in lexical order; RFC 8037 §A.3), in
// base64url without padding: the draft's keyid.
func Thumbprint(pub ed25519.PublicKey) string {
	x := base64.RawURLEncoding.EncodeToString(pub)
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
}

// AddJWKS adds the Ed25519 keys of a JWK Set ({"keys":[...]}) for agent.
// Keys of other types are skipped; a set with no Ed25519 key, or a key whose
// kid is not its thumbprint (the draft requires kid to be the thumbprint
// when present), is an error.
func (d *Directory) AddJWKS(agent string, jwks []byte) error {
	origin, err := normalizeAgent(agent)
	if err != nil {
		return err
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return fmt.Errorf("JWKS for %s: %v", agent, err)
	}
	added := 0
	for i, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.X, "="))
		if err != nil || len(x) != ed25519.PublicKeySize {
			return fmt.Errorf("JWKS for %s: key %d: x is not a 32-byte base64url Ed25519 key", agent, i)
		}
		pub := ed25519.PublicKey(x)
		tp := Thumbprint(pub)
		if k.Kid != "" && k.Kid != tp {
			return fmt.Errorf("JWKS for %s: key %d: kid %q is not the key's thumbprint %s", agent, i, k.Kid, tp)
		}
		if d.keys[origin] == nil {
			d.keys[origin] = map[string]ed25519.PublicKey{}
		}
		d.keys[origin][tp] = pub
		added++
	}
	if added == 0 {
		return fmt.Errorf("JWKS for %s: no Ed25519 (OKP) key", agent)
	}
	return nil
}

// LoadJWKSFile adds the keys in a JWKS file for agent.
func (d *Directory) LoadJWKSFile(agent, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("JWKS for %s: %v", agent, err)
	}
	if err := d.AddJWKS(agent, b); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

// normalizeAgent reduces an agent URL to its https origin, as the draft's
// directory type requires ("the ASCII serialization of an origin"; an empty
// path "/" may be accepted).
func normalizeAgent(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("signature agent %q: not an https origin (https://host[:port])", s)
	}
	host := strings.ToLower(u.Host)
	if h, port, err := net.SplitHostPort(host); err == nil && port == "443" {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	return "https://" + host, nil
}

// WebBotAuth verifies Web Bot Auth signatures against a Directory.
type WebBotAuth struct {
	Dir *Directory
	// MaxValidity bounds expires - created; the draft recommends at most
	// 24 hours, and a longer signature is a longer replay window.
	MaxValidity time.Duration
	// Skew is how far in the future created may be (clocks differ).
	Skew time.Duration
}

// Agent is a verified signer.
type Agent struct {
	URL     string // the agent's origin, as configured
	KeyID   string
	Label   string // the signature's label in Signature-Input
	Expires time.Time
}

// Verify checks the request's web-bot-auth signatures at now and returns the
// first that verifies. The request's scheme is https when it arrived over
// TLS (set r.TLS or pass the scheme through a proxy that preserves it).
func (w *WebBotAuth) Verify(r *http.Request, now time.Time) (Agent, error) {
	inputs := r.Header.Values("Signature-Input")
	if len(inputs) == 0 {
		return Agent{}, WBANotSigned
	}
	dict, err := parseDictionary(strings.Join(inputs, ", "))
	if err != nil {
		return Agent{}, WBAMalformed
	}
	sigs, err := parseDictionary(strings.Join(r.Header.Values("Signature"), ", "))
	if err != nil {
		return Agent{}, WBAMalformed
	}
	first := error(WBANotSigned)
	for _, m := range dict {
		if !m.isList {
			continue
		}
		if tag, ok := param(m.params, "tag"); !ok || tag.kind != sfString || tag.str != "web-bot-auth" {
			continue
		}
		a, err := w.verifyOne(r, m, sigs, now)
		if err == nil {
			return a, nil
		}
		if first == WBANotSigned {
			first = err
		}
	}
	return Agent{}, first
}

func (w *WebBotAuth) verifyOne(r *http.Request, m sfMember, sigs []sfMember, now time.Time) (Agent, error) {
	created, ok1 := param(m.params, "created")
	expires, ok2 := param(m.params, "expires")
	keyid, ok3 := param(m.params, "keyid")
	if !ok1 || !ok2 || !ok3 || created.kind != sfInteger || expires.kind != sfInteger || keyid.kind != sfString {
		return Agent{}, WBAMissingParam
	}
	if alg, ok := param(m.params, "alg"); ok && (alg.kind != sfString || alg.str != "ed25519") {
		return Agent{}, WBAUnsupported
	}
	if expires.num <= created.num {
		return Agent{}, WBAMalformed
	}
	skew := w.Skew
	if skew <= 0 {
		skew = time.Minute
	}
	maxValidity := w.MaxValidity
	if maxValidity <= 0 {
		maxValidity = 24 * time.Hour
	}
	if now.Add(skew).Unix() < created.num {
		return Agent{}, WBANotYetValid
	}
	if now.Unix() > expires.num {
		return Agent{}, WBAExpired
	}
	if time.Duration(expires.num-created.num)*time.Second > maxValidity {
		return Agent{}, WBATooLong
	}

	// Which Signature-Agent value is this signature's, and is it covered?
	agentField := strings.Join(r.Header.Values("Signature-Agent"), ", ")
	var agentURL string
	var agentIdent string // the component identifier that must be covered
	if strings.HasPrefix(strings.TrimSpace(agentField), `"`) {
		// The legacy form, a bare String (the draft lets verifiers accept it).
		p := &sfParser{s: strings.TrimSpace(agentField)}
		it, err := p.item()
		if err != nil || it.kind != sfString || p.i != len(p.s) {
			return Agent{}, WBAMalformed
		}
		agentURL, agentIdent = it.str, `"signature-agent"`
	} else if agentField != "" {
		agents, err := parseDictionary(agentField)
		if err != nil {
			return Agent{}, WBAMalformed
		}
		for _, a := range agents {
			if a.key != m.key || a.isList || a.item.kind != sfString {
				continue
			}
			if t, ok := param(a.params, "type"); ok && !(t.kind == sfToken && t.str == "directory") {
				return Agent{}, WBAUnsupported // jwks_uri, cimd: keys we would have to fetch
			}
			agentURL = a.item.str
		}
		agentIdent = `"signature-agent";key=` + strconv.Quote(m.key)
	}
	if agentURL == "" {
		return Agent{}, WBAUnknownAgent
	}
	hasAuthority, hasAgent := false, false
	for _, c := range m.list {
		switch c.raw {
		case `"@authority"`, `"@target-uri"`:
			hasAuthority = true
		case agentIdent:
			hasAgent = true
		}
	}
	if !hasAuthority || !hasAgent {
		return Agent{}, WBAMissingComponent
	}

	origin, err := normalizeAgent(agentURL)
	if err != nil {
		return Agent{}, WBAUnknownAgent
	}
	keys, ok := w.Dir.keys[origin]
	if !ok {
		return Agent{}, WBAUnknownAgent
	}
	pub, ok := keys[keyid.str]
	if !ok {
		return Agent{}, WBAUnknownKey
	}
	var sig []byte
	for _, s := range sigs {
		if s.key == m.key && !s.isList && s.item.kind == sfBytes {
			sig = s.item.bytes
		}
	}
	if len(sig) != ed25519.SignatureSize {
		return Agent{}, WBAMalformed
	}
	base, err := signatureBase(r, m)
	if err != nil {
		return Agent{}, err
	}
	if !ed25519.Verify(pub, []byte(base), sig) {
		return Agent{}, WBABadSignature
	}
	return Agent{URL: origin, KeyID: keyid.str, Label: m.key, Expires: time.Unix(expires.num, 0)}, nil
}

// signatureBase builds the signature base of RFC 9421 §2.5 for the covered
// components of m.
func signatureBase(r *http.Request, m sfMember) (string, error) {
	var b strings.Builder
	seen := map[string]bool{}
	for _, c := range m.list {
		if c.kind != sfString || seen[c.raw] {
			return "", WBAMalformed
		}
		seen[c.raw] = true
		v, err := componentValue(r, c)
		if err != nil {
			return "", err
		}
		b.WriteString(c.raw)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString(`"@signature-params": `)
	b.WriteString(m.raw)
	return b.String(), nil
}

func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// authority is the Host as RFC 9421 §2.2.3 wants it: lower case, without
// the scheme's default port.
func authority(r *http.Request) string {
	host := strings.ToLower(r.Host)
	if h, port, err := net.SplitHostPort(host); err == nil {
		if (port == "443" && requestScheme(r) == "https") || (port == "80" && requestScheme(r) == "http") {
			if strings.Contains(h, ":") {
				return "[" + h + "]"
			}
			return h
		}
	}
	return host
}

func componentValue(r *http.Request, c sfItem) (string, error) {
	name := c.str
	if strings.HasPrefix(name, "@") {
		if len(c.params) > 0 {
			return "", WBAUnsupported
		}
		switch name {
		case "@method":
			return r.Method, nil
		case "@authority":
			return authority(r), nil
		case "@scheme":
			return requestScheme(r), nil
		case "@target-uri":
			return requestScheme(r) + "://" + authority(r) + r.URL.RequestURI(), nil
		case "@request-target":
			return r.URL.RequestURI(), nil
		case "@path":
			if p := r.URL.EscapedPath(); p != "" {
				return p, nil
			}
			return "/", nil
		case "@query":
			return "?" + r.URL.RawQuery, nil
		}
		return "", WBAUnsupported
	}
	if name != strings.ToLower(name) {
		return "", WBAMalformed
	}
	values := r.Header.Values(name)
	if len(values) == 0 {
		return "", WBAMissingComponent
	}
	trimmed := make([]string, len(values)) // Values is the header's own slice
	for i, v := range values {
		trimmed[i] = strings.TrimSpace(v)
	}
	field := strings.Join(trimmed, ", ")
	if len(c.params) == 0 {
		return field, nil
	}
	if len(c.params) != 1 || c.params[0].key != "key" || c.params[0].val.kind != sfString {
		return "", WBAUnsupported // sf, bs, req, tr: not needed by web-bot-auth
	}
	dict, err := parseDictionary(field)
	if err != nil {
		return "", WBAMalformed
	}
	for _, mem := range dict {
		if mem.key == c.params[0].val.str {
			return mem.raw, nil
		}
	}
	return "", WBAMissingComponent
}
