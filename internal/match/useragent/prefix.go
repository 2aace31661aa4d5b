package useragent

import (
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// A regex whose every match begins with one of a few literals (after
// zero-width assertions such as \b) is verified where such a literal occurs:
// the automaton reports the occurrence's position, the assertions are
// checked there, and the rest runs as an anchored program on the text from
// that position. RE2 tries an anchored program at one offset only, where an
// unanchored case-insensitive search tries every offset: `compatible;
// FooBot\b` costs about 100 ns instead of 800 ns on a typical user agent.

// leadOps are the zero-width assertions allowed before the prefix literal;
// they are evaluated against the original text, which the anchored program
// (run on a suffix of it) can no longer see.
func isLeadOp(op syntax.Op) bool {
	switch op {
	case syntax.OpBeginText, syntax.OpBeginLine, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	}
	return false
}

// prefixPlan is how to verify a regex at a literal occurrence.
type prefixPlan struct {
	literals []string    // every match starts with one of these
	needsKS  bool        // a literal relies on the k/s normalisation
	lead     []syntax.Op // assertions to check at the occurrence
	body     string      // the regex without lead, to anchor at the occurrence
}

// planPrefix returns a plan for re (simplified), or ok=false.
func planPrefix(re *syntax.Regexp) (prefixPlan, bool) {
	var plan prefixPlan
	body := re
	if re.Op == syntax.OpConcat {
		n := 0
		for n < len(re.Sub) && isLeadOp(re.Sub[n].Op) {
			plan.lead = append(plan.lead, re.Sub[n].Op)
			n++
		}
		switch rest := re.Sub[n:]; len(rest) {
		case 0:
			return prefixPlan{}, false
		case 1:
			body = rest[0]
		default:
			body = &syntax.Regexp{Op: syntax.OpConcat, Flags: re.Flags, Sub: rest}
		}
	}
	lits, ks, _, ok := prefixLiterals(body)
	if !ok {
		return prefixPlan{}, false
	}
	plan.literals, plan.needsKS, plan.body = lits, ks, body.String()
	return plan, true
}

// prefixLiterals returns literals one of which begins every match of re,
// and pure=true when re matches exactly those literals and nothing more (so
// that what follows re in a concatenation may extend them).
func prefixLiterals(re *syntax.Regexp) (lits []string, needsKS, pure, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		foldCase := re.Flags&syntax.FoldCase != 0
		var b strings.Builder
		for _, r := range re.Rune {
			// Positions must be exact: every rune of the literal must
			// be matched by bytes of the same length that the automaton
			// folds together.
			if r == utf8.RuneError || (foldCase && !foldSafe(r)) {
				return nil, false, false, false
			}
			if foldCase && hasNonASCIIFold(r) {
				needsKS = true
			}
			b.WriteRune(r)
		}
		return []string{b.String()}, needsKS, true, true

	case syntax.OpCapture:
		return prefixLiterals(re.Sub[0])

	case syntax.OpAlternate:
		pure = true
		for _, sub := range re.Sub {
			l, ks, p, ok := prefixLiterals(sub)
			if !ok {
				return nil, false, false, false
			}
			lits = append(lits, l...)
			needsKS, pure = needsKS || ks, pure && p
			if len(lits) > maxAlternatives {
				return nil, false, false, false
			}
		}
		return lits, needsKS, pure, true

	case syntax.OpConcat:
		lits, needsKS, pure, ok = prefixLiterals(re.Sub[0])
		if !ok {
			return nil, false, false, false
		}
		// Extend with the following elements while everything so far
		// is pure literal text: `Seo(?:Bot|Crawler)` → SeoBot, SeoCrawler.
		for i := 1; i < len(re.Sub) && pure; i++ {
			next, ks, p, ok := prefixLiterals(re.Sub[i])
			if !ok || len(lits)*len(next) > maxAlternatives {
				return lits, needsKS, false, true
			}
			product := make([]string, 0, len(lits)*len(next))
			for _, a := range lits {
				for _, b := range next {
					product = append(product, a+b)
				}
			}
			lits, needsKS, pure = product, needsKS || ks, p
		}
		return lits, needsKS, pure, true
	}
	return nil, false, false, false
}

// leadHolds evaluates the lead assertions at offset start of text, with
// RE2's definitions: \b is an ASCII word boundary, ^ without (?m) is the
// start of text, with (?m) also the position after a newline.
func leadHolds(lead []syntax.Op, text string, start int) bool {
	for _, op := range lead {
		var holds bool
		switch op {
		case syntax.OpBeginText:
			holds = start == 0
		case syntax.OpBeginLine:
			holds = start == 0 || text[start-1] == '\n'
		case syntax.OpWordBoundary, syntax.OpNoWordBoundary:
			before := start > 0 && isWordByte(text[start-1])
			after := start < len(text) && isWordByte(text[start])
			holds = (before != after) == (op == syntax.OpWordBoundary)
		}
		if !holds {
			return false
		}
	}
	return true
}

// isWordByte is RE2's \w: ASCII letters, digits and underscore. A byte of a
// multi-byte rune is never one, as the rune itself is not.
func isWordByte(c byte) bool {
	return c == '_' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
