// Package useragent matches the User-Agent header against lists of
// substring, glob and regular-expression patterns, and stays fast with
// thousands of them.
//
// How: every pattern contributes literal strings to one Aho-Corasick
// automaton (a dense DFA), which reads the user agent once. Substring
// patterns are decided by the automaton alone. A glob or regex contributes
// literals that every match must contain (the longest literal piece of the
// glob; for a regex, what regexp/syntax analysis proves required), so it
// runs only when one of them occurs; when every match of a regex begins with
// its literal, it runs anchored at the occurrence, which RE2 does in one try
// instead of one per offset. Patterns with no required literal
// (`^.{0,3}$`) are tried directly, or, when there are many, first through
// one combined RE2 alternation. BenchmarkMatch10k measures 10,000 patterns.
//
// Semantics, pattern by pattern:
//   - substring: the user agent contains Value.
//   - glob: the whole user agent matches Value, where `*` is any run of
//     characters, `?` one character and `\` makes the next character literal.
//   - regex: RE2 syntax (Go's regexp), unanchored: it matches if it matches
//     anywhere, like nginx's `~` and Apache's BrowserMatch.
//
// Case-insensitive substrings and globs fold ASCII letters only (user agents
// are ASCII); case-insensitive regexes use RE2's (?i), which also folds
// Unicode (so `k` matches the Kelvin sign).
//
// An empty or missing User-Agent is its own case: it matches no pattern (not
// even `*` or `.*`) and is decided by Set.MatchEmpty alone.
package useragent

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"
)

// Pattern kinds.
const (
	KindSubstring = "substring"
	KindGlob      = "glob"
	KindRegex     = "regex"
)

// Pattern is one user-agent rule as configured.
type Pattern struct {
	Kind          string // KindSubstring, KindGlob or KindRegex
	Value         string
	CaseSensitive bool
}

// EmptyUserAgent is the index Match reports for an empty or missing user
// agent when the Set's MatchEmpty is on; it is not an index into the patterns.
const EmptyUserAgent = -1

// Set is a compiled list of patterns. Match is safe for concurrent use.
type Set struct {
	// MatchEmpty makes an empty or missing User-Agent match (with index
	// EmptyUserAgent). Set it before the Set is shared between goroutines.
	MatchEmpty bool

	patterns []Pattern
	checks   []check // per pattern: how to confirm a match
	ac       *automaton

	// Patterns the automaton cannot pre-select, in two groups: those
	// anchored at the start of the text (globs, `^...` regexes), whose
	// combined program RE2 tries at offset 0 only, and the rest.
	anchored, floating unfilteredGroup

	// normalizeKS: some regex literal relies on a second scan of user
	// agents containing the Kelvin sign or long s (see longestSafePiece).
	normalizeKS bool
}

// unfilteredGroup is a list of patterns without a required literal.
type unfilteredGroup struct {
	patterns []int32        // ascending
	sources  []string       // until compile
	any      *regexp.Regexp // matches if a member does; nil for a small group
	anchored bool           // every member matches only at offset 0
}

func (g *unfilteredGroup) add(idx int32, source string) {
	g.patterns = append(g.patterns, idx)
	g.sources = append(g.sources, source)
}

// combineFrom is the group size from which one combined program beats
// trying the members one by one. A single anchored RE2 program is usually
// one-pass and rejects a user agent in tens of nanoseconds; an alternation
// of a few is not, and costs as much as several members.
const combineFrom = 8

func (g *unfilteredGroup) compile() error {
	if len(g.sources) < combineFrom {
		g.sources = nil
		return nil
	}
	var b strings.Builder
	if g.anchored {
		// Every member is anchored already, so this `^` changes no match;
		// but RE2 only notices an anchored program by its first
		// instruction and does not factor a `\A` common to alternatives,
		// and an unanchored alternation is tried at every offset (about
		// 25 times slower on a browser user agent).
		b.WriteString("^")
	}
	b.WriteString("(?:")
	for i, src := range g.sources {
		if i > 0 {
			b.WriteByte('|')
		}
		// Flags set inside a group end with it, so each alternative keeps
		// its own (?i)/(?s).
		b.WriteString("(?:" + src + ")")
	}
	b.WriteString(")")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return fmt.Errorf("useragent: combining the patterns without a literal: %w", err)
	}
	g.any, g.sources = re, nil
	return nil
}

