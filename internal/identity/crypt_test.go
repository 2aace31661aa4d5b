package identity

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/proctest"
)

// Test vectors of Ulrich Drepper's SHA-crypt specification
// (https://www.akkadia.org/drepper/SHA-crypt.txt), including rounds= below
// the minimum and a salt longer than 16 characters.
func TestSHACryptSpecVectors(t *testing.T) {
	for _, tc := range []struct{ salt, pw, want string }{
		{"$5$rounds=10000$saltstringsaltstring", "Hello world!", "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"},
		{"$5$rounds=10$roundstoolow", "the minimum number is still observed", "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC"},
		{"$6$saltstring", "Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"$6$rounds=10000$saltstringsaltstring", "Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
	} {
		// The spec's salts may be longer than 16 characters; crypt cuts
		// them, which the expected hashes show.
		_, _, _, salt, err := splitSHACrypt(tc.want)
		if err != nil {
			t.Fatalf("%s: %v", tc.want, err)
		}
		if !strings.Contains(tc.salt, salt) {
			t.Fatalf("salt %q not in %q", salt, tc.salt)
		}
		got, err := shaCrypt(tc.pw, tc.want)
		if err != nil || got != tc.want {
			t.Errorf("shaCrypt(%q, %s) = %q, %v; want %q", tc.pw, tc.salt, got, err, tc.want)
		}
	}
}

// toolHash runs a hash-making tool and returns the hash it prints.
func toolHash(t *testing.T, name string, args ...string) string {
	t.Helper()
	path := proctest.Program(t, name)
	out, err := exec.Command(path, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	h := strings.TrimSpace(string(out))
	if name == "htpasswd" {
		_, h, _ = strings.Cut(h, ":")
	}
	return h
}

// Every kind nginx and Apache read, made by the tools people make them
// with (openssl passwd, htpasswd), checked on passwords of the length
// classes the algorithms treat differently.
func TestCryptMatchesTools(t *testing.T) {
	pws := []string{"a", "password", "0123456789abcdef", "a much longer password than sixteen or thirty-two bytes, really", "pässwörd"}
	type maker struct {
		kind string
		make func(pw string) string
	}
	makers := []maker{
		{"openssl -5", func(pw string) string { return toolHash(t, "openssl", "passwd", "-5", pw) }},
		{"openssl -6", func(pw string) string { return toolHash(t, "openssl", "passwd", "-6", pw) }},
		{"openssl -6 rounds", func(pw string) string {
			return toolHash(t, "openssl", "passwd", "-6", "-salt", "rounds=1234$abcdefghijklmnop", pw)
		}},
		{"openssl -5 rounds", func(pw string) string { return toolHash(t, "openssl", "passwd", "-5", "-salt", "rounds=7777$xy", pw) }},
		{"openssl -1", func(pw string) string { return toolHash(t, "openssl", "passwd", "-1", pw) }},
		{"openssl -apr1", func(pw string) string { return toolHash(t, "openssl", "passwd", "-apr1", pw) }},
		{"htpasswd -2", func(pw string) string { return toolHash(t, "htpasswd", "-nb2", "u", pw) }},
		{"htpasswd -5", func(pw string) string { return toolHash(t, "htpasswd", "-nb5", "u", pw) }},
		{"htpasswd -m", func(pw string) string { return toolHash(t, "htpasswd", "-nbm", "u", pw) }},
		{"htpasswd -s", func(pw string) string { return toolHash(t, "htpasswd", "-nbs", "u", pw) }},
		{"htpasswd -d", func(pw string) string { return toolHash(t, "htpasswd", "-nbd", "u", pw) }},
		{"htpasswd -B", func(pw string) string { return toolHash(t, "htpasswd", "-nbB", "-C", "4", "u", pw) }},
	}
	if _, err := exec.LookPath("mkpasswd"); err == nil {
		makers = append(makers,
			maker{"mkpasswd sha-512", func(pw string) string { return toolHash(t, "mkpasswd", "-m", "sha-512", pw) }},
			maker{"mkpasswd des", func(pw string) string { return toolHash(t, "mkpasswd", "-m", "descrypt", pw) }})
	}
	h := &Htpasswd{}
	for _, m := range makers {
		t.Run(m.kind, func(t *testing.T) {
			for _, pw := range pws {
				if strings.HasPrefix(m.kind, "htpasswd -d") && !isASCII(pw) {
					continue // DES crypt keeps 7 bits a character
				}
				hash := m.make(pw)
				scheme := hashScheme(hash)
				if scheme == schemeUnknown {
					t.Fatalf("%s made %q, of no known scheme", m.kind, hash)
				}
				if err := checkHashSyntax(scheme, hash); err != nil {
					t.Fatalf("%s: %q: %v", m.kind, hash, err)
				}
				if !h.checkPassword("u", hash, pw) {
					t.Errorf("%s: %q does not verify %q", m.kind, hash, pw)
				}
				wrong := pw + "x"
				if strings.HasPrefix(m.kind, "htpasswd -d") && len(pw) >= 8 {
					wrong = "X" + pw[1:] // DES reads only 8 characters
				}
				if h.checkPassword("u", hash, wrong) {
					t.Errorf("%s: %q verifies the wrong password %q", m.kind, hash, wrong)
				}
			}
		})
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func TestPlainAndSSHA(t *testing.T) {
	salt := []byte("NaCl1234")
	sum := sha1.Sum(append([]byte("s3cret"), salt...))
	ssha := "{SSHA}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...))
	h := &Htpasswd{}
	for _, tc := range []struct {
		hash, pw string
		ok       bool
	}{
		{ssha, "s3cret", true},
		{ssha, "s3creT", false},
		{"{PLAIN}open sesame", "open sesame", true},
		{"{PLAIN}open sesame", "open sesame ", false},
	} {
		if got := h.checkPassword("u", tc.hash, tc.pw); got != tc.ok {
			t.Errorf("%q with %q: %v, want %v", tc.hash, tc.pw, got, tc.ok)
		}
	}
}

// SHA-crypt loads without allow_weak_hashes; the weak kinds need it; an
// entry no server can read is refused, or skipped with allow_weak_hashes.
func TestHtpasswdSchemesPolicy(t *testing.T) {
	sha512 := "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
	sha256 := "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC"
	m, err := ParseHtpasswd("f", []byte("a:"+sha512+"\nb:"+sha256+"\n"), false)
	if err != nil || len(m) != 2 {
		t.Fatalf("SHA-crypt without allow_weak_hashes: %v %v", m, err)
	}
	for _, weak := range []string{"{PLAIN}x", "$1$saltsalt$c3S8o2y0Ob9Ud0VvMmm0U0", "abJnggxhB/yWI", "{SSHA}" + base64.StdEncoding.EncodeToString(make([]byte, 24))} {
		_, err := ParseHtpasswd("f", []byte("c:"+weak+"\n"), false)
		if err == nil || !strings.Contains(err.Error(), "weak hash") {
			t.Errorf("%q without allow_weak_hashes: err = %v", weak, err)
		}
		if m, err := ParseHtpasswd("f", []byte("c:"+weak+"\n"), true); err != nil || m["c"] != weak {
			t.Errorf("%q with allow_weak_hashes: %v %v", weak, m, err)
		}
	}
	for _, bad := range []string{"$9$nonsense", "$6$salt$short", "$5$rounds=x$salt$" + strings.Repeat("a", 43), "not a hash at all"} {
		if _, err := ParseHtpasswd("f", []byte("d:"+bad+"\n"), false); err == nil || !strings.HasPrefix(err.Error(), "f:1: user \"d\"") {
			t.Errorf("%q: err = %v", bad, err)
		}
		m, err := ParseHtpasswd("f", []byte("d:"+bad+"\ne:"+sha256+"\n"), true)
		if err != nil || len(m) != 1 || m["e"] == "" {
			t.Errorf("%q with allow_weak_hashes: the user is not skipped: %v %v", bad, m, err)
		}
	}
}

// A user file with every kind authenticates each user, through the whole
// authenticator.
func TestHtpasswdEveryKind(t *testing.T) {
	salt := []byte("salt")
	sum := sha1.Sum(append([]byte("pw-ssha"), salt...))
	data := strings.Join([]string{
		"sha512:$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
		"md5:" + md5Crypt("pw-md5", "$1$", "abcdefgh"),
		"des:" + desCrypt("pw-des", "ab"),
		"plain:{PLAIN}pw-plain",
		"ssha:{SSHA}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...)),
	}, "\n") + "\n"
	file := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHtpasswd(file, HtpasswdOptions{AllowWeakHashes: true})
	if err != nil {
		t.Fatal(err)
	}
	for user, pw := range map[string]string{"sha512": "Hello world!", "md5": "pw-md5", "des": "pw-des", "plain": "pw-plain", "ssha": "pw-ssha"} {
		if p, err := h.Authenticate(basicRequest(user, pw), t0); err != nil || p.ID != user {
			t.Errorf("%s: p=%+v err=%v", user, p, err)
		}
		if _, err := h.Authenticate(basicRequest(user, pw+"!"), t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s with a wrong password: err=%v", user, err)
		}
	}
}
