package policy

import (
	"slices"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
)

// checkShadowing reports rules that can never match because an earlier rule
// always decides first for every request they could match. The check is
// conservative: it reports only what it can prove.
func (c *compiler) checkShadowing() {
	rules := c.p.rules
	for j := range rules {
		for i := 0; i < j; i++ {
			if alwaysDecides(&rules[i]) && covers(&rules[i], &rules[j]) {
				c.errs = append(c.errs, &config.Error{
					Pos:  config.Pos{File: c.cfg.Pos.File, Line: rules[j].line},
					Msg:  "rule \"" + rules[j].name + "\" can never match: rule \"" + rules[i].name + "\" (line " + itoa(rules[i].line) + ") matches every request it would and decides first",
					Hint: "move it above, narrow the earlier rule, or delete it",
				})
				break
			}
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// alwaysDecides: a matched rule that ends evaluation whoever asks. A
// report-only rule never decides.
func alwaysDecides(r *rule) bool {
	return !r.gate && !r.report && r.action != decision.Challenge
}

// covers reports whether every request b matches is also matched by a.
func covers(a, b *rule) bool {
	if len(a.conds) > 0 {
		return false
	}
	if len(a.methods) > 0 && (len(b.methods) == 0 || !subset(b.methods, a.methods)) {
		return false
	}
	if len(a.hosts) > 0 {
		if len(b.hosts) == 0 {
			return false
		}
		for _, h := range b.hosts {
			if !slices.Contains(a.hosts, h) {
				return false
			}
		}
	}
	if len(a.exts) > 0 && (len(b.exts) == 0 || !subset(b.exts, a.exts)) {
		return false
	}
	if len(a.paths) > 0 {
		if len(b.paths) == 0 {
			return false
		}
		for k := range b.paths {
			ok := false
			for m := range a.paths {
				if a.paths[m].Covers(&b.paths[k]) {
					ok = true
					break
				}
			}
			if !ok {
				return false
			}
		}
	}
	if a.ip != nil {
		if b.ip == nil || b.ip.Len() > 100000 {
			return false
		}
		if a.ip != b.ip {
			for _, p := range b.ip.Prefixes() {
				if !a.ip.Covers(p) {
					return false
				}
			}
		}
	}
	if a.notIP != nil && (b.notIP == nil || a.notIP != b.notIP) {
		return false
	}
	return true
}

func subset(small, big []string) bool {
	for _, s := range small {
		if !slices.Contains(big, s) {
			return false
		}
	}
	return true
}
