// Package referer implements hotlink protection with the semantics of
// nginx's valid_referers directive (ngx_http_referer_module), so that rules
// written for nginx keep their meaning, quirks included; and the same rules
// applied to the Origin header, for APIs.
//
// The emulation follows the module's source (nginx 1.22 and later), and
// this package's tests check it against a running nginx:
//
//   - The list is an allow-list: Valid reports whether the Referer is one of
//     the valid ones; a rule refuses (hotlink_blocked) when it is not.
//   - `none`: the header is absent. `blocked`: the header is present but
//     does not start with "http://" or "https://" (compared without regard
//     to case), or is shorter than "http://i.ru" (11 bytes).
//   - A host entry ("example.com", "*.example.com", ".example.com",
//     "www.example.*", each optionally followed by a path prefix such as
//     "example.com/galleries/") is compared with the Referer's host: the
//     text after the scheme up to the first '/' or ':' (the port is
//     ignored), without regard to ASCII case. A host longer than 256 bytes
//     makes the Referer invalid. "*.example.com" matches subdomains only,
//     ".example.com" the domain and its subdomains, "www.example.*" any host
//     that starts with "www.example.". An exact host wins over a "*."/"."
//     wildcard, which wins over a ".*" one; among wildcards the most
//     specific wins. When the winning entry has a path prefix, the Referer's
//     path (from the first '/' after the host) must start with it
//     (case-sensitively), and if it does not the Referer is invalid — no
//     other entry or regex is tried.
//   - `~regex` is matched case-insensitively against the text after the
//     scheme ("host:port/path?query"), anywhere in it, and only when no host
//     entry matched the host.
//   - `server_names` adds all the server block's names as host entries
//     (wherever the server_name lines are; when a block has none, nginx's
//     default name is "", which matches an empty host). A name starting
//     with '~' is a regex, matched against the lower-cased host only, and
//     compiled case-insensitively only if it contains an upper-case letter
//     (as nginx compiles server_name regexes).
//   - When the list has no host entry and no regex at all, every request is
//     valid, with or without a Referer.
//
// Configuration errors nginx reports ("conflicting parameter", "invalid
// hostname or wildcard", none/blocked without any host) are reported by
// Compile too. nginx's referer_hash_bucket_size limit (host names over
// about 46 bytes need a larger bucket) is not reproduced: warden has no hash
// sizing to tune.
//
// Regexes: nginx uses PCRE on bytes (not UTF-8); warden uses RE2 on bytes
// (rsc.io/binaryregexp), so `.` is one byte in both. Differences that
// remain: PCRE-only syntax (look-around, back-references, possessive and
// atomic groups) is rejected by Compile rather than run; and with case
// folding RE2 also folds Latin-1 letters (bytes 0xC0–0xFE) where PCRE folds
// ASCII only.
package referer

import (
	"fmt"
	"strings"

	regexp "rsc.io/binaryregexp"
)

// Valid is a compiled valid_referers list. It is immutable and safe for
// concurrent use.
type Valid struct {
	none, blocked bool
	// alwaysValid: no host entry and no regex (nginx then never sets
	// $invalid_referer).
	alwaysValid bool

	exact   map[string]target
	head    map[string]headEntry // "*.example.com" and ".example.com", keyed by "example.com"
	tail    map[string]target    // "www.example.*", keyed by "www.example"
	res     []*regexp.Regexp     // `~` entries, on the text after the scheme
	hostRes []*regexp.Regexp     // server_name regexes, on the lower-cased host

	// For Compile's conflict checks, as nginx keeps them.
	exactNames, headNames, tailNames map[string]bool
}

// target is what a host entry allows: any path, or paths under a prefix.
type target struct {
	pathPrefix string
	hasPath    bool
}

type headEntry struct {
	target
	subdomainsOnly bool // "*.example.com"; ".example.com" also matches example.com
}

// maxHostBytes: nginx copies the host into a 256-byte buffer and declares
// the Referer invalid when it does not fit.
const maxHostBytes = 256

