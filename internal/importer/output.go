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
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/warden-gateway/warden/internal/match/pathmatch"
)

// Note is one thing the importer did not translate exactly.
type Note struct {
	File string
	Line int
	// Kind is "not translated" (the directive has no effect in the output)
	// or "approximate" (it has, but not with exactly the server's meaning).
	Kind      string
	Directive string
	Why       string
}

// Note kinds.
const (
	NotTranslated = "not translated"
	Approximate   = "approximate"
)

// String is the stderr form: FILE:LINE: not translated: <directive> (<why>).
func (n Note) String() string {
	loc := n.File
	if n.Line > 0 {
		loc += ":" + strconv.Itoa(n.Line)
	}
	return fmt.Sprintf("%s: %s: %s (%s)", loc, n.Kind, n.Directive, n.Why)
}

// Result is a translated policy and what could not be translated.
type Result struct {
	// YAML is a warden config.
	YAML  []byte
	Notes []Note
}

// policyOut is the warden config the importer writes. It mirrors the keys
// of internal/config, and is written through yaml.Node so that every rule
// carries a comment naming its source line.
type policyOut struct {
	header      []string
	listen      string
	serverNames []string
	htpasswd    *htpasswdOut
	rules       []ruleOut
	handlers    []handlerOut
}

type htpasswdOut struct {
	file            string
	realm           string
	allowWeakHashes bool
}

type pathOut struct {
	exact, prefix, regex []string
	caseSensitive        bool
}

type ruleOut struct {
	name    string
	comment string
	path    *pathOut
	// ip and notIP are alternative renderings of one address condition;
	// at most one is set.
	ip, notIP    []string
	ipSet        *ipSet // the addresses the rule matches, for pruning
	refererNotIn []string
	requireAuth  bool
	action       string // allow, deny, conceal; "" for a require gate
	status       int
	reason       string
	// synthetic marks the terminal allows the translation adds; pruning them
	// is not worth a note.
	synthetic bool
	// src is where the rule came from, for notes when it is pruned.
	src Note
}

type handlerOut struct {
	comment    string
	path       string
	root       string
	upstream   string
	index      []string
	listing    bool
	listingOn  []string
	listingOff []string
}

// setIP makes the rule match the addresses in s, written as ip: or not_ip:
// whichever list is shorter. It reports false when s is empty (the rule can
// never match). A full set leaves the rule without an address condition.
func (r *ruleOut) setIP(s ipSet) bool {
	if s.isEmpty() {
		return false
	}
	c := s
	r.ipSet = &c
	if s.isAll() {
		return true
	}
	in := s.strings()
	out := s.complement().strings()
	if len(out) < len(in) {
		r.notIP = out
	} else {
		r.ip = in
	}
	return true
}

// matchesAllAddrs is true when the rule has no address condition.
func (r *ruleOut) matchesAllAddrs() bool { return r.ipSet == nil || r.ipSet.isAll() }

// decides is true for rules that end evaluation whenever they match.
func (r *ruleOut) decides() bool { return r.action != "" }

// unconditionalWithin is true when the rule matches every request on its
// path, whoever asks.
func (r *ruleOut) unconditionalWithin() bool {
	return r.matchesAllAddrs() && len(r.refererNotIn) == 0
}

// compilePaths turns a path matcher into pathmatch patterns, for coverage
// checks. A pattern that does not compile yields nothing.
func (p *pathOut) compile() []pathmatch.Pattern {
	if p == nil {
		return nil
	}
	var out []pathmatch.Pattern
	add := func(k pathmatch.Kind, list []string) {
		for _, v := range list {
			if pat, err := pathmatch.New(k, v, !p.caseSensitive); err == nil {
				out = append(out, pat)
			}
		}
	}
	add(pathmatch.Exact, p.exact)
	add(pathmatch.Prefix, p.prefix)
	add(pathmatch.Regex, p.regex)
	return out
}