// pending returns the group's patterns that must be tried on ua: none when
// the first is not below best or the combined program (for a group large
// enough to have one) rules them all out.
func (g *unfilteredGroup) pending(ua string, best int32) []int32 {
	if len(g.patterns) == 0 || g.patterns[0] >= best || (g.any != nil && !g.any.MatchString(ua)) {
		return nil
	}
	return g.patterns
}

// anchoredAtStart reports whether every match of re starts at offset 0.
func anchoredAtStart(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginText:
		return true
	case syntax.OpConcat, syntax.OpCapture:
		return len(re.Sub) > 0 && anchoredAtStart(re.Sub[0])
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !anchoredAtStart(sub) {
				return false
			}
		}
		return true
	}
	return false
}

// check is how a pattern is confirmed once the automaton (or an
// unfiltered group) names it as a candidate.
type check struct {
	re      *regexp.Regexp // globs and regexes: the whole pattern
	literal string         // case-sensitive substrings (and `*text*` globs): the exact bytes

	// Regexes verified at the occurrence of a prefix literal.
	lead     []syntax.Op    // assertions before the literal
	anchored *regexp.Regexp // ^(?:the rest), run on the text from the occurrence
}

// candidate is a glob or regex to run: at a prefix-literal occurrence
// (start >= 0) or on the whole user agent (start == wholeText).
type candidate struct {
	pattern int32
	start   int32
}

const wholeText = -1

