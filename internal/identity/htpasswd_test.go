package identity

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/warden-gateway/warden/internal/canonical"
)

// htpasswdTool returns the path of Apache's htpasswd. CI must have it
// (apache2-utils); elsewhere the tests that need it are skipped.
func htpasswdTool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("htpasswd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("htpasswd not installed (apt-get install -y apache2-utils)")
		}
		t.Skip("htpasswd not installed (apt-get install -y apache2-utils)")
	}
	return path
}

// htpasswdAdd runs the real tool: htpasswd -b [-c] <flag> file user password.
func htpasswdAdd(t *testing.T, file, flag, user, password string) {
	t.Helper()
	args := []string{"-b"}
	if _, err := os.Stat(file); os.IsNotExist(err) {
		args = append(args, "-c")
	}
	args = append(args, flag, file, user, password)
	out, err := exec.Command(htpasswdTool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("htpasswd %v: %v\n%s", args, err, out)
	}
}

func basicRequest(user, password string) *canonical.Request {
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	return &canonical.Request{Method: "GET", Path: "/", Header: h}
}

func TestHtpasswdBcrypt(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users")
	htpasswdAdd(t, file, "-B", "alice", "correct horse")
	htpasswdAdd(t, file, "-B", "bob", "battery:staple") // a colon in the password
	h, err := NewHtpasswd(file, HtpasswdOptions{Roles: map[string][]string{"alice": {"admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.Authenticate(basicRequest("alice", "correct horse"), t0)
	if err != nil || p == nil || p.ID != "alice" || p.Method != "basic" || !slices.Equal(p.Roles, []string{"admin"}) {
		t.Fatalf("alice: p=%+v err=%v", p, err)
	}
	// Served from the verified-cache the second time, same answer.
	if p, err := h.Authenticate(basicRequest("alice", "correct horse"), t0); err != nil || p.ID != "alice" {
		t.Fatalf("alice again: p=%+v err=%v", p, err)
	}
	if p, err := h.Authenticate(basicRequest("bob", "battery:staple"), t0); err != nil || p.ID != "bob" || p.Roles != nil {
		t.Fatalf("bob: p=%+v err=%v", p, err)
	}
	for name, r := range map[string]*canonical.Request{
		"wrong password":   basicRequest("alice", "Correct horse"),
		"unknown user":     basicRequest("mallory", "correct horse"),
		"empty user":       basicRequest("", "x"),
		"no colon":         {Header: http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))}}},
		"not base64":       {Header: http.Header{"Authorization": {"Basic %%%"}}},
		"password is hash": basicRequest("alice", mustRead(t, file)["alice"]),
	} {
		if p, err := h.Authenticate(r, t0); p != nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: p=%+v err=%v, want ErrInvalid", name, p, err)
		}
	}
	for _, v := range []string{"", "Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig", "Digest username=alice"} {
		r := &canonical.Request{Header: http.Header{}}
		if v != "" {
			r.Header.Set("Authorization", v)
		}
		if p, err := h.Authenticate(r, t0); p != nil || err != nil {
			t.Errorf("Authorization %q: p=%v err=%v, want nil, nil", v, p, err)
		}
	}
	if got := h.Challenge(true); got != `Basic realm="warden", charset="UTF-8"` {
		t.Errorf("challenge = %s", got)
	}
}

func mustRead(t *testing.T, file string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseHtpasswd(file, data, true)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHtpasswdWeakHashes(t *testing.T) {
	for _, tc := range []struct {
		flag, scheme string
	}{
		{"-m", "$apr1$"},
		{"-s", "{SHA}"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "users")
			htpasswdAdd(t, file, "-B", "alice", "a-secret")
			htpasswdAdd(t, file, tc.flag, "bob", "b-secret")
			_, err := NewHtpasswd(file, HtpasswdOptions{})
			want := fmt.Sprintf(`%s:2: user "bob" uses a weak hash (%s); re-create it with htpasswd -B or set allow_weak_hashes`, file, tc.scheme)
			if err == nil || err.Error() != want {
				t.Fatalf("err = %v\nwant  %s", err, want)
			}
			h, err := NewHtpasswd(file, HtpasswdOptions{AllowWeakHashes: true})
			if err != nil {
				t.Fatal(err)
			}
			if p, err := h.Authenticate(basicRequest("bob", "b-secret"), t0); err != nil || p.ID != "bob" {
				t.Fatalf("bob with allow_weak_hashes: p=%+v err=%v", p, err)
			}
			if _, err := h.Authenticate(basicRequest("bob", "b-secreT"), t0); !errors.Is(err, ErrInvalid) {
				t.Fatalf("bob with a wrong password: err=%v", err)
			}
		})
	}
}

