// Package pathmatch matches canonical paths: exact, prefix, glob and regex
// patterns, and an index that narrows a thousand rules down to the few whose
// patterns could match a given path.
package pathmatch

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"unsafe"
)

// Kind is the kind of a path pattern.
type Kind uint8

const (
	Exact Kind = iota
	Prefix
	Glob
	Regex
)

func (k Kind) String() string {
	return [...]string{"exact", "prefix", "glob", "regex"}[k]
}

// Pattern is one compiled path pattern.
type Pattern struct {
	Kind            Kind
	Value           string // lower-cased when CaseInsensitive
	CaseInsensitive bool
	// Spellings makes the pattern match every spelling of a path that
	// servers serve as the same resource (see Spellings); rules that refuse
	// set it, so that a refused file stays refused however it is asked for.
	Spellings bool
	// IndexNames are the index documents Spellings assumes a folder is
	// served with (lower-case); nil means DefaultIndexNames.
	IndexNames []string
	re         *regexp.Regexp
	// need is the longest literal run of a glob: every path the glob
	// matches contains it, so a path without it is refused by one
	// substring search instead of the backtracking match ("" for none).
	need string
}

// New compiles a pattern. Patterns other than regexes must start with "/".
func New(kind Kind, value string, caseInsensitive bool) (Pattern, error) {
	p := Pattern{Kind: kind, Value: value, CaseInsensitive: caseInsensitive}
	switch kind {
	case Regex:
		src := value
		if caseInsensitive {
			src = "(?i)" + src
		}
		re, err := regexp.Compile(src)
		if err != nil {
			// Report the error of the pattern as written, not of the
			// "(?i)" form compiled for a case-insensitive rule.
			if _, e := regexp.Compile(value); e != nil {
				err = e
			}
			return p, fmt.Errorf("bad path regex %q: %v", value, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		p.re = re
		return p, nil
	case Glob:
		if err := checkGlob(value); err != nil {
			return p, err
		}
	}
	if !strings.HasPrefix(value, "/") {
		return p, fmt.Errorf("%s path %q must start with /", kind, value)
	}
	if caseInsensitive {
		p.Value = strings.ToLower(value)
	}
	if kind == Glob {
		p.need = globNeed(p.Value)
	}
	return p, nil
}

// globNeed is the longest run of pat without a wildcard. Each run must
// appear in a matching path as written: "*" and "?" stand only for bytes
// between the runs, and "/**/" standing for one "/" keeps the run after it
// whole (its leading "/" is the one that remains). A run of one byte is
// not worth a search.
func globNeed(pat string) string {
	best := ""
	for _, run := range strings.FieldsFunc(pat, func(r rune) bool { return r == '*' || r == '?' }) {
		if len(run) > len(best) {
			best = run
		}
	}
	if len(best) < 2 {
		return ""
	}
	return best
}

func checkGlob(g string) error {
	if strings.Contains(g, "***") {
		return fmt.Errorf("glob %q: use * (within a segment) or ** (across segments)", g)
	}
	return nil
}

// Match reports whether the pattern matches. path is the canonical path and
// lower its lower-cased form.
func (p *Pattern) Match(path, lower string) bool {
	s := path
	if p.CaseInsensitive && p.Kind != Regex {
		s = lower
	}
	if p.matchOne(s) {
		return true
	}
	return p.Spellings && p.matchSpellings(s)
}

func (p *Pattern) matchOne(s string) bool {
	switch p.Kind {
	case Exact:
		return s == p.Value
	case Prefix:
		if strings.HasPrefix(s, p.Value) {
			return true
		}
		// "/admin/" also covers "/admin": servers answer that path with the
		// folder (or a redirect to it), so leaving it out would be a bypass.
		n := len(p.Value)
		return n > 1 && p.Value[n-1] == '/' && s == p.Value[:n-1]
	case Glob:
		if p.need != "" && !strings.Contains(s, p.need) {
			return false
		}
		return globMatch(p.Value, s)
	case Regex:
		return p.re.MatchString(s)
	}
	return false
}

// matchConcat is matchOne(a + b + c), without building the string for
// the common kinds (a spelling is a path plus "/" plus an index name, tried
// for every refusing pattern on every request: building it was a third of
// the spellings' cost).
func (p *Pattern) matchConcat(a, b, c string) bool {
	v := p.Value
	switch p.Kind {
	case Exact:
		return concatEquals(v, a, b, c)
	case Prefix:
		if concatHasPrefix(a, b, c, v) {
			return true
		}
		n := len(v)
		return n > 1 && v[n-1] == '/' && concatEquals(v[:n-1], a, b, c)
	}
	return p.matchJoined(a, b, c)
}

// concatEquals reports whether v == a+b+c.
func concatEquals(v, a, b, c string) bool {
	if len(v) != len(a)+len(b)+len(c) {
		return false
	}
	return v[:len(a)] == a && v[len(a):len(a)+len(b)] == b && v[len(a)+len(b):] == c
}

// concatHasPrefix reports whether a+b+c starts with v.
func concatHasPrefix(a, b, c, v string) bool {
	for _, part := range [3]string{a, b, c} {
		if len(v) <= len(part) {
			return strings.HasPrefix(part, v)
		}
		if !strings.HasPrefix(v, part) {
			return false
		}
		v = v[len(part):]
	}
	return len(v) == 0
}

// joinBuffers hold a+b+c for glob and regex patterns, so that trying a
// spelling costs no garbage on the hot path; neither matcher keeps the
// string it is given.
var joinBuffers = sync.Pool{New: func() any { return new([1024]byte) }}

func (p *Pattern) matchJoined(a, b, c string) bool {
	if len(a)+len(b)+len(c) > 1024 {
		return p.matchOne(a + b + c)
	}
	buf := joinBuffers.Get().(*[1024]byte)
	n := copy(buf[:], a)
	n += copy(buf[n:], b)
	n += copy(buf[n:], c)
	ok := p.matchOne(unsafe.String(&buf[0], n))
	joinBuffers.Put(buf)
	return ok
}

// literalPrefix is the part every matching path must start with, used for
// indexing. It errs on the short side.
func (p *Pattern) literalPrefix() string {
	if p.Spellings {
		return spellingsLiteral(p.baseLiteral(), p.indexNames())
	}
	return p.baseLiteral()
}

func (p *Pattern) baseLiteral() string {
	switch p.Kind {
	case Exact:
		return p.Value
	case Prefix:
		if n := len(p.Value); n > 1 && p.Value[n-1] == '/' {
			return p.Value[:n-1]
		}
		return p.Value
	case Glob:
		if i := strings.IndexAny(p.Value, "*?["); i >= 0 {
			return p.Value[:i]
		}
		return p.Value
	case Regex:
		if p.CaseInsensitive {
			return ""
		}
		return anchoredLiteral(p.Value)
	}
	return ""
}

// Covers reports whether every path p matches is also matched by q's
// receiver; it is conservative (false when unsure), for shadowing checks.
func (p *Pattern) Covers(q *Pattern) bool {
	if p.matchesEverything() {
		return true
	}
	if q.Spellings && !p.Spellings {
		// q also matches spellings (a trailing slash, ;params, an index
		// file) that p, matching only what is written, may not.
		return false
	}
	if !p.CaseInsensitive && q.CaseInsensitive && p.Kind != Regex && !hasLetter(p.Value) {
		// Case cannot matter to p ("/", "/2024/"): compare on lower-case.
		return p.coversValue(q.Kind, strings.ToLower(q.Value))
	}
	if p.CaseInsensitive && !q.CaseInsensitive {
		// p matches more spellings than q; compare on lower-case.
		qv := strings.ToLower(q.Value)
		return p.coversValue(q.Kind, qv)
	}
	if p.CaseInsensitive != q.CaseInsensitive {
		return false
	}
	return p.coversValue(q.Kind, q.Value)
}

// matchesEverything: every canonical path starts with "/".
func (p *Pattern) matchesEverything() bool {
	return p.Kind == Prefix && p.Value == "/" || p.Kind == Glob && p.Value == "/**"
}

func hasLetter(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; 'a' <= c && c <= 'z' || s[i] >= 0x80 {
			return true
		}
	}
	return false
}

func (p *Pattern) coversValue(k Kind, v string) bool {
	switch p.Kind {
	case Exact:
		return k == Exact && v == p.Value
	case Prefix:
		switch k {
		case Exact, Prefix:
			return strings.HasPrefix(v, p.Value)
		case Glob:
			i := strings.IndexAny(v, "*?[")
			return i >= 0 && strings.HasPrefix(v[:i], p.Value)
		}
	case Glob:
		return (k == Glob || k == Exact) && v == p.Value || k == Exact && globMatch(p.Value, v)
	case Regex:
		return k == Regex && v == p.Value
	}
	return false
}

// anchoredLiteral is the literal text a regex requires at the very start of
// the subject ("^/api/v[12]" gives "/api/v"); "" when it is not anchored.
func anchoredLiteral(src string) string {
	re, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		return ""
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
		return ""
	}
	var b strings.Builder
	for _, sub := range re.Sub[1:] {
		if sub.Op != syntax.OpLiteral || sub.Flags&syntax.FoldCase != 0 {
			break
		}
		b.WriteString(string(sub.Rune))
	}
	return b.String()
}

