package engine

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the record as the decision log's JSON line, byte for
// byte what slog's JSONHandler writes for
//
//	logger.LogAttrs(ctx, slog.LevelInfo, "decision", rec.Attrs()...)
//
// at time t, newline included. It exists because that path costs a refused
// request about twenty allocations and most of its CPU (issue 17: the
// decision log must not be what limits the refusal rate); this one
// allocates nothing once buf has grown. TestAppendJSONMatchesSlog holds the
// two together, so replay and every other reader of the log see no
// difference.
//
// slog escapes two ways and so does this: a top-level string attribute by
// slog's own escaper (\b and \f as \u0008 and \u000c), and values under
// slog.Any (headers, lists, trace, waf, would_deny, rate_limits) by
// encoding/json with HTML escaping off (\b and \f as \b and \f). Both write
// invalid UTF-8 as \ufffd and escape U+2028 and U+2029.
func (rec *Record) AppendJSON(buf []byte, t time.Time) []byte {
	buf = append(buf, `{"time":"`...)
	buf = t.Round(0).AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","level":"INFO","msg":"decision","request_id":`...)
	buf = appendSlogString(buf, rec.RequestID)
	buf = appendStrField(buf, `,"front":`, rec.Front)
	buf = append(buf, `,"method":`...)
	buf = appendSlogString(buf, rec.Method)
	buf = appendStrField(buf, `,"host":`, rec.Host)
	buf = appendStrField(buf, `,"target":`, rec.Target)
	buf = appendStrField(buf, `,"path":`, rec.Path)
	buf = appendStrField(buf, `,"query":`, rec.Query)
	buf = appendStrField(buf, `,"client_ip":`, rec.ClientIP)
	buf = appendStrField(buf, `,"peer":`, rec.Peer)
	if len(rec.Headers) > 0 {
		buf = append(buf, `,"headers":`...)
		buf = appendStringMap(buf, rec.Headers)
	}
	if len(rec.Dropped) > 0 {
		buf = append(buf, `,"dropped_headers":`...)
		buf = appendStringList(buf, rec.Dropped)
	}
	buf = appendStrField(buf, `,"principal":`, rec.Principal)
	if len(rec.Roles) > 0 {
		buf = append(buf, `,"roles":`...)
		buf = appendStringList(buf, rec.Roles)
	}
	if len(rec.Scopes) > 0 {
		buf = append(buf, `,"scopes":`...)
		buf = appendStringList(buf, rec.Scopes)
	}
	buf = appendStrField(buf, `,"credentials":`, rec.Credentials)
	buf = appendStrField(buf, `,"challenge":`, rec.Challenge)
	buf = appendStrField(buf, `,"bot":`, rec.Bot)
	buf = append(buf, `,"stage":`...)
	buf = appendSlogString(buf, rec.Stage)
	buf = append(buf, `,"action":`...)
	buf = appendSlogString(buf, rec.Action)
	buf = appendStrField(buf, `,"code":`, rec.Code)
	if rec.Status != 0 {
		buf = append(buf, `,"status":`...)
		buf = strconv.AppendInt(buf, int64(rec.Status), 10)
	}
	buf = appendStrField(buf, `,"reason":`, rec.Reason)
	buf = appendStrField(buf, `,"rule":`, rec.Rule)
	buf = appendStrField(buf, `,"rule_at":`, rec.RuleAt)
	buf = appendStrField(buf, `,"detail":`, rec.Detail)
	buf = appendStrField(buf, `,"handler":`, rec.Handler)
	if len(rec.Trace) > 0 {
		buf = append(buf, `,"trace":[`...)
		for i := range rec.Trace {
			s := &rec.Trace[i]
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"rule":`...)
			buf = appendJSONString(buf, s.Rule)
			if s.Line != 0 {
				buf = append(buf, `,"line":`...)
				buf = strconv.AppendInt(buf, int64(s.Line), 10)
			}
			buf = append(buf, `,"matched":`...)
			buf = strconv.AppendBool(buf, s.Matched)
			if s.Note != "" {
				buf = append(buf, `,"note":`...)
				buf = appendJSONString(buf, s.Note)
			}
			buf = append(buf, '}')
		}
		buf = append(buf, ']')
	}
	if w := rec.WAF; w != nil {
		buf = append(buf, `,"waf":{"score":`...)
		buf = strconv.AppendInt(buf, int64(w.Score), 10)
		if w.WouldBlock {
			buf = append(buf, `,"would_block":true`...)
		}
		if w.Blocked {
			buf = append(buf, `,"blocked":true`...)
		}
		if len(w.RuleIDs) > 0 {
			buf = append(buf, `,"rule_ids":[`...)
			for i, id := range w.RuleIDs {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = strconv.AppendInt(buf, int64(id), 10)
			}
			buf = append(buf, ']')
		}
		if len(w.Matches) > 0 {
			buf = append(buf, `,"matches":`...)
			buf = appendStringList(buf, w.Matches)
		}
		buf = append(buf, '}')
	}
	if w := rec.WouldDeny; w != nil {
		buf = append(buf, `,"would_deny":{"rule":`...)
		buf = appendJSONString(buf, w.Rule)
		if w.RuleAt != "" {
			buf = append(buf, `,"rule_at":`...)
			buf = appendJSONString(buf, w.RuleAt)
		}
		buf = append(buf, `,"code":`...)
		buf = appendJSONString(buf, w.Code)
		buf = append(buf, '}')
	}
	if len(rec.RateLimits) > 0 {
		buf = append(buf, `,"rate_limits":[`...)
		for i := range rec.RateLimits {
			l := &rec.RateLimits[i]
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"rule":`...)
			buf = appendJSONString(buf, l.Rule)
			buf = append(buf, `,"key":`...)
			buf = appendJSONString(buf, l.Key)
			buf = append(buf, `,"remaining":`...)
			buf = strconv.AppendInt(buf, int64(l.Remaining), 10)
			buf = append(buf, `,"allowed":`...)
			buf = strconv.AppendBool(buf, l.Allowed)
			buf = append(buf, '}')
		}
		buf = append(buf, ']')
	}
	if rec.Bytes != 0 {
		buf = append(buf, `,"bytes":`...)
		buf = strconv.AppendInt(buf, rec.Bytes, 10)
	}
	return append(buf, "}\n"...)
}

func appendStrField(buf []byte, key, v string) []byte {
	if v == "" {
		return buf
	}
	buf = append(buf, key...)
	return appendSlogString(buf, v)
}

// appendStringList is a []string as encoding/json writes it.
func appendStringList(buf []byte, l []string) []byte {
	buf = append(buf, '[')
	for i, s := range l {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, s)
	}
	return append(buf, ']')
}

// appendStringMap is a map[string]string as encoding/json writes it: keys
// in byte order. A record holds a handful of headers, so the keys are
// sorted in a small array on the stack.
func appendStringMap(buf []byte, m map[string]string) []byte {
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, k)
		buf = append(buf, ':')
		buf = appendJSONString(buf, m[k])
	}
	return append(buf, '}')
}

const hexDigits = "0123456789abcdef"

// appendSlogString quotes s as slog's JSONHandler quotes a string attribute.
func appendSlogString(buf []byte, s string) []byte { return appendQuoted(buf, s, false) }

// appendJSONString quotes s as encoding/json does with SetEscapeHTML(false),
// which is how slog encodes values given as slog.Any.
func appendJSONString(buf []byte, s string) []byte { return appendQuoted(buf, s, true) }

func appendQuoted(buf []byte, s string, shortBF bool) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '\\', '"':
				buf = append(buf, '\\', b)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			case '\b':
				if shortBF {
					buf = append(buf, '\\', 'b')
				} else {
					buf = append(buf, `\u0008`...)
				}
			case '\f':
				if shortBF {
					buf = append(buf, '\\', 'f')
				} else {
					buf = append(buf, `\u000c`...)
				}
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end a line in JavaScript;
		// both encoders escape them, so this does too.
		if c == '\u2028' || c == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
