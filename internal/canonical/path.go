package canonical

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// PathOptions says how to treat the path shapes that mean different things to
// different servers. The defaults (zero value) reject every one of them: a
// request whose path has no single safe meaning is refused with 400 rather
// than judged under one reading and served under another.
type PathOptions struct {
	// AllowEncodedSlash keeps %2F inside a segment as data. Off: 400, because
	// some upstreams decode it into a separator after the rules ran.
	AllowEncodedSlash bool
	// AllowSemicolon keeps ';' as an ordinary character. Off: 400, because
	// Tomcat/Jetty-style upstreams strip ";params" from segments, which turns
	// "/public/..;/admin/" into "/admin/" behind the gateway's back.
	AllowSemicolon bool
	// AllowBackslash keeps '\' as an ordinary character. Off: 400, because
	// IIS and some frameworks read it as a separator.
	AllowBackslash bool
}

// PathError explains why a path was refused. It is a bad_request.
type PathError struct {
	Raw    string
	Reason string
}

func (e *PathError) Error() string { return "path " + quoteShort(e.Raw) + ": " + e.Reason }

// ErrNotOriginForm marks request targets that are not a path (such as "*").
var ErrNotOriginForm = errors.New("request target is not a path")

// Path decodes and normalizes a raw path (the request target up to '?') once.
// It returns the canonical path that rules see and the escaped form that is
// sent upstream; the two always denote the same resource.
//
// Steps, in order: percent-decode exactly once (invalid escapes, NUL and
// control characters, double encoding such as %252e are refused); check
// UTF-8 validity; merge repeated slashes; resolve "." and ".." (above the
// root is refused); refuse names ending in a dot or space. A path that is already canonical is returned as is,
// without allocating.
func Path(raw string, opt PathOptions) (path, escaped string, err error) {
	if raw == "" {
		return "/", "/", nil
	}
	if raw[0] != '/' {
		return "", "", &PathError{raw, "does not start with /"}
	}
	if isCanonicalFast(raw) {
		return raw, raw, nil
	}
	decoded, err := decode(raw, opt)
	if err != nil {
		return "", "", err
	}
	path, err = removeDotSegments(raw, decoded)
	if err != nil {
		return "", "", err
	}
	return path, Escape(path), nil
}

// isCanonicalFast accepts the common case: only unreserved characters and
// "/", no "//", no dot segments. Such a path decodes to itself.
func isCanonicalFast(p string) bool {
	prevSlash := false
	segStart := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			if prevSlash {
				return false
			}
			if isDotSeg(p[segStart:i]) || endsInDot(p[segStart:i]) {
				return false
			}
			prevSlash = true
			segStart = i + 1
			continue
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.':
			// '~' takes the slow path, which checks for 8.3 short names.
		default:
			return false
		}
		prevSlash = false
	}
	return !isDotSeg(p[segStart:]) && !endsInDot(p[segStart:])
}

func isDotSeg(s string) bool { return s == "." || s == ".." }

func endsInDot(s string) bool { return s != "" && s[len(s)-1] == '.' }

