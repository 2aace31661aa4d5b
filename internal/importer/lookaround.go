package importer

import (
	"regexp"
	"strings"
)

// WidenLookarounds removes the lookahead and lookbehind groups ((?!...),
// (?=...), (?<!...), (?<=...)) that PCRE has and RE2 lacks. Without its
// lookarounds a regex matches every string it matched and more, so the
// result may stand in for the original only where matching more refuses
// more: a rule or section that only refuses. ok is false when the pattern
// still does not compile, or had no lookaround to remove.
func WidenLookarounds(pat string) (string, bool) {
	var b strings.Builder
	removed := false
	inClass := false
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		if c == '\\' && i+1 < len(pat) {
			b.WriteByte(c)
			b.WriteByte(pat[i+1])
			i++
			continue
		}
		if inClass {
			inClass = c != ']'
			b.WriteByte(c)
			continue
		}
		if c == '[' {
			inClass = true
			b.WriteByte(c)
			continue
		}
		if c == '(' && (strings.HasPrefix(pat[i:], "(?!") || strings.HasPrefix(pat[i:], "(?=") ||
			strings.HasPrefix(pat[i:], "(?<!") || strings.HasPrefix(pat[i:], "(?<=")) {
			end := closingParen(pat, i)
			if end < 0 {
				return "", false
			}
			i = end
			removed = true
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	if !removed {
		return "", false
	}
	if _, err := regexp.Compile(out); err != nil {
		return "", false
	}
	return out, true
}

// closingParen finds the ")" that closes the group opened at pat[open],
// skipping escapes and character classes; -1 when there is none.
func closingParen(pat string, open int) int {
	depth := 0
	inClass := false
	for i := open; i < len(pat); i++ {
		switch c := pat[i]; {
		case c == '\\':
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// WidenedWhy is the note for a regex whose lookarounds were removed.
const WidenedWhy = "the regex uses lookaround, which RE2 lacks; it is translated without it (%s), which refuses more than the server does (e.g. .well-known), never less"
