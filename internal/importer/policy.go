// Package importer translates the access-control parts of an nginx
// configuration or of Apache .htaccess files and <Directory> blocks into a
// warden policy. What it cannot translate it reports as Notes, one per
// source line, so that nothing the operator wrote is dropped silently.
//
// Both servers decide in phases and with inheritance (nginx locations,
// Apache per-directory merging); warden decides with one ordered list where
// the first rule that decides wins. The translation therefore computes, for
// each region of the URL space that one nginx location or one Apache
// directory governs, the rules that apply there, and ends each region with a
// terminal allow, so that rules written for a less specific region never
// apply to it.
package importer

import (
	"fmt"
	"slices"
	"strings"
)

// Policy is the warden config the importer writes. It mirrors the keys
// of internal/config, and is written through yaml.Node so that every rule
// carries a comment naming its source line.
type Policy struct {
	Header      []string
	Listen      string
	ServerNames []string
	Htpasswd    *HtpasswdFile
	Rules       []Rule
	Handlers    []Handler
}

type HtpasswdFile struct {
	File            string
	Realm           string
	AllowWeakHashes bool
	// Roles maps a user to roles: "user-NAME" for Require user NAME, and
	// ValidUserRole for every user the server can sign in.
	Roles map[string][]string
	// ValidUserRole, when set, is the role every sign-in rule asks for: the
	// file has users warden reads and the server does not ({PLAIN} and
	// {SSHA} under Apache), who must stay out.
	ValidUserRole string
	// readable are the users the server can sign in; nil when the file
	// could not be read.
	readable map[string]bool
}

// UserRoleName is the role that stands for one user name (Require user).
func UserRoleName(user string) string { return "user:" + user }

// UserRole gives user the role a Require user rule asks for, and returns
// it. A user the server cannot sign in (or not in the file) gets none, so
// the rule refuses everyone under that name, as the server does.
func (h *HtpasswdFile) UserRole(user string) string {
	role := UserRoleName(user)
	if !h.readable[user] {
		return role
	}
	if h.Roles == nil {
		h.Roles = map[string][]string{}
	}
	if !slices.Contains(h.Roles[user], role) {
		h.Roles[user] = append(h.Roles[user], role)
	}
	return role
}

type PathMatch struct {
	Exact, Prefix, Regex []string
	CaseSensitive        bool
}

type Rule struct {
	Name    string
	Comment string
	Path    *PathMatch
	// IP and NotIP are alternative renderings of one address condition;
	// at most one is set.
	IP, NotIP    []string
	Addrs        *IPSet // the addresses the rule matches, for pruning
	RefererNotIn []string
	RequireAuth  bool
	// Expr is a CEL condition (request headers and method) the rule also
	// needs, for nginx if blocks and Apache RewriteCond chains.
	Expr string
	// RequireRoles, with RequireAuth, asks for one of these roles (Apache's
	// Require user NAME; see HtpasswdFile.Roles).
	RequireRoles []string
	Action       string // allow, deny, conceal; "" for a require gate
	Status       int
	Reason       string
	// Synthetic marks the terminal allows the translation adds; pruning them
	// is not worth a note.
	Synthetic bool
	// Src is where the rule came from, for notes when it is pruned.
	Src Note
}

type Handler struct {
	Comment    string
	Path       string
	Root       string
	Upstream   string
	Index      []string
	Listing    bool
	ListingOn  []string
	ListingOff []string
}

// SetIP makes the rule match the addresses in s, written as ip: or not_ip:
// whichever list is shorter. It reports false when s is empty (the rule can
// never match). A full set leaves the rule without an address condition.
func (r *Rule) SetIP(s IPSet) bool {
	if s.IsEmpty() {
		return false
	}
	c := s
	r.Addrs = &c
	if s.IsAll() {
		return true
	}
	in := s.Strings()
	out := s.Complement().Strings()
	if len(out) < len(in) {
		r.NotIP = out
	} else {
		r.IP = in
	}
	return true
}

// MatchesAllAddrs is true when the rule has no address condition.
func (r *Rule) MatchesAllAddrs() bool { return r.Addrs == nil || r.Addrs.IsAll() }

// Decides is true for rules that end evaluation whenever they match.
func (r *Rule) Decides() bool { return r.Action != "" }

// UnconditionalWithin is true when the rule matches every request on its
// path, whoever asks.
func (r *Rule) UnconditionalWithin() bool {
	return r.MatchesAllAddrs() && len(r.RefererNotIn) == 0 && r.Expr == ""
}

// UniqueNames makes rule names unique by numbering repeats.
func UniqueNames(rules []Rule) {
	used := map[string]bool{}
	for i := range rules {
		used[rules[i].Name] = true
	}
	seen := map[string]bool{}
	for i := range rules {
		base := rules[i].Name
		if !seen[base] {
			seen[base] = true
			continue
		}
		for n := 2; ; n++ {
			name := fmt.Sprintf("%s-%d", base, n)
			if !used[name] {
				rules[i].Name = name
				used[name], seen[name] = true, true
				break
			}
		}
	}
}

// Slug makes a rule-name fragment from a path or pattern.
func Slug(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimSuffix(b.String(), "-")
	if len(out) > 40 {
		out = strings.TrimSuffix(out[:40], "-")
	}
	return out
}

func (h *Handler) ListingAt(p string) bool {
	best, on := -1, h.Listing
	for _, q := range h.ListingOn {
		if strings.HasPrefix(p, q) && len(q) > best {
			best, on = len(q), true
		}
	}
	for _, q := range h.ListingOff {
		if strings.HasPrefix(p, q) && len(q) > best {
			best, on = len(q), false
		}
	}
	return on
}

func OrRoot(s string) string {
	if s == "" {
		return "root"
	}
	return s
}
