package identity

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/warden-gateway/warden/internal/canonical"
)

// FuzzBasicCredentials sends arbitrary Authorization headers to the
// htpasswd authenticator. A caller is let in exactly when the header is
// "Basic base64(user:password)" for a user and password in the file; any
// other Basic header is an invalid credential (401), and a header of
// another scheme is no credential at all.
func FuzzBasicCredentials(f *testing.F) {
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("alice:secret")))
	f.Add("basic " + base64.StdEncoding.EncodeToString([]byte("bob:hunter2")))
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("alice:secret\x00")))
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("alice:secret:extra")))
	f.Add("Basic YWxpY2U=")
	f.Add("Bearer abc")
	f.Add("Basic  " + base64.StdEncoding.EncodeToString([]byte("alice:secret")) + " ")
	alice, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	sum := sha1.Sum([]byte("hunter2"))
	file := filepath.Join(f.TempDir(), "htpasswd")
	content := "alice:" + string(alice) + "\nbob:{SHA}" + base64.StdEncoding.EncodeToString(sum[:]) + "\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		f.Fatal(err)
	}
	h, err := NewHtpasswd(file, HtpasswdOptions{AllowWeakHashes: true, Roles: map[string][]string{"alice": {"admin"}}})
	if err != nil {
		f.Fatal(err)
	}
	valid := map[string]bool{"alice:secret": true, "bob:hunter2": true}
	f.Fuzz(func(t *testing.T, header string) {
		req := &canonical.Request{Header: http.Header{"Authorization": {header}}}
		p, err := h.Authenticate(req, time.Unix(0, 0))
		isBasic := len(header) >= 6 && strings.EqualFold(header[:6], "basic ")
		if !isBasic {
			if p != nil || err != nil {
				t.Fatalf("%q is not Basic, yet: %v %v", header, p, err)
			}
			return
		}
		dec, decErr := base64.StdEncoding.DecodeString(strings.TrimSpace(header[6:]))
		want := decErr == nil && len(header) <= maxBasicHeader && valid[string(dec)]
		if want != (p != nil) {
			t.Fatalf("%q (decodes to %q): principal %v, err %v", header, dec, p, err)
		}
		if p == nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("%q: refused without ErrInvalid: %v", header, err)
		}
		if p != nil && (p.Method != "basic" || p.ID != strings.SplitN(string(dec), ":", 2)[0]) {
			t.Fatalf("%q: principal %+v", header, p)
		}
	})
}

// FuzzAPIKeyAndBearer checks key extraction: the key header and "Bearer"
// let a caller in exactly when they carry the key itself; a JWT-shaped
// bearer is left to the JWT authenticator.
func FuzzAPIKeyAndBearer(f *testing.F) {
	const key = "k3y-0123456789"
	f.Add(key, "")
	f.Add("", "Bearer "+key)
	f.Add("", "bearer  "+key+"\t")
	f.Add(" "+key, "")
	f.Add("", "Bearer eyJa.b.c")
	f.Add("", "Bearer")
	a := &APIKeys{Header: "X-API-Key", Bearer: true, Keys: []APIKey{{ID: "svc", SHA256: mustHash(f, HashKey(key)), Roles: []string{"admin"}}}}
	f.Fuzz(func(t *testing.T, keyHeader, authz string) {
		h := http.Header{}
		if keyHeader != "" {
			h["X-Api-Key"] = []string{keyHeader}
		}
		if authz != "" {
			h["Authorization"] = []string{authz}
		}
		tok, isBearer := bearer(h)
		if isBearer != (len(authz) > 7 && strings.EqualFold(authz[:7], "bearer ")) {
			t.Fatalf("bearer(%q) = %v", authz, isBearer)
		}
		if isBearer && tok != strings.TrimSpace(authz[7:]) {
			t.Fatalf("bearer(%q) = %q", authz, tok)
		}
		p, err := a.Authenticate(&canonical.Request{Header: h}, time.Unix(0, 0))
		given := keyHeader
		if given == "" && isBearer && !looksLikeJWT(tok) {
			given = tok
		}
		switch {
		case given == "":
			if p != nil || err != nil {
				t.Fatalf("no key given, yet %v %v", p, err)
			}
		case given == key:
			if p == nil || p.ID != "svc" {
				t.Fatalf("the key was refused: %v", err)
			}
		default:
			if p != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("key %q: %v %v", given, p, err)
			}
		}
	})
}

func mustHash(f *testing.F, s string) [32]byte {
	h, err := ParseKeyHash(s)
	if err != nil {
		f.Fatal(err)
	}
	return h
}

var htpasswdErr = regexp.MustCompile(`^fuzz:([1-9][0-9]*:)? \S`)

// FuzzParseHtpasswd: any file content is either loaded or refused with
// "file:line: message"; every loaded user has a line of its own.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add([]byte("alice:$2y$05$" + strings.Repeat("a", 53) + "\n"))
	f.Add([]byte("# comment\n\nbob:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\r\n"))
	f.Add([]byte("carol:$apr1$salt$abcdefghijklmnopqrstuv\n"))
	f.Add([]byte("dave:plain\n"))
	f.Add([]byte(":nouser\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := ParseHtpasswd("fuzz", data, true)
		if err != nil {
			if !htpasswdErr.MatchString(err.Error()) {
				t.Fatalf("error without file:line: %q", err)
			}
			return
		}
		for u, hash := range users {
			if u == "" || hash == "" || !strings.Contains(string(data), u+":"+hash) {
				t.Fatalf("user %q hash %q not a line of %q", u, hash, data)
			}
		}
	})
}