// Compile compiles patterns. An error names the offending pattern's index
// (0-based) and, for a regex, RE2's own message.
func Compile(patterns []Pattern) (*Set, error) {
	s := &Set{
		patterns: slices.Clone(patterns),
		checks:   make([]check, len(patterns)),
		anchored: unfilteredGroup{anchored: true},
	}
	var uses []literalUse
	for i, p := range patterns {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("useragent: pattern %d (%s %q): %s", i, p.Kind, p.Value, fmt.Sprintf(format, args...))
		}
		if p.Value == "" {
			return nil, fail("empty pattern; to match a missing or empty User-Agent use MatchEmpty")
		}
		idx := int32(i)
		switch p.Kind {
		case KindSubstring:
			act := actMatch
			if p.CaseSensitive {
				act = actVerify
			}
			s.checks[i].literal = p.Value
			uses = append(uses, literalUse{literal: p.Value, output: output{pattern: idx, length: int32(len(p.Value)), act: act}})

		case KindGlob:
			if !utf8.ValidString(p.Value) || strings.ContainsRune(p.Value, utf8.RuneError) {
				// Globs match characters, and an invalid byte in a user
				// agent reads as U+FFFD; keeping both out of globs keeps
				// "character" unambiguous.
				return nil, fail("not valid UTF-8 (or contains U+FFFD)")
			}
			tokens, err := parseGlob(p.Value)
			if err != nil {
				return nil, fail("%v", err)
			}
			if sub, ok := globAsSubstring(tokens); ok {
				act := actMatch
				if p.CaseSensitive {
					act = actVerify
				}
				s.checks[i].literal = sub
				uses = append(uses, literalUse{literal: sub, output: output{pattern: idx, length: int32(len(sub)), act: act}})
				continue
			}
			source := globRegexp(tokens, p.CaseSensitive)
			re, err := regexp.Compile(source)
			if err != nil { // a bug in the translation, not in the glob
				return nil, fail("internal glob translation %q: %v", source, err)
			}
			s.checks[i].re = re
			if lit := globLiteral(tokens); lit != "" {
				uses = append(uses, literalUse{literal: lit, output: output{pattern: idx, act: actCandidate}})
			} else {
				s.anchored.add(idx, source) // globs are always anchored
			}

		case KindRegex:
			// Compile as written first, so the error quotes the user's
			// pattern and not our (?i) wrapping.
			if _, err := regexp.Compile(p.Value); err != nil {
				return nil, fail("%v", err)
			}
			source := p.Value
			if !p.CaseSensitive {
				source = "(?i)" + source
			}
			re, err := regexp.Compile(source)
			if err != nil {
				return nil, fail("%v", err)
			}
			s.checks[i].re = re
			parsed, err := syntax.Parse(source, syntax.Perl)
			if err != nil {
				return nil, fail("%v", err)
			}
			simplified := parsed.Simplify()
			lits, ks, ok := requiredLiterals(simplified)
			plan, planned := planPrefix(simplified)
			if planned && (!ok || shortest(plan.literals) >= min(shortest(lits), 3)) {
				anchored, err := regexp.Compile("^(?:" + plan.body + ")")
				if err != nil { // a bug in the analysis, not in the pattern
					return nil, fail("internal prefix plan %q: %v", plan.body, err)
				}
				s.checks[i].lead, s.checks[i].anchored = plan.lead, anchored
				s.normalizeKS = s.normalizeKS || plan.needsKS
				for _, lit := range plan.literals {
					uses = append(uses, literalUse{literal: lit, output: output{pattern: idx, length: int32(len(lit)), act: actAtPrefix}})
				}
				continue
			}
			switch {
			case ok:
				s.normalizeKS = s.normalizeKS || ks
				for _, lit := range lits {
					uses = append(uses, literalUse{literal: lit, output: output{pattern: idx, act: actCandidate}})
				}
			case anchoredAtStart(simplified):
				s.anchored.add(idx, source)
			default:
				s.floating.add(idx, source)
			}

		default:
			return nil, fail("unknown kind; want %q, %q or %q", KindSubstring, KindGlob, KindRegex)
		}
	}

	ac, err := buildAutomaton(uses)
	if err != nil {
		return nil, fmt.Errorf("useragent: %w", err)
	}
	s.ac = ac
	if err := s.anchored.compile(); err != nil {
		return nil, err
	}
	if err := s.floating.compile(); err != nil {
		return nil, err
	}
	return s, nil
}

// Len is the number of patterns.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.patterns)
}

// Pattern returns pattern i as it was compiled, to explain a match.
func (s *Set) Pattern(i int) Pattern { return s.patterns[i] }

// noMatch is larger than any pattern index.
const noMatch = int32(1<<31 - 1)

// Match reports whether ua matches the Set and, if so, the lowest index of
// the matching patterns (so that list order decides, like first-match rule
// lists), or EmptyUserAgent for an empty ua when MatchEmpty is on. A nil Set
// matches nothing.
func (s *Set) Match(ua string) (index int, ok bool) {
	if s == nil {
		return -1, false
	}
	if ua == "" {
		if s.MatchEmpty {
			return EmptyUserAgent, true
		}
		return -1, false
	}

	best := noMatch
	var candidateBuf [16]candidate
	candidates := candidateBuf[:0]
	if s.ac != nil {
		best, candidates = s.scan(ua, best, candidates, false)
		if s.normalizeKS && (strings.Contains(ua, kelvinSign) || strings.Contains(ua, longS)) {
			// Rare: RE2's (?i) lets k and s match these two non-ASCII
			// runes, which the automaton reads as other bytes. Scanning
			// the rewritten text finds the regexes whose literal occurs
			// that way (to run on the whole text: positions in the
			// rewritten text are not positions in ua); substring outputs
			// of this scan are ignored, substrings fold ASCII only.
			_, candidates = s.scan(ksNormalizer.Replace(ua), best, candidates, true)
		}
	}

	// Regexes and globs: run those whose literal occurred, and those
	// without a literal (if their group's combined program says one of
	// them matches), in index order, stopping at the first match or at the
	// best substring.
	candidates = sortUniqueCandidates(candidates)
	anchored := s.anchored.pending(ua, best)
	floating := s.floating.pending(ua, best)
	for {
		idx := best
		if len(candidates) > 0 {
			idx = min(idx, candidates[0].pattern)
		}
		if len(anchored) > 0 {
			idx = min(idx, anchored[0])
		}
		if len(floating) > 0 {
			idx = min(idx, floating[0])
		}
		if idx >= best {
			break
		}
		matched := false
		switch {
		case len(candidates) > 0 && candidates[0].pattern == idx:
			for len(candidates) > 0 && candidates[0].pattern == idx {
				matched = matched || s.matchAt(idx, ua, candidates[0].start)
				candidates = candidates[1:]
			}
		case len(anchored) > 0 && anchored[0] == idx:
			anchored = anchored[1:]
			matched = s.checks[idx].re.MatchString(ua)
		default:
			floating = floating[1:]
			matched = s.checks[idx].re.MatchString(ua)
		}
		if matched {
			return int(idx), true
		}
	}
	if best != noMatch {
		return int(best), true
	}
	return -1, false
}

