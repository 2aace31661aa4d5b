package importer

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// HtpasswdFor makes the htpasswd identity for a user file named in the
// source (relative names resolved against base). It reads the file, when it
// can, to see which hash schemes it holds: warden accepts bcrypt, and
// $apr1$ (MD5) and {SHA} only with allow_weak_hashes, which the translation
// then sets so that the same users can sign in as before.
func HtpasswdFor(file, base, realm string, src Note) (*HtpasswdFile, []Note) {
	var notes []Note
	if !filepath.IsAbs(file) {
		file = filepath.Join(base, file)
	}
	// Absolute, because warden reads relative names relative to its own
	// config file, wherever the output is saved.
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	h := &HtpasswdFile{File: file, Realm: realm}
	f, err := os.Open(file)
	if err != nil {
		n := src
		n.Kind = Approximate
		n.Why = fmt.Sprintf("cannot read the user file to check its hash schemes (%v); warden accepts bcrypt entries only unless allow_weak_hashes is set", err)
		return h, append(notes, n)
	}
	defer f.Close()
	var unsupported []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(hash, "$2y$"), strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"):
		case strings.HasPrefix(hash, "$apr1$"), strings.HasPrefix(hash, "{SHA}"):
			h.AllowWeakHashes = true
		default:
			unsupported = append(unsupported, user)
		}
	}
	if h.AllowWeakHashes {
		n := src
		n.Kind = Approximate
		n.Why = "the user file has MD5 ($apr1$) or SHA-1 ({SHA}) entries: allow_weak_hashes is set so they keep working; rehash them with htpasswd -B"
		notes = append(notes, n)
	}
	if len(unsupported) > 0 {
		n := src
		n.Kind = Approximate
		n.Why = "warden accepts bcrypt, $apr1$ and {SHA} hashes; these users cannot sign in until rehashed with htpasswd -B: " + strings.Join(unsupported, ", ")
		notes = append(notes, n)
	}
	return h, notes
}