// Compile compiles the arguments of valid_referers (entries, as written in
// the nginx configuration; several valid_referers lines in one block add up,
// so pass their entries together) with the server_name values of the server
// block (serverNames, used by the `server_names` entry; pass []string{""}
// for a block without server_name, as that is nginx's default).
func Compile(entries []string, serverNames []string) (*Valid, error) {
	if len(entries) == 0 {
		return nil, fmt.Errorf("referer: valid_referers needs at least one entry")
	}
	v := &Valid{
		exact:      map[string]target{},
		head:       map[string]headEntry{},
		tail:       map[string]target{},
		exactNames: map[string]bool{},
		headNames:  map[string]bool{},
		tailNames:  map[string]bool{},
	}
	useServerNames := false
	for _, entry := range entries {
		switch {
		case entry == "":
			return nil, fmt.Errorf("referer: invalid referer %q", entry)
		case entry == "none": // nginx compares these exactly: "None" is a host
			v.none = true
		case entry == "blocked":
			v.blocked = true
		case entry == "server_names":
			useServerNames = true
		case strings.HasPrefix(entry, "~"):
			re, err := compileRegex(entry[1:], true, entry)
			if err != nil {
				return nil, err
			}
			v.res = append(v.res, re)
		default:
			host, path, hasPath := strings.Cut(entry, "/")
			if hasPath {
				path = "/" + path
			}
			if err := v.addHost(host, path, hasPath); err != nil {
				return nil, err
			}
		}
	}
	if useServerNames {
		// nginx adds the server names after the explicit entries, when it
		// merges the configuration.
		for _, name := range serverNames {
			if strings.HasPrefix(name, "~") {
				re, err := compileRegex(name[1:], hasUpperASCII(name[1:]), "server name "+name)
				if err != nil {
					return nil, err
				}
				v.hostRes = append(v.hostRes, re)
				continue
			}
			// nginx lower-cases server names (ASCII) when it reads them.
			if err := v.addHost(asciiLower(name), "", false); err != nil {
				return nil, err
			}
		}
	}
	hosts := len(v.exactNames) + len(v.headNames) + len(v.tailNames)
	if (v.none || v.blocked) && hosts == 0 {
		// nginx: "the "none" or "blocked" referers are specified in the
		// "valid_referers" directive without any valid referer" — regexes
		// do not count.
		return nil, fmt.Errorf(`referer: "none" or "blocked" given without any valid host (regexes do not count, as in nginx)`)
	}
	v.alwaysValid = hosts == 0 && len(v.res) == 0 && len(v.hostRes) == 0
	v.exactNames, v.headNames, v.tailNames = nil, nil, nil
	return v, nil
}

func hasUpperASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// addHost adds a host entry the way ngx_hash_add_key (with
// NGX_HASH_WILDCARD_KEY) does, including its validation and conflicts.
func (v *Valid) addHost(host, path string, hasPath bool) error {
	t := target{pathPrefix: path, hasPath: hasPath}
	stars := strings.Count(host, "*")
	if stars > 1 || strings.Contains(host, "..") || strings.ContainsRune(host, 0) {
		return fmt.Errorf("referer: invalid hostname or wildcard %q", host)
	}
	lower := asciiLower(host)
	switch {
	case len(host) > 1 && host[0] == '.':
		// ".example.com": example.com and its subdomains. nginx also
		// records "example.com" among the exact names, for conflicts.
		suffix := lower[1:]
		if v.exactNames[suffix] || v.headNames[suffix] {
			return conflict(host)
		}
		v.exactNames[suffix] = true // conflict bookkeeping only, not an exact entry
		v.headNames[suffix] = true
		v.head[suffix] = headEntry{target: t}
		return nil
	case len(host) > 2 && host[0] == '*' && host[1] == '.':
		suffix := lower[2:]
		if v.headNames[suffix] {
			return conflict(host)
		}
		v.headNames[suffix] = true
		v.head[suffix] = headEntry{target: t, subdomainsOnly: true}
		return nil
	case len(host) > 2 && host[len(host)-2] == '.' && host[len(host)-1] == '*':
		prefix := lower[:len(lower)-2]
		if v.tailNames[prefix] {
			return conflict(host)
		}
		v.tailNames[prefix] = true
		v.tail[prefix] = t
		return nil
	case stars > 0:
		return fmt.Errorf("referer: invalid hostname or wildcard %q (a '*' may only start \"*.example.com\" or end \"www.example.*\")", host)
	}
	if v.exactNames[lower] {
		return conflict(host)
	}
	v.exactNames[lower] = true
	v.exact[lower] = t
	return nil
}

func conflict(host string) error {
	return fmt.Errorf("referer: conflicting parameter %q (nginx refuses the same host twice)", host)
}

// compileRegex compiles a regex entry or server name (without its '~').
func compileRegex(pattern string, caseless bool, origin string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, fmt.Errorf("referer: empty regex in %q", origin)
	}
	source := bytePattern(pattern)
	if caseless {
		source = "(?i)" + source
	}
	re, err := regexp.Compile(source)
	if err != nil {
		return nil, fmt.Errorf("referer: regex %q: %w", origin, err)
	}
	return re, nil
}

