package useragent

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

const (
	chromeUA  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	firefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
	googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	curlUA    = "curl/8.5.0"
)

func mustCompile(t testing.TB, patterns []Pattern) *Set {
	t.Helper()
	s, err := Compile(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sub(v string) Pattern     { return Pattern{Kind: KindSubstring, Value: v} }
func subCS(v string) Pattern   { return Pattern{Kind: KindSubstring, Value: v, CaseSensitive: true} }
func glob(v string) Pattern    { return Pattern{Kind: KindGlob, Value: v} }
func globCS(v string) Pattern  { return Pattern{Kind: KindGlob, Value: v, CaseSensitive: true} }
func regex(v string) Pattern   { return Pattern{Kind: KindRegex, Value: v} }
func regexCS(v string) Pattern { return Pattern{Kind: KindRegex, Value: v, CaseSensitive: true} }

func TestMatchSemantics(t *testing.T) {
	cases := []struct {
		name    string
		pattern Pattern
		ua      string
		want    bool
	}{
		{"substring", sub("googlebot"), googlebot, true},
		{"substring folds ASCII case", sub("GOOGLEBOT"), googlebot, true},
		{"substring absent", sub("bingbot"), googlebot, false},
		{"case-sensitive substring", subCS("Googlebot"), googlebot, true},
		{"case-sensitive substring, other case", subCS("googlebot"), googlebot, false},
		{"substring at the very end", sub("0"), curlUA, true},
		{"substring longer than ua", sub("curl/8.5.0 and more"), curlUA, false},
		{"substring folds ASCII only", sub("kelvin"), "\u212aelvin", false},

		{"glob is anchored", glob("curl/*"), curlUA, true},
		{"glob anchored at start", glob("url/*"), curlUA, false},
		{"glob anchored at end", glob("curl/8"), curlUA, false},
		{"glob ?", glob("curl/?.?.?"), curlUA, true},
		{"glob ? is one character", glob("curl/?.5.0"), "curl/é.5.0", true},
		{"glob ? needs a character", glob("curl/8.5.0?"), curlUA, false},
		{"glob *text*", glob("*googlebot*"), googlebot, true},
		{"glob *text* case-sensitive", globCS("*googlebot*"), googlebot, false},
		{"glob folds case", glob("CURL/*"), curlUA, true},
		{"glob case-sensitive", globCS("CURL/*"), curlUA, false},
		{"glob escape", glob(`a\*b`), "a*b", true},
		{"glob escape is literal", glob(`a\*b`), "axxb", false},
		{"glob regex metacharacters are literal", glob("(compatible; *)"), "(compatible; x)", true},
		{"glob dot is literal", glob("a.c"), "abc", false},
		{"glob star alone matches anything non-empty", glob("*"), "x", true},
		{"glob middle star", glob("Mozilla/*Firefox/*"), firefoxUA, true},

		{"regex unanchored", regex(`bot/\d+\.\d+`), googlebot, true},
		{"regex folds case", regex(`GOOGLEBOT`), googlebot, true},
		{"regex case-sensitive", regexCS(`GOOGLEBOT`), googlebot, false},
		{"regex anchors", regex(`^curl/`), curlUA, true},
		{"regex anchors fail", regex(`^url/`), curlUA, false},
		{"regex alternation", regex(`(?:bing|yandex|google)bot`), googlebot, true},
		{"regex (?i) folds Unicode", regex(`kelvin`), "\u212aelvin", true},
		{"regex (?i) long s", regex(`spider`), "\u017fpider", true},
		{"regex case-sensitive no Unicode fold", regexCS(`kelvin`), "\u212aelvin", false},
		{"regex with no literal", regex(`^.{1,3}$`), "abc", true},
		{"regex with no literal, no match", regex(`^.{1,3}$`), "abcd", false},
		{"regex matching empty matches any ua", regex(`x*`), "abc", true},
		{"regex U+FFFD matches an invalid byte", regexCS(`a\x{FFFD}b`), "a\xffb", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mustCompile(t, []Pattern{c.pattern})
			idx, ok := s.Match(c.ua)
			if ok != c.want || (ok && idx != 0) {
				t.Errorf("%+v on %q: Match = %d, %v; want %v", c.pattern, c.ua, idx, ok, c.want)
			}
		})
	}
}

func TestLowestIndexWins(t *testing.T) {
	s := mustCompile(t, []Pattern{
		sub("bingbot"),            // 0: no
		regex(`Googlebot/\d`),     // 1: yes (regex candidate)
		sub("googlebot"),          // 2: yes (substring)
		glob("Mozilla/5.0 (*"),    // 3: yes
		sub("compatible"),         // 4: yes
		regex(`^.*$`),             // 5: yes (no literal)
		subCS("Googlebot/2.1; +"), // 6: yes
	})
	if idx, ok := s.Match(googlebot); !ok || idx != 1 {
		t.Errorf("Match = %d, %v; want 1 (the lowest matching index)", idx, ok)
	}
	// Reordered: the substring now comes first.
	s = mustCompile(t, []Pattern{sub("bingbot"), sub("googlebot"), regex(`Googlebot/\d`)})
	if idx, ok := s.Match(googlebot); !ok || idx != 1 {
		t.Errorf("Match = %d, %v; want 1", idx, ok)
	}
	// A later pattern that occurs earlier in the text does not win.
	s = mustCompile(t, []Pattern{sub("bot.html"), sub("Mozilla")})
	if idx, ok := s.Match(googlebot); !ok || idx != 0 {
		t.Errorf("Match = %d, %v; want 0", idx, ok)
	}
	// Overlapping literals: "bot" is a suffix of "googlebot"; the one with
	// the lower index must be found even though it ends at the same byte.
	s = mustCompile(t, []Pattern{sub("xyz"), sub("gLebot"), sub("bot"), sub("oglebot")})
	if idx, ok := s.Match(googlebot); !ok || idx != 1 {
		t.Errorf("Match = %d, %v; want 1", idx, ok)
	}
	s = mustCompile(t, []Pattern{sub("xyz"), sub("ebot"), sub("googlebot")})
	if idx, ok := s.Match(googlebot); !ok || idx != 1 {
		t.Errorf("Match = %d, %v; want 1", idx, ok)
	}
}

func TestEmptyUserAgent(t *testing.T) {
	s := mustCompile(t, []Pattern{glob("*"), regex(`.*`), regex(`^$`)})
	if idx, ok := s.Match(""); ok {
		t.Errorf("empty ua matched pattern %d without MatchEmpty", idx)
	}
	s.MatchEmpty = true
	if idx, ok := s.Match(""); !ok || idx != EmptyUserAgent {
		t.Errorf("Match(\"\") = %d, %v; want EmptyUserAgent, true", idx, ok)
	}
	if idx, ok := s.Match("x"); !ok || idx != 0 {
		t.Errorf("Match(x) = %d, %v; want 0", idx, ok)
	}
	// A set with no patterns at all still answers the empty case.
	empty := mustCompile(t, nil)
	if _, ok := empty.Match(chromeUA); ok {
		t.Error("an empty set matched")
	}
	empty.MatchEmpty = true
	if _, ok := empty.Match(""); !ok {
		t.Error("MatchEmpty on an empty set did not match the empty ua")
	}
	var nilSet *Set
	if _, ok := nilSet.Match("x"); ok || nilSet.Len() != 0 {
		t.Error("a nil set matched")
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		patterns []Pattern
		want     []string
	}{
		{[]Pattern{sub("ok"), regex(`bot(`)}, []string{"pattern 1", `"bot("`, "missing closing )"}},
		{[]Pattern{regex(`a`), regex(`b`), regex(`x**`)}, []string{"pattern 2", "invalid nested repetition operator"}},
		{[]Pattern{regex(`(?=a)b`)}, []string{"pattern 0", "invalid or unsupported Perl syntax"}},
		{[]Pattern{{Kind: "prefix", Value: "x"}}, []string{"pattern 0", "unknown kind"}},
		{[]Pattern{sub("")}, []string{"pattern 0", "empty pattern"}},
		{[]Pattern{glob(`abc\`)}, []string{"pattern 0", "backslash"}},
		{[]Pattern{glob("a\xffb")}, []string{"pattern 0", "UTF-8"}},
	}
	for _, c := range cases {
		_, err := Compile(c.patterns)
		if err == nil {
			t.Errorf("Compile(%+v) succeeded", c.patterns)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Compile(%+v) error %q does not mention %q", c.patterns, err, w)
			}
		}
	}
}

func TestRequiredLiterals(t *testing.T) {
	cases := map[string][]string{ // pattern (case-insensitive) → literals; nil = none
		`googlebot`:              {"googlebot"},
		`google(bot|crawler)`:    {"google"},
		`(bing|yandex)bot/\d+`:   {"bot/"}, // as selective as {bing, yandex}, and one literal
		`(bing|yandex)bot`:       {"bing", "yandex"},
		`^Mozilla/5\.0 \(compat`: {"Mozilla/5.0 (compat"},
		`.*`:                     nil,
		`a?`:                     nil,
		`(ab)+x`:                 {"ab"},
		`spider`:                 {"spider"}, // 's' also folds to U+017F: see the second scan
		`kkk`:                    {"kkk"},
		`caf\x{E9}bot`:           {"caf"}, // é has a case variant the automaton does not fold
		`a\x{FFFD}bc`:            {"bc"},  // U+FFFD also stands for invalid bytes
		`(abc|d*)`:               nil,     // one branch needs nothing
		`[Bb]ot`:                 {"bot"}, // under (?i) the class is just a folded b
		`xy+z`:                   {"x"},   // three one-byte requirements: the first is kept
		`bot\d{2,}`:              {"bot"},
	}
	for pattern, want := range cases {
		re, err := syntaxParseFold(pattern)
		if err != nil {
			t.Fatal(err)
		}
		got, _, ok := requiredLiterals(re)
		if want == nil {
			if ok {
				t.Errorf("%s: literals %q, want none", pattern, got)
			}
			continue
		}
		if !ok || !strings.EqualFold(fmt.Sprint(got), fmt.Sprint(want)) {
			t.Errorf("%s: literals %q (%v), want %q", pattern, got, ok, want)
		}
	}
}

// TestAgreesWithNaiveMatcher compares Set.Match with the obvious loop over
// patterns on random pattern lists and random user agents drawn from a small
// alphabet full of case and Unicode traps, so literals overlap constantly.
func TestAgreesWithNaiveMatcher(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "o", "t", "B", "O", "T", "k", "K", "s", "S", "/", " ", ".", "0", "1", "_", "\n", "\u212a", "\u017f", "é", "É", "\xff"}
	piece := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	// Patterns must be valid UTF-8; the invalid byte becomes U+FFFD, which
	// RE2 matches against invalid bytes in the subject.
	literalRegex := func(s string) string { return regexp.QuoteMeta(strings.ReplaceAll(s, "\xff", "\uFFFD")) }
	randomPattern := func() Pattern {
		cs := rng.IntN(2) == 0
		switch rng.IntN(3) {
		case 0:
			return Pattern{Kind: KindSubstring, Value: piece(1 + rng.IntN(3)), CaseSensitive: cs}
		case 1:
			var b strings.Builder
			for range 1 + rng.IntN(4) {
				switch rng.IntN(4) {
				case 0:
					b.WriteByte('*')
				case 1:
					b.WriteByte('?')
				default:
					b.WriteString(strings.ReplaceAll(piece(1+rng.IntN(2)), "\xff", "x"))
				}
			}
			return Pattern{Kind: KindGlob, Value: b.String(), CaseSensitive: cs}
		default:
			var b strings.Builder
			switch rng.IntN(6) {
			case 0:
				b.WriteByte('^')
			case 1:
				b.WriteString("(?m)^")
			}
			for range 1 + rng.IntN(3) {
				switch rng.IntN(9) {
				case 6:
					b.WriteString(`\b`)
				case 7:
					b.WriteString(`\B`)
				case 8:
					b.WriteString("(" + literalRegex(piece(1+rng.IntN(2))) + "|" + literalRegex(piece(1+rng.IntN(2))) + ")" + literalRegex(piece(1)))
				case 0:
					b.WriteString("(" + literalRegex(piece(1+rng.IntN(2))) + "|" + literalRegex(piece(1+rng.IntN(2))) + ")")
				case 1:
					b.WriteString("[ab]")
				case 2:
					b.WriteString(".*")
				case 3:
					b.WriteString("(" + literalRegex(piece(2)) + ")+")
				default:
					b.WriteString(literalRegex(piece(1 + rng.IntN(3))))
				}
			}
			if rng.IntN(4) == 0 {
				b.WriteByte('$')
			}
			return Pattern{Kind: KindRegex, Value: b.String(), CaseSensitive: cs}
		}
	}
	for round := range 1000 {
		patterns := make([]Pattern, 1+rng.IntN(40))
		for i := range patterns {
			patterns[i] = randomPattern()
		}
		s := mustCompile(t, patterns)
		naive := newNaive(t, patterns)
		for range 200 {
			ua := piece(1 + rng.IntN(25))
			gotIdx, gotOK := s.Match(ua)
			wantIdx, wantOK := naive.match(ua)
			if gotIdx != wantIdx || gotOK != wantOK {
				t.Fatalf("round %d: Match(%q) = %d, %v; naive = %d, %v\npatterns: %+v", round, ua, gotIdx, gotOK, wantIdx, wantOK, patterns)
			}
		}
	}
}

// naive is the reference: each pattern on its own, in order.
type naive struct {
	patterns []Pattern
	res      []*regexp.Regexp
}

func newNaive(t *testing.T, patterns []Pattern) *naive {
	n := &naive{patterns: patterns, res: make([]*regexp.Regexp, len(patterns))}
	for i, p := range patterns {
		if p.Kind == KindRegex {
			src := p.Value
			if !p.CaseSensitive {
				src = "(?i)" + src
			}
			n.res[i] = regexp.MustCompile(src)
		}
	}
	return n
}

func (n *naive) match(ua string) (int, bool) {
	for i, p := range n.patterns {
		var ok bool
		switch p.Kind {
		case KindSubstring:
			if p.CaseSensitive {
				ok = strings.Contains(ua, p.Value)
			} else {
				ok = strings.Contains(asciiLower(ua), asciiLower(p.Value))
			}
		case KindGlob:
			ok = naiveGlob([]rune(unescapeForNaive(p.Value)), decodeRunes(ua), p.CaseSensitive)
		case KindRegex:
			ok = n.res[i].MatchString(ua)
		}
		if ok {
			return i, true
		}
	}
	return -1, false
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = foldByte(c)
	}
	return string(b)
}

// decodeRunes reads s the way RE2 does: an invalid byte is one U+FFFD.
func decodeRunes(s string) []rune {
	var out []rune
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		out = append(out, r)
		s = s[size:]
	}
	return out
}

// unescapeForNaive is a no-op for the generated globs (they contain no
// backslashes); kept explicit so a change to the generator is noticed.
func unescapeForNaive(g string) string {
	if strings.Contains(g, `\`) {
		panic("generator produced an escape")
	}
	return g
}

func naiveGlob(g, s []rune, cs bool) bool {
	if len(g) == 0 {
		return len(s) == 0
	}
	switch g[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if naiveGlob(g[1:], s[i:], cs) {
				return true
			}
		}
		return false
	case '?':
		return len(s) > 0 && naiveGlob(g[1:], s[1:], cs)
	}
	if len(s) == 0 {
		return false
	}
	a, b := g[0], s[0]
	if !cs && a < utf8.RuneSelf && b < utf8.RuneSelf {
		a, b = rune(foldByte(byte(a))), rune(foldByte(byte(b)))
	}
	return a == b && naiveGlob(g[1:], s[1:], cs)
}

func syntaxParseFold(pattern string) (*syntax.Regexp, error) {
	re, err := syntax.Parse("(?i)"+pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	return re.Simplify(), nil
}

// TestOnlyKAndSFoldOutOfASCII pins the assumption behind the second scan:
// the only non-ASCII runes RE2's (?i) folds onto ASCII are the two it rewrites.
func TestOnlyKAndSFoldOutOfASCII(t *testing.T) {
	for r := rune(0); r < utf8.RuneSelf; r++ {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f >= utf8.RuneSelf && string(f) != kelvinSign && string(f) != longS {
				t.Errorf("%q folds to %U, which the k/s normalisation does not cover", r, f)
			}
		}
	}
}

// TestUnfilteredGroupsAgreeWithNaive covers patterns without a required
// literal, in groups large enough to get a combined program, anchored and
// not, mixed with ordinary patterns.
func TestUnfilteredGroupsAgreeWithNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	literalLess := []string{`^.{0,3}$`, `^\W+$`, `^[0-9. ]+$`, `^\S+$`, `^[ab]{2}`, `(?m)^b`, `\d{2}`, `[ab]{3}`,
		`^(?:a|b)?$`, `.`, `^x*$`, `\bt?\b`, `[[:upper:]]{2}`, `^\s`, `\s$`, `^(a|)b`}
	alphabet := "abtoB O0 1/_x\u212a"
	runes := []rune(alphabet)
	for round := range 200 {
		var patterns []Pattern
		for range 8 + rng.IntN(20) {
			switch rng.IntN(5) {
			case 0:
				patterns = append(patterns, sub(string(runes[rng.IntN(len(runes))])+string(runes[rng.IntN(len(runes))])))
			case 1:
				patterns = append(patterns, glob(string(runes[rng.IntN(len(runes))])+"*"))
			default:
				patterns = append(patterns, Pattern{Kind: KindRegex, Value: literalLess[rng.IntN(len(literalLess))], CaseSensitive: rng.IntN(2) == 0})
			}
		}
		s := mustCompile(t, patterns)
		naive := newNaive(t, patterns)
		if s.anchored.any == nil && s.floating.any == nil {
			continue // too few literal-less patterns this round
		}
		for range 100 {
			var b strings.Builder
			for range 1 + rng.IntN(8) {
				b.WriteRune(runes[rng.IntN(len(runes))])
			}
			ua := b.String()
			gi, gok := s.Match(ua)
			wi, wok := naive.match(ua)
			if gi != wi || gok != wok {
				t.Fatalf("round %d: Match(%q) = %d, %v; naive = %d, %v\npatterns: %+v", round, ua, gi, gok, wi, wok, patterns)
			}
		}
	}
}

func TestCombinedProgramsAreBuiltForLargeGroups(t *testing.T) {
	var patterns []Pattern
	for i := range combineFrom {
		patterns = append(patterns, regex(fmt.Sprintf(`^.{%d}$`, i)), regex(fmt.Sprintf(`\d{%d}`, i+1)))
	}
	s := mustCompile(t, patterns)
	if s.anchored.any == nil || s.floating.any == nil {
		t.Fatalf("no combined program for %d anchored and %d floating patterns", len(s.anchored.patterns), len(s.floating.patterns))
	}
	if idx, ok := s.Match("abcd"); !ok || idx != 8 {
		t.Errorf("Match(abcd) = %d, %v; want 8 (^.{4}$)", idx, ok)
	}
	if idx, ok := s.Match("x12345678"); !ok || idx != 1 {
		t.Errorf("Match(x12345678) = %d, %v; want 1 (\\d{1})", idx, ok)
	}
}