// HexDigit is the value of one hexadecimal digit.
func HexDigit(c byte) (byte, bool) { return unhex(c) }

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func decode(raw string, opt PathOptions) (string, error) {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		encoded := false
		if c == '%' {
			if i+2 >= len(raw) {
				return "", &PathError{raw, "truncated percent-encoding"}
			}
			hi, ok1 := unhex(raw[i+1])
			lo, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 {
				return "", &PathError{raw, "invalid percent-encoding " + quoteShort(raw[i:i+3])}
			}
			c = hi<<4 | lo
			encoded = true
			i += 2
		}
		switch {
		case c == '#' && !encoded:
			return "", &PathError{raw, "contains a raw '#': fragments are never sent to a server"}
		case c == '?' && !encoded:
			// FillFrom splits the query off first; a '?' here is a caller
			// passing a target, not a path.
			return "", &PathError{raw, "contains a raw '?': split the query off first"}
		case (c == '?' || c == '#') && encoded:
			// Servers that decode the whole target before splitting it
			// (Apache mod_rewrite CVE-2024-38474, proxies that re-send the
			// decoded path) end the path there: "/admin%3F/x" is "/admin".
			return "", &PathError{raw, "contains an encoded '?' or '#', which servers that decode before splitting read as the end of the path"}
		case c == 0:
			return "", &PathError{raw, "contains a NUL byte"}
		case c < 0x20 || c == 0x7f:
			return "", &PathError{raw, fmt.Sprintf("contains control character 0x%02x", c)}
		case c == '/' && encoded && !opt.AllowEncodedSlash:
			return "", &PathError{raw, "contains an encoded slash (%2F), which upstreams read in different ways"}
		case c == '\\' && !opt.AllowBackslash:
			return "", &PathError{raw, "contains a backslash, which some servers read as a path separator"}
		case c == ';' && !opt.AllowSemicolon:
			return "", &PathError{raw, "contains ';' path parameters, which some servers strip from segments"}
		case c == '%':
			// Only an encoded '%' reaches here (a raw one starts an escape).
			// If it starts another escape, the path is double-encoded: one
			// decoder more upstream would give it a second meaning.
			if i+2 < len(raw) {
				rest := raw[i+1:]
				if looksEscaped(rest) {
					return "", &PathError{raw, "is double percent-encoded"}
				}
			}
		}
		b.WriteByte(c)
	}
	s := b.String()
	if !utf8.ValidString(s) {
		return "", &PathError{raw, "decodes to invalid UTF-8"}
	}
	if !norm.NFKC.IsNormalString(s) || hasBestFitRune(s) {
		for _, r := range s {
			if ascii, ok := foldsToASCII(r); ok {
				return "", &PathError{raw, fmt.Sprintf("contains %q, which some servers read as %q", r, ascii)}
			}
		}
	}
	return s, nil
}

// foldsToASCII reports whether a non-ASCII character has a reading as ASCII
// on some server: its compatibility form (NFKC: fullwidth "ａ", "．", "／",
// mathematical and circled letters, ligatures), its case mapping (dotless
// "ı" upper-cases to "I", the Kelvin sign lower-cases to "k"), or Windows'
// best-fit mapping of separators. A rule on "/admin/" would not match
// "/ａｄｍｉｎ/", which such a server serves as "/admin/".
func foldsToASCII(r rune) (string, bool) {
	if r < utf8.RuneSelf {
		return "", false
	}
	if bf, ok := bestFit[r]; ok {
		return bf, true
	}
	if u := unicode.ToUpper(r); u < utf8.RuneSelf {
		return string(u), true
	}
	if l := unicode.ToLower(r); l < utf8.RuneSelf {
		return string(l), true
	}
	var buf [utf8.UTFMax]byte
	enc := buf[:utf8.EncodeRune(buf[:], r)]
	if norm.NFKC.IsNormal(enc) {
		return "", false
	}
	n := norm.NFKC.String(string(enc))
	for i := 0; i < len(n); i++ {
		if n[i] < utf8.RuneSelf {
			return n, true
		}
	}
	return "", false
}

// bestFit holds separators and dots that Windows' best-fit code-page
// mapping turns into ASCII although NFKC leaves them alone (Orange Tsai,
// "WorstFit", 2025).
var bestFit = map[rune]string{
	0x2215: "/", 0x2044: "/", 0x29F8: "/", // division slash, fraction slash, big solidus
	0x2216: "\\", 0x29F9: "\\", // set minus, big reverse solidus
	0x3002: ".", 0xFF61: ".", // ideographic full stops
}

func hasBestFitRune(s string) bool {
	for _, r := range s {
		if _, ok := bestFit[r]; ok {
			return true
		}
		if r >= utf8.RuneSelf && (unicode.ToUpper(r) < utf8.RuneSelf || unicode.ToLower(r) < utf8.RuneSelf) {
			return true
		}
	}
	return false
}