// bytePattern rewrites the non-ASCII bytes of a pattern as \x{HH} escapes,
// so that RE2 on bytes, like PCRE without UTF mode, reads "é" as the two
// bytes of its UTF-8 encoding. A backslash before such a byte (an escaped
// literal in PCRE) is dropped, the escape making it literal anyway.
func bytePattern(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' && i+1 < len(p) && p[i+1] >= 0x80 {
			continue
		}
		if c == '\\' && i+1 < len(p) {
			b.WriteByte(c)
			b.WriteByte(p[i+1])
			i++
			continue
		}
		if c >= 0x80 {
			fmt.Fprintf(&b, `\x{%02X}`, c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func asciiLower(s string) string {
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

// Valid reports whether a request with this Referer header may have the
// resource. present is false when the request has no Referer header at all;
// a present but empty header is present. With several Referer headers, pass
// the first (nginx uses the first).
func (v *Valid) Valid(referer string, present bool) bool {
	if v.alwaysValid {
		return true
	}
	if !present {
		return v.none
	}
	var rest string
	switch {
	case len(referer) < len("http://i.ru"):
		return v.blocked
	case hasPrefixFold(referer, "http://"):
		rest = referer[len("http://"):]
	case hasPrefixFold(referer, "https://"):
		rest = referer[len("https://"):]
	default:
		return v.blocked
	}
	return v.match(rest)
}

// ValidOrigin applies the same list to an Origin header (for APIs, where
// browsers send Origin on cross-origin requests and may omit Referer). It
// is warden's own extension, not nginx behaviour:
//
//   - absent (present=false) is `none`;
//   - "null" (sandboxed documents, file: pages, redirects across origins)
//     and any value that is not an http:// or https:// origin is treated
//     like a blocked Referer: valid only with `blocked`;
//   - otherwise the host is matched as for Referer (port ignored, exact and
//     wildcard entries). An origin has no path, so entries with a path
//     prefix never match it; regexes see "host[:port]" with nothing
//     appended, and there is no 11-byte minimum.
func (v *Valid) ValidOrigin(origin string, present bool) bool {
	if v.alwaysValid {
		return true
	}
	if !present {
		return v.none
	}
	var rest string
	switch {
	case hasPrefixFold(origin, "http://"):
		rest = origin[len("http://"):]
	case hasPrefixFold(origin, "https://"):
		rest = origin[len("https://"):]
	default: // includes "null"
		return v.blocked
	}
	return v.match(rest)
}

// match decides for the text after the scheme: host entries first, then
// server_name regexes on the host, then `~` regexes on the whole rest.
func (v *Valid) match(rest string) bool {
	var buf [maxHostBytes]byte
	n := 0
	for n < len(rest) && rest[n] != '/' && rest[n] != ':' {
		if n == maxHostBytes {
			// nginx: a host that does not fit its 256-byte buffer makes
			// the Referer invalid outright.
			return false
		}
		c := rest[n]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	host := buf[:n]
	if t, found := v.lookup(host); found {
		if !t.hasPath {
			return true
		}
		path := rest[n:]
		if i := strings.IndexByte(path, '/'); i >= 0 {
			path = path[i:]
		} else {
			path = ""
		}
		// A host entry decides: a path that does not match is invalid
		// even if a regex would have matched.
		return strings.HasPrefix(path, t.pathPrefix)
	}
	if len(v.hostRes) > 0 {
		h := string(host) // a copy, so that buf stays on the stack
		for _, re := range v.hostRes {
			if re.MatchString(h) {
				return true
			}
		}
	}
	for _, re := range v.res {
		if re.MatchString(rest) {
			return true
		}
	}
	return false
}

// lookup finds the entry for host (lower case): exact first, then the most
// specific "*.x"/".x" wildcard, then the most specific "x.*" wildcard.
func (v *Valid) lookup(host []byte) (target, bool) {
	if t, ok := v.exact[string(host)]; ok {
		return t, true
	}
	if len(host) == 0 {
		return target{}, false
	}
	if len(v.head) > 0 {
		if e, ok := v.head[string(host)]; ok && !e.subdomainsOnly {
			return e.target, true
		}
		for i := 0; i < len(host); i++ {
			if host[i] != '.' {
				continue
			}
			if e, ok := v.head[string(host[i+1:])]; ok {
				return e.target, true
			}
		}
	}
	if len(v.tail) > 0 {
		for i := len(host) - 1; i >= 0; i-- {
			if host[i] != '.' {
				continue
			}
			if t, ok := v.tail[string(host[:i])]; ok {
				return t, true
			}
		}
	}
	return target{}, false
}

// hasPrefixFold is ngx_strncasecmp: ASCII case folding only (strings.EqualFold
// would also let "ſ" stand for "s").
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}