// globMatch matches '*' (any run within a segment), '**' (any run, across
// segments; "/**/" also matches "/") and '?' (one character other than '/').
func globMatch(pat, s string) bool {
	for len(pat) > 0 {
		switch pat[0] {
		case '*':
			if strings.HasPrefix(pat, "**") {
				rest := strings.TrimLeft(pat, "*")
				if rest == "" {
					return true
				}
				// When the rest starts with a literal byte, only the
				// positions holding that byte can start a match: skip to
				// them instead of recursing at every position.
				lit := rest[0] != '?'
				for i := 0; i <= len(s); i++ {
					if lit {
						j := strings.IndexByte(s[i:], rest[0])
						if j < 0 {
							return false
						}
						i += j
					}
					if globMatch(rest, s[i:]) {
						return true
					}
				}
				return false
			}
			rest := pat[1:]
			lit := rest != "" && rest[0] != '?' && rest[0] != '*'
			for i := 0; i <= len(s); i++ {
				if !lit || i < len(s) && s[i] == rest[0] {
					if globMatch(rest, s[i:]) {
						return true
					}
				}
				if i < len(s) && s[i] == '/' {
					return false
				}
			}
			return false
		case '?':
			if len(s) == 0 || s[0] == '/' {
				return false
			}
		case '/':
			// "/**/" also stands for a single "/" (no folder at all), as
			// in .gitignore: "/**/.git/**" must cover "/.git/config".
			if strings.HasPrefix(pat, "/**/") && globMatch(pat[3:], s) {
				return true
			}
			if len(s) == 0 || s[0] != '/' {
				return false
			}
		default:
			if len(s) == 0 || s[0] != pat[0] {
				return false
			}
		}
		pat, s = pat[1:], s[1:]
	}
	return len(s) == 0
}
