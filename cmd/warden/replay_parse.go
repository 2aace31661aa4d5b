package main

import (
	"net/netip"
	"strconv"
	"strings"
)

// parse reads one line of a log: warden's decision log or JSON access log,
// a combined log (nginx, Apache, warden's own), or "METHOD URL [IP]".
// Records that are not requests (reload notices) are passed over silently
// (ok false, why "").
func (j *judger) parse(text []byte) (*replayRecord, bool, string) {
	if text[0] == '{' {
		rec, ok, why := parseReplayLine(string(text))
		return &rec, ok, why
	}
	s := string(text) // one allocation; the fields are slices of it
	if rec, ok := parseCombined(s); ok {
		return rec, true, ""
	}
	rec, ok, why := parseReplayLine(s)
	return &rec, ok, why
}

// parseCombined reads the combined log format of nginx and Apache:
//
//	ADDR IDENT USER [TIME] "METHOD TARGET PROTO" STATUS BYTES "REFERER" "USER-AGENT" ...
//
// What follows the user agent (warden's request id and duration, other
// appended fields) is ignored. Escapes nginx (\xHH) and Apache (\", \\,
// \xHH) write in the quoted fields are undone. It allocates only for a
// field that holds an escape.
func parseCombined(s string) (*replayRecord, bool) {
	addr, rest, ok := strings.Cut(s, " ")
	if !ok {
		return nil, false
	}
	if _, err := netip.ParseAddr(addr); err != nil {
		return nil, false
	}
	_, rest, ok = strings.Cut(rest, " ") // ident
	if !ok {
		return nil, false
	}
	user, rest, ok := strings.Cut(rest, " ")
	if !ok || len(rest) == 0 || rest[0] != '[' {
		return nil, false
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 || len(rest) < end+3 || rest[end+1] != ' ' || rest[end+2] != '"' {
		return nil, false
	}
	request, rest, ok := quoted(rest[end+2:])
	if !ok {
		return nil, false
	}
	method, target, ok := strings.Cut(request, " ")
	if !ok || method == "" {
		return nil, false
	}
	if i := strings.LastIndexByte(target, ' '); i >= 0 && strings.HasPrefix(target[i+1:], "HTTP/") {
		target = target[:i]
	}
	if target == "" || target[0] != '/' && !strings.Contains(target, "://") && target != "*" {
		return nil, false
	}
	rest = strings.TrimLeft(rest, " ")
	statusStr, rest, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(statusStr)
	if err != nil || status < 100 || status > 999 {
		return nil, false
	}
	_, rest, _ = strings.Cut(rest, " ") // bytes
	rec := &replayRecord{}
	if rest = strings.TrimLeft(rest, " "); len(rest) > 0 && rest[0] == '"' {
		rec.Referer, rest, _ = quoted(rest)
		if rest = strings.TrimLeft(rest, " "); len(rest) > 0 && rest[0] == '"' {
			rec.UserAgent, _, _ = quoted(rest)
		}
	}
	if rec.Referer == "-" {
		rec.Referer = ""
	}
	if rec.UserAgent == "-" {
		rec.UserAgent = ""
	}
	rec.Method, rec.Target, rec.ClientIP = method, target, addr
	if user != "-" && user != "" {
		rec.Principal = unescape(user)
	}
	// The log names no warden decision: only the new one is shown, or
	// compared with --baseline's.
	rec.Action = ""
	return rec, true
}

// quoted reads a "…" field at the start of s (s[0] == '"') and returns it
// unescaped, with what follows the closing quote.
func quoted(s string) (field, rest string, ok bool) {
	esc := false
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			esc = true
			i++
		case '"':
			f := s[1:i]
			if esc {
				f = unescape(f)
			}
			return f, s[i+1:], true
		}
	}
	return "", "", false
}

// unescape undoes \xHH, \" and \\.
func unescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch n := s[i+1]; {
		case n == 'x' && i+3 < len(s):
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
			b.WriteByte(c)
		case n == '"' || n == '\\':
			b.WriteByte(n)
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