// pathCovers reports whether every path b matches is matched by a.
func pathCovers(a, b *pathOut) bool {
	if a == nil {
		return true
	}
	if b == nil {
		return false
	}
	ap, bp := a.compile(), b.compile()
	if len(bp) == 0 {
		return false
	}
	for i := range bp {
		ok := false
		for j := range ap {
			if ap[j].Covers(&bp[i]) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// covers reports whether rule a, placed earlier, decides every request rule
// b could match, so that b never applies. It is at least as strong as the
// shadowing check of policy.Compile, which refuses such a policy.
func covers(a, b *ruleOut) bool {
	if !a.decides() || len(a.refererNotIn) > 0 {
		return false
	}
	if !a.matchesAllAddrs() {
		if b.ipSet == nil || !b.ipSet.subsetOf(*a.ipSet) {
			return false
		}
	}
	return pathCovers(a.path, b.path)
}

// mayOverlap reports whether some path could match both matchers; it errs
// on yes.
func mayOverlap(a, b *pathOut) bool {
	if a == nil || b == nil || len(a.regex) > 0 || len(b.regex) > 0 {
		return true
	}
	lits := func(p *pathOut) (out []struct {
		v     string
		exact bool
	}) {
		for _, v := range p.exact {
			out = append(out, struct {
				v     string
				exact bool
			}{strings.ToLower(v), true})
		}
		for _, v := range p.prefix {
			out = append(out, struct {
				v     string
				exact bool
			}{strings.ToLower(strings.TrimSuffix(v, "/")), false})
		}
		return out
	}
	for _, x := range lits(a) {
		for _, y := range lits(b) {
			switch {
			case x.exact && y.exact:
				if x.v == y.v {
					return true
				}
			case x.exact:
				if strings.HasPrefix(x.v, y.v) {
					return true
				}
			case y.exact:
				if strings.HasPrefix(y.v, x.v) {
					return true
				}
			default:
				if strings.HasPrefix(x.v, y.v) || strings.HasPrefix(y.v, x.v) {
					return true
				}
			}
		}
	}
	return false
}

// prune removes rules that can never apply (an earlier rule decides first
// for every request they match) and allows that change nothing (no later
// refusing rule could match their requests, and the default is allow).
// Pruned rules that came from a directive are reported.
func prune(rules []ruleOut, notes *[]Note) []ruleOut {
	var kept []ruleOut
	var pruned []Note
	for i := range rules {
		b := &rules[i]
		shadowed := false
		for j := range kept {
			if covers(&kept[j], b) {
				shadowed = true
				if !b.synthetic && b.src.Directive != "" {
					n := b.src
					n.Kind = NotTranslated
					n.Why = "never applies: " + kept[j].describe() + " decides first for every request it would match"
					pruned = append(pruned, n)
				}
				break
			}
		}
		if !shadowed {
			kept = append(kept, *b)
		}
	}
	// A directive inherited by several regions may be shadowed in some and
	// in effect in others; only one that is in effect nowhere is reported.
	inEffect := map[string]bool{}
	for i := range kept {
		inEffect[kept[i].src.File+":"+strconv.Itoa(kept[i].src.Line)] = true
	}
	for _, n := range pruned {
		if !inEffect[n.File+":"+strconv.Itoa(n.Line)] {
			*notes = append(*notes, n)
			inEffect[n.File+":"+strconv.Itoa(n.Line)] = true
		}
	}
	// Drop allows that no later refusing rule could override.
	var out []ruleOut
	for i := len(kept) - 1; i >= 0; i-- {
		r := &kept[i]
		if r.action == "allow" && !r.requireAuth {
			needed := false
			for k := range out {
				later := &out[k]
				if (later.action != "allow" || later.requireAuth) && mayOverlap(r.path, later.path) {
					needed = true
					break
				}
			}
			if !needed {
				continue
			}
		}
		out = append(out, *r)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func (r *ruleOut) describe() string {
	if r.src.Directive != "" && r.src.Line > 0 {
		return fmt.Sprintf("%q (line %d)", r.src.Directive, r.src.Line)
	}
	return "rule " + r.name
}

// dedupeNotes drops repeated notes (a directive inherited by several
// locations is reported once) and orders them by file, in the order files
// were first mentioned, then by line.
func dedupeNotes(notes []Note) []Note {
	seen := map[Note]bool{}
	fileOrder := map[string]int{}
	var out []Note
	for _, n := range notes {
		if _, ok := fileOrder[n.File]; !ok {
			fileOrder[n.File] = len(fileOrder)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	slices.SortStableFunc(out, func(a, b Note) int {
		if d := fileOrder[a.File] - fileOrder[b.File]; d != 0 {
			return d
		}
		return a.Line - b.Line
	})
	return out
}

// uniqueNames makes rule names unique by numbering repeats.
func uniqueNames(rules []ruleOut) {
	used := map[string]bool{}
	for i := range rules {
		used[rules[i].name] = true
	}
	seen := map[string]bool{}
	for i := range rules {
		base := rules[i].name
		if !seen[base] {
			seen[base] = true
			continue
		}
		for n := 2; ; n++ {
			name := fmt.Sprintf("%s-%d", base, n)
			if !used[name] {
				rules[i].name = name
				used[name], seen[name] = true, true
				break
			}
		}
	}
}

// render writes the policy as YAML.
func (p *policyOut) render() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	if len(p.header) > 0 {
		lines := make([]string, len(p.header))
		for i, l := range p.header {
			lines[i] = cleanComment(l)
		}
		root.HeadComment = strings.Join(lines, "\n")
	}
	if p.listen != "" {
		addKV(root, "listen", str(p.listen))
	}
	if len(p.serverNames) > 0 {
		addKV(root, "server_names", flowList(p.serverNames))
	}
	if p.htpasswd != nil {
		h := &yaml.Node{Kind: yaml.MappingNode}
		addKV(h, "file", str(p.htpasswd.file))
		if p.htpasswd.realm != "" {
			addKV(h, "realm", str(p.htpasswd.realm))
		}
		if p.htpasswd.allowWeakHashes {
			addKV(h, "allow_weak_hashes", boolean(true))
		}
		id := &yaml.Node{Kind: yaml.MappingNode}
		addKV(id, "htpasswd", h)
		addKV(root, "identity", id)
	}
	if len(p.rules) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range p.rules {
			seq.Content = append(seq.Content, p.rules[i].node())
		}
		addKV(root, "rules", seq)
	}
	if len(p.handlers) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, h := range p.handlers {
			n := &yaml.Node{Kind: yaml.MappingNode, HeadComment: cleanComment(h.comment)}
			addKV(n, "path", str(h.path))
			if h.upstream != "" {
				addKV(n, "upstream", str(h.upstream))
			} else {
				addKV(n, "root", str(h.root))
				if len(h.index) > 0 {
					addKV(n, "index", flowList(h.index))
				}
				if h.listing {
					addKV(n, "listing", boolean(true))
				}
				if len(h.listingOn) > 0 {
					addKV(n, "listing_on", flowList(h.listingOn))
				}
				if len(h.listingOff) > 0 {
					addKV(n, "listing_off", flowList(h.listingOff))
				}
			}
			seq.Content = append(seq.Content, n)
		}
		addKV(root, "handle", seq)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("render policy: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render policy: %w", err)
	}
	return buf.Bytes(), nil
}

func (r *ruleOut) node() *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, HeadComment: cleanComment(r.comment)}
	addKV(n, "name", str(r.name))
	when := &yaml.Node{Kind: yaml.MappingNode}
	if r.path != nil {
		pm := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		if len(r.path.exact) > 0 {
			addKV(pm, "exact", flowList(r.path.exact))
		}
		if len(r.path.prefix) > 0 {
			addKV(pm, "prefix", flowList(r.path.prefix))
		}
		if len(r.path.regex) > 0 {
			addKV(pm, "regex", flowList(r.path.regex))
		}
		addKV(pm, "case_sensitive", boolean(r.path.caseSensitive))
		addKV(when, "path", pm)
	}
	if len(r.ip) > 0 {
		addKV(when, "ip", flowList(r.ip))
	}
	if len(r.notIP) > 0 {
		addKV(when, "not_ip", flowList(r.notIP))
	}
	if len(r.refererNotIn) > 0 {
		addKV(when, "referer_not_in", flowList(r.refererNotIn))
	}
	if len(when.Content) > 0 {
		addKV(n, "when", when)
	}
	if r.requireAuth {
		req := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		addKV(req, "authenticated", boolean(true))
		addKV(n, "require", req)
	}
	if r.action != "" {
		addKV(n, "action", str(r.action))
	}
	if r.status != 0 {
		addKV(n, "status", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(r.status)})
	}
	if r.reason != "" {
		addKV(n, "reason", str(r.reason))
	}
	return n
}

// cleanComment makes text safe for a YAML comment line: valid UTF-8,
// control characters written as escapes.
func cleanComment(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case unicode.IsControl(r):
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func addKV(m *yaml.Node, k string, v *yaml.Node) {
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, v)
}

func str(s string) *yaml.Node {
	// The parsers refuse invalid UTF-8 before it gets here; this only keeps
	// the emitter, which panics on it, safe.
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.ToValidUTF8(s, "\uFFFD")}
}

func boolean(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

func flowList(items []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range items {
		n.Content = append(n.Content, str(s))
	}
	return n
}

// slug makes a rule-name fragment from a path or pattern.
func slug(s string) string {
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