// looksEscaped reports whether s begins with two hex digits, either raw or
// themselves percent-encoded ("%2541" and "%25%34%31" are both "%41").
func looksEscaped(s string) bool {
	var digits int
	for i := 0; i < len(s) && digits < 2; {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return false
			}
			c = hi<<4 | lo
			i += 3
		} else {
			i++
		}
		if _, ok := unhex(c); !ok {
			return false
		}
		digits++
	}
	return digits == 2
}

// removeDotSegments merges slashes and resolves dot segments in a decoded
// path. A trailing slash, or a final "." or "..", leaves the result ending
// in "/", as RFC 3986 section 5.2.4 does.
func removeDotSegments(raw, p string) (string, error) {
	segs := make([]string, 0, 8)
	trailing := false
	for _, s := range strings.Split(p[1:], "/") {
		trailing = false
		switch s {
		case "":
			trailing = true
		case ".":
			trailing = true
		case "..":
			if len(segs) == 0 {
				return "", &PathError{raw, "climbs above the root with .."}
			}
			segs = segs[:len(segs)-1]
			trailing = true
		default:
			if s[0] == ' ' {
				// Spring MVC trims segments (CVE-2016-5007): "/ admin/" is
				// "/admin/" to it.
				return "", &PathError{raw, "has a segment that starts with a space, which some servers trim"}
			}
			if strings.Contains(s, ":$") {
				// "admin::$DATA", "admin:$i30:$INDEX_ALLOCATION": NTFS
				// stream names, which IIS serves as the file or folder.
				return "", &PathError{raw, "names an NTFS stream (':$'), which Windows servers resolve to the file itself"}
			}
			if isShortName(s) {
				return "", &PathError{raw, "has a segment shaped like a Windows 8.3 short name (NAME~1), which Windows servers resolve to a longer name"}
			}
			if last := s[len(s)-1]; last == '.' || last == ' ' {
				// Windows file systems (IIS, and any upstream on NTFS)
				// drop trailing dots and spaces from names, so to them
				// "/admin./" and "/admin%20/" are "/admin/".
				return "", &PathError{raw, "has a segment that ends in a dot or space, which Windows servers strip"}
			}
			segs = append(segs, s)
		}
	}
	out := "/" + strings.Join(segs, "/")
	if trailing && len(segs) > 0 {
		out += "/"
	}
	return out, nil
}

// isShortName reports whether a segment looks like a Windows 8.3 short
// name: one to six characters, '~', digits, and an extension of up to three
// characters ("INTERN~1", "CONFIG~2.PHP").
func isShortName(seg string) bool {
	i := strings.IndexByte(seg, '~')
	if i < 1 || i > 6 || strings.IndexByte(seg[:i], '.') >= 0 {
		return false
	}
	rest := seg[i+1:]
	n := 0
	for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
		n++
	}
	if n == 0 {
		return false
	}
	rest = rest[n:]
	return rest == "" || rest[0] == '.' && len(rest) <= 4 && strings.IndexByte(rest[1:], '.') < 0
}

// Escape percent-encodes a canonical path for the wire. Everything a path
// segment may hold literally (RFC 3986 pchar) stays; the rest, including
// '%', '?', '#', spaces and non-ASCII bytes, is encoded.
func Escape(p string) string {
	n := 0
	for i := 0; i < len(p); i++ {
		if !isPathChar(p[i]) {
			n++
		}
	}
	if n == 0 {
		return p
	}
	const hexDigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(p)+2*n)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if isPathChar(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return string(b)
}

func isPathChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '/', '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}

func quoteShort(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// ToLower lower-cases ASCII letters only; it returns s itself when there are
// none, so the common all-lower-case path costs no allocation. Unicode case
// folding is left out on purpose: no mainstream server folds non-ASCII path
// letters, and folding them would make rules match what upstreams never see.
func ToLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