// matchAt runs pattern idx on ua, at a prefix-literal occurrence or on
// the whole text.
func (s *Set) matchAt(idx int32, ua string, start int32) bool {
	c := &s.checks[idx]
	if start == wholeText {
		return c.re.MatchString(ua)
	}
	return leadHolds(c.lead, ua, int(start)) && c.anchored.MatchString(ua[start:])
}

// scan runs the automaton over text, lowering best to the lowest matching
// substring pattern and adding glob/regex candidates below best. With
// candidatesOnly (text is not ua itself) substring outputs are ignored and
// candidates are to run on the whole user agent.
func (s *Set) scan(text string, best int32, candidates []candidate, candidatesOnly bool) (int32, []candidate) {
	a := s.ac
	state := uint32(0)
	for i := 0; i < len(text); i++ {
		t := a.trans[state+uint32(a.class[text[i]])]
		state = t &^ hasOutput
		if t&hasOutput != 0 {
			best, candidates = s.collect(state/a.nclass, text, i, best, candidates, candidatesOnly)
		}
	}
	return best, candidates
}

// collect handles the outputs of state (and of its suffix states) for a
// literal occurrence ending at text[end].
func (s *Set) collect(state uint32, text string, end int, best int32, candidates []candidate, candidatesOnly bool) (int32, []candidate) {
	a := s.ac
	for st := int32(state); st >= 0; st = a.dict[st] {
		for _, o := range a.outs[a.outFrom[st]:a.outFrom[st+1]] {
			if o.pattern >= best {
				break // sorted: nothing better in this state
			}
			var c candidate
			switch o.act {
			case actMatch:
				if !candidatesOnly {
					best = o.pattern
				}
				continue
			case actVerify:
				start := end + 1 - int(o.length)
				if !candidatesOnly && text[start:end+1] == s.checks[o.pattern].literal {
					best = o.pattern
				}
				continue
			case actCandidate:
				c = candidate{pattern: o.pattern, start: wholeText}
			case actAtPrefix:
				c = candidate{pattern: o.pattern, start: int32(end + 1 - int(o.length))}
				if candidatesOnly {
					c.start = wholeText
				}
			}
			if n := len(candidates); n > 0 && candidates[n-1] == c {
				continue // the same literal again
			}
			if len(candidates) == cap(candidates) {
				// Keep the list as long as the number of distinct
				// candidates, not the number of literal occurrences.
				candidates = sortUniqueCandidates(candidates)
			}
			candidates = append(candidates, c)
		}
	}
	return best, candidates
}

// sortUniqueCandidates sorts by pattern then position, in place, and drops
// duplicates.
func sortUniqueCandidates(cs []candidate) []candidate {
	if len(cs) < 2 {
		return cs
	}
	slices.SortFunc(cs, func(a, b candidate) int {
		if a.pattern != b.pattern {
			return int(a.pattern - b.pattern)
		}
		return int(a.start - b.start)
	})
	return slices.Compact(cs)
}