// apr1Crypt must agree with Apache on passwords of every length class the
// algorithm treats differently (empty, short, 16 bytes, long, non-ASCII).
func TestAPR1MatchesApache(t *testing.T) {
	tool := htpasswdTool(t)
	for _, pw := range []string{"", "a", "password", "0123456789abcdef", "a much longer password than sixteen bytes", "pässwörd"} {
		out, err := exec.Command(tool, "-nbm", "u", pw).Output()
		if err != nil {
			t.Fatal(err)
		}
		hash := strings.TrimSpace(strings.TrimPrefix(string(out), "u:"))
		got, err := apr1Crypt(pw, hash)
		if err != nil || got != hash {
			t.Errorf("apr1(%q) = %q, %v; htpasswd says %q", pw, got, err, hash)
		}
	}
}

func TestParseHtpasswdErrors(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("x"), 4)
	if err != nil {
		t.Fatal(err)
	}
	bc := "$2y$" + string(hash[4:])
	for name, tc := range map[string]struct{ data, want string }{
		"no colon":   {"# users\nalice\n", "f:2: want \"user:hash\""},
		"duplicate":  {"alice:" + bc + "\n\nalice:" + bc + "\n", `f:3: user "alice" already defined on line 1`},
		"bad bcrypt": {"alice:$2y$05$short\n", `f:1: user "alice": malformed bcrypt hash`},
		"bad apr1":   {"alice:$apr1$salt$tooshort\n", `f:1: user "alice": malformed $apr1$ hash`},
		"bad sha":    {"alice:{SHA}!!!\n", `f:1: user "alice": malformed {SHA} hash`},
		"empty hash": {"alice:\n", "f:1: want"},
	} {
		_, err = ParseHtpasswd("f", []byte(tc.data), false)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want prefix %q", name, err, tc.want)
		}
	}
	m, err := ParseHtpasswd("f", []byte("# comment\r\n\r\nalice:"+bc+"\r\n"), false)
	if err != nil || m["alice"] != bc {
		t.Fatalf("CRLF file: m=%v err=%v", m, err)
	}
}

func TestHtpasswdReloadsOnChange(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users")
	htpasswdAdd(t, file, "-B", "alice", "one")
	h, err := NewHtpasswd(file, HtpasswdOptions{CheckInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.Start(ctx)
	if _, err := h.Authenticate(basicRequest("alice", "one"), t0); err != nil {
		t.Fatal(err)
	}

	// A changed password: the old one, though cached as verified, stops
	// working once the file is reloaded.
	htpasswdAdd(t, file, "-B", "alice", "two")
	htpasswdAdd(t, file, "-B", "dave", "three")
	waitFor(t, "reload with dave", func() bool {
		_, err := h.Authenticate(basicRequest("dave", "three"), t0)
		return err == nil
	})
	if _, err := h.Authenticate(basicRequest("alice", "one"), t0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("old password after change: err = %v", err)
	}
	if _, err := h.Authenticate(basicRequest("alice", "two"), t0); err != nil {
		t.Fatalf("new password: %v", err)
	}

	// A broken version of the file is not loaded; the users before stay.
	htpasswdAdd(t, file, "-s", "eve", "four")
	waitFor(t, "failed reload", func() bool { return h.LastError() != nil })
	if !strings.Contains(h.LastError().Error(), `user "eve" uses a weak hash`) {
		t.Errorf("last error = %v", h.LastError())
	}
	if _, err := h.Authenticate(basicRequest("dave", "three"), t0); err != nil {
		t.Fatalf("users lost after a failed reload: %v", err)
	}
	if h.Users() != 2 {
		t.Errorf("users = %d, want 2", h.Users())
	}
}

// BenchmarkHtpasswdCached measures a repeated Basic login: after the first
// bcrypt check, an HMAC and a map lookup.
func BenchmarkHtpasswdCached(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), 5)
	if err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(b.TempDir(), "users")
	if err := os.WriteFile(file, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	h, err := NewHtpasswd(file, HtpasswdOptions{})
	if err != nil {
		b.Fatal(err)
	}
	r := basicRequest("alice", "secret")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Authenticate(r, t0); err != nil {
			b.Fatal(err)
		}
	}
}
