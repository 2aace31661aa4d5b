package useragent

import (
	"fmt"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxAlternatives bounds how many literals one regex may contribute through
// an alternation (`(a|b|c)bot`). Beyond it the regex is treated as having no
// required literal and is checked on every user agent.
const maxAlternatives = 64

// requiredLiterals returns strings of which at least one occurs in every
// text re matches, or ok=false when no such set is known. The automaton
// folds ASCII case and matches every other byte exactly, so a literal must
// never be missed because of that folding: see foldSafe.
//
// needsKS reports that some returned literal was folded with RE2's (?i) and
// contains k or s, so that it only finds all matches in a user agent with
// the Kelvin sign and long s normalised (see longestSafePiece).
func requiredLiterals(re *syntax.Regexp) (lits []string, needsKS, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		lit, ks := longestSafePiece(re.Rune, re.Flags&syntax.FoldCase != 0)
		if lit == "" {
			return nil, false, false
		}
		return []string{lit}, ks, true
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
		return nil, false, false
	case syntax.OpConcat:
		// Every element must match, so any element's set is required; keep
		// the most selective one.
		var best []string
		bestKS := false
		for _, sub := range re.Sub {
			if l, ks, ok := requiredLiterals(sub); ok && better(l, best) {
				best, bestKS = l, ks
			}
		}
		return best, bestKS, best != nil
	case syntax.OpAlternate:
		// One branch matches, so each branch must contribute a literal.
		var all []string
		anyKS := false
		for _, sub := range re.Sub {
			l, ks, ok := requiredLiterals(sub)
			if !ok {
				return nil, false, false
			}
			all = append(all, l...)
			anyKS = anyKS || ks
			if len(all) > maxAlternatives {
				return nil, false, false
			}
		}
		return dedupe(all), anyKS, true
	}
	return nil, false, false
}

// better reports whether literal set a filters more than b: its shortest
// literal is longer (short literals occur in many user agents), and on a tie
// it has fewer members.
func better(a, b []string) bool {
	if b == nil {
		return true
	}
	ma, mb := shortest(a), shortest(b)
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func shortest(lits []string) int {
	m := int(^uint(0) >> 1)
	for _, l := range lits {
		m = min(m, len(l))
	}
	return m
}

func dedupe(lits []string) []string {
	seen := make(map[string]bool, len(lits))
	out := lits[:0]
	for _, l := range lits {
		k := strings.ToLower(l)
		if !seen[k] {
			seen[k] = true
			out = append(out, l)
		}
	}
	return out
}

// longestSafePiece cuts a literal at the runes whose matches the automaton
// could miss and returns the longest remaining piece, and whether that piece
// relies on the Kelvin-sign/long-s normalisation (see Set.Match).
//
// Without case folding every rune is safe: the automaton only adds ASCII-case
// false positives, which the regex itself then rejects. With RE2's (?i):
//   - ASCII letters are safe. Their case variants are ASCII, except that 'k'
//     also matches the Kelvin sign U+212A and 's' the long s U+017F; a user
//     agent containing either is scanned a second time with them rewritten
//     to 'k' and 's'.
//   - Other runes are safe only if they have no case variants at all.
//
// U+FFFD is never safe: RE2 reads each invalid byte of the subject as U+FFFD,
// so the literal can match bytes that are not its own encoding.
func longestSafePiece(runes []rune, foldCase bool) (piece string, needsKS bool) {
	var best, cur strings.Builder
	bestKS, curKS := false, false
	flush := func() {
		if cur.Len() > best.Len() {
			best.Reset()
			best.WriteString(cur.String())
			bestKS = curKS
		}
		cur.Reset()
		curKS = false
	}
	for _, r := range runes {
		if r == utf8.RuneError || (foldCase && !foldSafe(r)) {
			flush()
			continue
		}
		if foldCase && hasNonASCIIFold(r) {
			curKS = true
		}
		cur.WriteRune(r)
	}
	flush()
	return best.String(), bestKS
}

func foldSafe(r rune) bool {
	if r < utf8.RuneSelf {
		return true
	}
	return unicode.SimpleFold(r) == r
}

// hasNonASCIIFold reports whether an ASCII rune has a non-ASCII case
// variant: 'k'/'K' (U+212A) and 's'/'S' (U+017F).
func hasNonASCIIFold(r rune) bool {
	if r >= utf8.RuneSelf {
		return false
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// kelvinSign and longS are the only non-ASCII runes that RE2's (?i) folds
// onto ASCII letters.
const (
	kelvinSign = "\u212a"
	longS      = "\u017f"
)

var ksNormalizer = strings.NewReplacer(kelvinSign, "k", longS, "s")

// glob is a parsed glob pattern: literal segments separated by wildcards.
type globToken struct {
	wildcard byte   // '*' or '?', 0 for a literal
	literal  string // when wildcard == 0
}

// parseGlob splits a glob into tokens. `*` matches any run of characters,
// `?` exactly one character, and a backslash makes the next character
// literal; every other character stands for itself.
func parseGlob(glob string) ([]globToken, error) {
	var tokens []globToken
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			tokens = append(tokens, globToken{literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*', '?':
			flush()
			if c == '*' && len(tokens) > 0 && tokens[len(tokens)-1].wildcard == '*' {
				continue // ** is *
			}
			tokens = append(tokens, globToken{wildcard: c})
		case '\\':
			if i+1 == len(glob) {
				return nil, fmt.Errorf("glob ends with a lone backslash")
			}
			i++
			lit.WriteByte(glob[i])
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return tokens, nil
}

// globAsSubstring recognises `*text*`, which is a substring test.
func globAsSubstring(tokens []globToken) (string, bool) {
	if len(tokens) == 3 && tokens[0].wildcard == '*' && tokens[1].wildcard == 0 && tokens[2].wildcard == '*' {
		return tokens[1].literal, true
	}
	return "", false
}

// globRegexp translates a glob into an anchored RE2 expression. Case
// folding, when asked for, is ASCII-only like the substring kind, so it is
// spelled out as [aA] classes rather than RE2's Unicode-wide (?i).
func globRegexp(tokens []globToken, caseSensitive bool) string {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for _, t := range tokens {
		switch t.wildcard {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			for _, r := range t.literal {
				lower := unicode.ToLower(r)
				if !caseSensitive && r < utf8.RuneSelf && lower >= 'a' && lower <= 'z' {
					b.WriteString("[" + string(lower) + string(unicode.ToUpper(r)) + "]")
					continue
				}
				b.WriteString(syntaxQuote(r))
			}
		}
	}
	b.WriteString(`$`)
	return b.String()
}

// syntaxQuote writes one rune as an RE2 literal. Invalid UTF-8 in a glob
// decodes to U+FFFD and is matched as such, like RE2 reads the subject.
func syntaxQuote(r rune) string {
	if r < utf8.RuneSelf && strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
		return `\` + string(r)
	}
	return string(r)
}

// globLiteral is the longest literal segment of a glob: every match contains it.
func globLiteral(tokens []globToken) string {
	best := ""
	for _, t := range tokens {
		if t.wildcard == 0 && len(t.literal) > len(best) {
			best = t.literal
		}
	}
	return best
}
