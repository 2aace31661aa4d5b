package importer

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/warden-gateway/warden/internal/match/pathmatch"
)

// compilePaths turns a path matcher into pathmatch patterns, for coverage
// checks. A pattern that does not compile yields nothing.
func (p *PathMatch) compile() []pathmatch.Pattern {
	if p == nil {
		return nil
	}
	var out []pathmatch.Pattern
	add := func(k pathmatch.Kind, list []string) {
		for _, v := range list {
			if pat, err := pathmatch.New(k, v, !p.CaseSensitive); err == nil {
				out = append(out, pat)
			}
		}
	}
	add(pathmatch.Exact, p.Exact)
	add(pathmatch.Prefix, p.Prefix)
	add(pathmatch.Regex, p.Regex)
	return out
}

// PathCovers reports whether every path b matches is matched by a.
func PathCovers(a, b *PathMatch) bool {
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
func covers(a, b *Rule) bool {
	if !a.Decides() || len(a.RefererNotIn) > 0 || a.Expr != "" {
		return false
	}
	if !a.MatchesAllAddrs() {
		if b.Addrs == nil || !b.Addrs.SubsetOf(*a.Addrs) {
			return false
		}
	}
	return PathCovers(a.Path, b.Path)
}

// mayOverlap reports whether some path could match both matchers; it errs
// on yes.
func mayOverlap(a, b *PathMatch) bool {
	if a == nil || b == nil || len(a.Regex) > 0 || len(b.Regex) > 0 {
		return true
	}
	lits := func(p *PathMatch) (out []struct {
		v     string
		exact bool
	}) {
		for _, v := range p.Exact {
			out = append(out, struct {
				v     string
				exact bool
			}{strings.ToLower(v), true})
		}
		for _, v := range p.Prefix {
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

// Prune removes rules that can never apply (an earlier rule decides first
// for every request they match) and allows that change nothing (no later
// refusing rule could match their requests, and the default is allow).
// Pruned rules that came from a directive are reported.
func Prune(rules []Rule, notes *[]Note) []Rule {
	var kept []Rule
	var pruned []Note
	for i := range rules {
		b := &rules[i]
		shadowed := false
		for j := range kept {
			if covers(&kept[j], b) {
				shadowed = true
				if !b.Synthetic && b.Src.Directive != "" {
					n := b.Src
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
		inEffect[kept[i].Src.File+":"+strconv.Itoa(kept[i].Src.Line)] = true
	}
	for _, n := range pruned {
		if !inEffect[n.File+":"+strconv.Itoa(n.Line)] {
			*notes = append(*notes, n)
			inEffect[n.File+":"+strconv.Itoa(n.Line)] = true
		}
	}
	// Drop allows that no later refusing rule could override.
	var out []Rule
	for i := len(kept) - 1; i >= 0; i-- {
		r := &kept[i]
		if r.Action == "allow" && !r.RequireAuth {
			needed := false
			for k := range out {
				later := &out[k]
				if (later.Action != "allow" || later.RequireAuth) && mayOverlap(r.Path, later.Path) {
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

func (r *Rule) describe() string {
	if r.Src.Directive != "" && r.Src.Line > 0 {
		return fmt.Sprintf("%q (line %d)", r.Src.Directive, r.Src.Line)
	}
	return "rule " + r.Name
}
