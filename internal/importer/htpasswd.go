package importer

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/warden-gateway/warden/internal/identity"
)

// HtpasswdFor makes the htpasswd identity for a user file named in the
// source (relative names resolved against base). It reads the file, when it
// can, to see which hash schemes it holds: warden accepts bcrypt and
// SHA-crypt, and the weak kinds nginx and Apache read ($apr1$, MD5-crypt,
// {SHA}, {SSHA}, {PLAIN}, DES) only with allow_weak_hashes, which the
// translation then sets so that the same users can sign in as before.
func HtpasswdFor(file, base, realm string, src Note, server Server) (*HtpasswdFile, []Note) {
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
		n.Why = fmt.Sprintf("cannot read the user file to check its hash schemes (%v); warden accepts bcrypt and SHA-crypt entries only unless allow_weak_hashes is set", err)
		return h, append(notes, n)
	}
	defer f.Close()
	var weak, unreadable, serverSkips []string
	h.readable = map[string]bool{}
	weakKinds := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok {
			unreadable = append(unreadable, strconv.Quote(line))
			continue
		}
		scheme, strong, err := identity.ClassifyHash(hash)
		switch {
		case err == nil && server == Apache && (strings.HasPrefix(hash, "{PLAIN}") || strings.HasPrefix(hash, "{SSHA}")):
			// apr_password_validate hands these to crypt(3), which fails.
			serverSkips = append(serverSkips, user)
			weak = append(weak, user)
			weakKinds[scheme] = true
		case err != nil:
			unreadable = append(unreadable, user+" ("+err.Error()+")")
		case !strong:
			weak = append(weak, user)
			weakKinds[scheme] = true
			h.readable[user] = true
		default:
			h.readable[user] = true
		}
	}
	if len(serverSkips) > 0 {
		h.ValidUserRole = "valid-user"
		h.Roles = map[string][]string{}
		for u := range h.readable {
			h.Roles[u] = []string{h.ValidUserRole}
		}
		n := src
		n.Kind = Approximate
		n.Why = "Apache cannot sign in users with {PLAIN} or {SSHA} hashes, warden can: every other user gets the role valid-user and sign-in rules ask for it, so these users are refused with 403 (Apache: 401): " + strings.Join(serverSkips, ", ")
		notes = append(notes, n)
	}
	if len(weak) > 0 || len(unreadable) > 0 {
		// allow_weak_hashes also makes warden skip the unreadable entries
		// (which no server can sign in either) instead of refusing the file.
		h.AllowWeakHashes = true
	}
	if len(weak) > 0 {
		kinds := make([]string, 0, len(weakKinds))
		for k := range weakKinds {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		n := src
		n.Kind = Approximate
		n.Why = "the user file has weak hashes (" + strings.Join(kinds, ", ") + ") for " + strings.Join(weak, ", ") + ": allow_weak_hashes is set so they keep working; rehash them with htpasswd -B"
		notes = append(notes, n)
	}
	if len(unreadable) > 0 {
		n := src
		n.Kind = Approximate
		n.Why = "entries no server can read are skipped (allow_weak_hashes); these users cannot sign in, as with the server: " + strings.Join(unreadable, ", ")
		notes = append(notes, n)
	}
	return h, notes
}

// Server is the server whose configuration is imported; the user-file
// formats they read differ.
type Server int

// The servers.
const (
	Nginx Server = iota
	Apache
)
