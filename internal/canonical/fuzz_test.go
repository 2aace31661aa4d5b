package canonical

// Fuzz targets for the two things an attacker writes and rules judge: the
// path and the client-address headers. Seeds live in testdata/fuzz and run
// as ordinary tests; `go test -fuzz=FuzzPath` explores from them.

import (
	"net/http"
	"net/netip"
	"net/url"
	pathpkg "path"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/warden-gateway/warden/internal/match/ipmatch"
)

// FuzzPath checks, for every raw path Path accepts:
//   - the path rules see and the path forwarded are the same: the escaped
//     form decodes to the canonical one and is exactly Escape of it;
//   - idempotence: canonicalizing the escaped path gives the same result;
//   - no unreported mapping: the canonical path is exactly what resolving
//     dot segments (path.Clean) makes of the once-decoded input, so nothing
//     lands outside its prefix except through a ".." Path saw and resolved;
//   - none of the shapes refused by default survive (backslash, ';', NUL
//     and controls, characters with an ASCII reading, trailing dot or space).
func FuzzPath(f *testing.F) {
	for _, s := range []string{"/", "/admin/", "/public/..;/admin/", "/%2e%2e/", "/caf%C3%A9", "/a//b/./c/../d/", "/%EF%BD%81"} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, raw string, flags uint8) {
		opt := PathOptions{AllowEncodedSlash: flags&1 != 0, AllowSemicolon: flags&2 != 0, AllowBackslash: flags&4 != 0}
		if raw == "" {
			return // "/" by definition
		}
		p, esc, err := Path(raw, opt)
		if err != nil {
			if _, ok := err.(*PathError); !ok {
				t.Fatalf("Path(%q): error of type %T: %v", raw, err, err)
			}
			return
		}
		if !strings.HasPrefix(p, "/") || !utf8.ValidString(p) {
			t.Fatalf("Path(%q) = %q: not an absolute UTF-8 path", raw, p)
		}
		if esc != Escape(p) {
			t.Fatalf("Path(%q): escaped %q, but Escape(%q) = %q", raw, esc, p, Escape(p))
		}
		if dec, err := url.PathUnescape(esc); err != nil || dec != p {
			t.Fatalf("Path(%q): escaped %q decodes to %q (%v), not %q", raw, esc, dec, err, p)
		}
		p2, esc2, err := Path(esc, opt)
		if err != nil || p2 != p || esc2 != esc {
			t.Fatalf("not idempotent: Path(%q) = %q %q; Path(%q) = %q %q %v", raw, p, esc, esc, p2, esc2, err)
		}
		dec, err := url.PathUnescape(raw)
		if err != nil {
			t.Fatalf("Path accepted %q, which does not percent-decode: %v", raw, err)
		}
		want := pathpkg.Clean(dec)
		if got := strings.TrimSuffix(p, "/"); got != want && !(p == "/" && want == "/") {
			t.Fatalf("Path(%q) = %q, but resolving the decoded path %q gives %q", raw, p, dec, want)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("Path(%q) = %q keeps a dot segment", raw, p)
			}
			if seg != "" && (seg[len(seg)-1] == '.' || seg[len(seg)-1] == ' ' || seg[0] == ' ') {
				t.Fatalf("Path(%q) = %q keeps a segment Windows or Spring would trim", raw, p)
			}
			if isShortName(seg) || strings.Contains(seg, ":$") {
				t.Fatalf("Path(%q) = %q keeps a name Windows resolves to another", raw, p)
			}
		}
		if strings.Contains(p, "//") {
			t.Fatalf("Path(%q) = %q keeps an empty segment", raw, p)
		}
		for _, r := range p {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("Path(%q) = %q keeps control character %U", raw, p, r)
			}
			if _, ok := foldsToASCII(r); ok {
				t.Fatalf("Path(%q) = %q keeps %q, which some servers read as ASCII", raw, p, r)
			}
		}
		if strings.ContainsAny(p, "?#") {
			t.Fatalf("Path(%q) = %q keeps a '?' or '#'", raw, p)
		}
		if !opt.AllowBackslash && strings.Contains(p, `\`) {
			t.Fatalf("Path(%q) = %q keeps a backslash", raw, p)
		}
		if !opt.AllowSemicolon && strings.Contains(p, ";") {
			t.Fatalf("Path(%q) = %q keeps a ';'", raw, p)
		}
	})
}

// FuzzClientIP checks the client-address headers of a trusted proxy: no
// panic; an untrusted peer's headers are never read; a client address is
// either the peer or an address written in the headers, never invented; and
// an answer from a trusted peer names an address that is not itself a
// trusted proxy unless every hop was one.
func FuzzClientIP(f *testing.F) {
	f.Add("127.0.0.1", "10.0.0.1, 203.0.113.9", "for=198.51.100.7;proto=https", "192.0.2.1")
	f.Add("::1", "", `for="[2001:db8::1]:443"`, "")
	f.Add("127.0.0.2", "unknown", "for=_hidden", "1.2.3.4")
	trusted := &ipmatch.Set{}
	for _, s := range []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8"} {
		p, _ := ipmatch.ParsePrefix(s)
		trusted.Add(p)
	}
	f.Fuzz(func(t *testing.T, peerS, xff, fwd, xri string) {
		peer, err := netip.ParseAddr(peerS)
		if err != nil {
			return
		}
		h := http.Header{}
		for name, v := range map[string]string{"X-Forwarded-For": xff, "Forwarded": fwd, "X-Real-Ip": xri} {
			if v != "" {
				h[name] = strings.Split(v, "\n")
			}
		}
		client, isTrusted, err := ClientIP(peer, h, trusted, DefaultClientIPHeaders)
		if isTrusted != trusted.Contains(peer.Unmap()) {
			t.Fatalf("peer %s: trusted %v", peer, isTrusted)
		}
		if !isTrusted {
			if err != nil || client != peer.Unmap() {
				t.Fatalf("untrusted peer %s: client %s, %v (headers must be ignored)", peer, client, err)
			}
			return
		}
		if err != nil {
			return // a trusted proxy said something unreadable: 400
		}
		if !client.IsValid() || client.Zone() != "" || client.Is4In6() {
			t.Fatalf("client %v is not a plain address", client)
		}
		if client == peer.Unmap() {
			return
		}
		all := xff + " " + fwd + " " + xri
		if !strings.Contains(all, client.String()) && !strings.Contains(strings.ToLower(all), client.StringExpanded()) && !mentions(all, client) {
			t.Fatalf("client %s appears in no header: %q", client, all)
		}
	})
}

// mentions reports whether some address written in s (in any spelling)
// equals a.
func mentions(s string, a netip.Addr) bool {
	for _, tok := range strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune(",;=\"[]", r) }) {
		for _, cand := range []string{tok, strings.TrimSuffix(tok, ":"), cutPort(tok)} {
			if b, err := netip.ParseAddr(cand); err == nil && b.Unmap() == a {
				return true
			}
		}
	}
	return false
}

func cutPort(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().String()
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 && strings.Count(s, ":") == 1 {
		return s[:i]
	}
	return s
}
