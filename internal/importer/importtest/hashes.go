package importtest

import (
	"crypto/sha1"
	"encoding/base64"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/proctest"
)

// HashUser is one user of the user file, with the password that signs in.
type HashUser struct {
	Kind, User, Password string
}

// HashUsers appends a user per hash kind that nginx's or Apache's password
// check reads to the htpasswd file at path, each hash made by the real tool
// (htpasswd, openssl passwd); {PLAIN} and {SSHA} (nginx only; no Debian tool
// writes them) are written by hand as nginx documents them. It returns the
// users.
func HashUsers(t *testing.T, path string) []HashUser {
	t.Helper()
	htpasswd := proctest.Program(t, "htpasswd")
	openssl := proctest.Program(t, "openssl")
	var users []HashUser
	var lines []string
	run := func(kind, user, pw string, name string, args ...string) {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		hash := strings.TrimSpace(string(out))
		if i := strings.IndexByte(hash, ':'); i >= 0 && strings.HasPrefix(name, htpasswd) {
			hash = hash[i+1:]
		}
		lines = append(lines, user+":"+hash)
		users = append(users, HashUser{Kind: kind, User: user, Password: pw})
	}
	run("bcrypt $2y$", "bcrypt", "pw-bcrypt", htpasswd, "-nbB", "bcrypt", "pw-bcrypt")
	run("apr1", "apr1", "pw-apr1", htpasswd, "-nbm", "apr1", "pw-apr1")
	run("{SHA}", "sha", "pw-sha", htpasswd, "-nbs", "sha", "pw-sha")
	run("DES crypt", "des", "pwdes", htpasswd, "-nbd", "des", "pwdes")
	run("SHA-256-crypt $5$", "sha256crypt", "pw-sha256", openssl, "passwd", "-5", "pw-sha256")
	run("SHA-512-crypt $6$", "sha512crypt", "pw-sha512", openssl, "passwd", "-6", "pw-sha512")
	run("SHA-512-crypt rounds=", "rounds", "pw-rounds", openssl, "passwd", "-6", "-salt", "rounds=10000$saltsalt", "pw-rounds")
	run("MD5-crypt $1$", "md5crypt", "pw-md5", openssl, "passwd", "-1", "pw-md5")
	lines = append(lines, "plain:{PLAIN}pw-plain")
	users = append(users, HashUser{Kind: "{PLAIN}", User: "plain", Password: "pw-plain"})
	salt := []byte("salt1234")
	sum := sha1.Sum(append([]byte("pw-ssha"), salt...))
	lines = append(lines, "ssha:{SSHA}"+base64.StdEncoding.EncodeToString(append(sum[:], salt...)))
	users = append(users, HashUser{Kind: "{SSHA}", User: "ssha", Password: "pw-ssha"})
	// An entry no server reads: nobody signs in as it.
	lines = append(lines, "garbage:$9$nonsense")
	users = append(users, HashUser{Kind: "unreadable", User: "garbage", Password: "$9$nonsense"})
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
	return users
}
