package state

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RateLimitHeaders returns the two fields of draft-ietf-httpapi-ratelimit-
// headers (-09 and -10: "RateLimit header fields for HTTP"), which replaced
// the earlier RateLimit-Limit / -Remaining / -Reset trio:
//
//	RateLimit-Policy: "api-rate";q=100;w=60
//	RateLimit: "api-rate";r=17;t=5
//
// Both are Structured Field Lists (RFC 9651) of one Item: the policy name as
// an sf-string with parameters q (quota), w (window in seconds), r
// (remaining quota units) and t (seconds until the quota is back in full;
// delta seconds, never a timestamp, so clock skew does not matter). For a
// GCRA the advertised quota is the configured Rate per Per; r can be at most
// the burst. Seconds are rounded up: rounding down would tell a client to
// come back before it may.
func RateLimitHeaders(name string, l Limit, r Result) (policy, current string) {
	id := sfString(name)
	var b strings.Builder
	b.Grow(len(id) + 24)
	b.WriteString(id)
	b.WriteString(";q=")
	b.WriteString(strconv.Itoa(l.Rate))
	b.WriteString(";w=")
	b.WriteString(strconv.FormatInt(ceilSeconds(l.Per), 10))
	policy = b.String()

	b.Reset()
	b.WriteString(id)
	b.WriteString(";r=")
	rem := r.Remaining
	if rem < 0 || !r.Allowed {
		rem = 0
	}
	b.WriteString(strconv.Itoa(rem))
	b.WriteString(";t=")
	b.WriteString(strconv.FormatInt(ceilSeconds(r.ResetAfter), 10))
	current = b.String()
	return policy, current
}

// PolicyHeader is RateLimit-Policy's value for a limit named name: it does
// not change between requests, so a compiled limit computes it once.
func PolicyHeader(name string, l Limit) string {
	p, _ := RateLimitHeaders(name, l, Result{})
	return p
}

// SFName is name as the sf-string both headers start with.
func SFName(name string) string { return sfString(name) }

// CurrentHeader is RateLimit's value for the limit whose name is already
// an sf-string (SFName): formatted in a buffer on the stack, so the value
// is the only allocation.
func CurrentHeader(sfName string, r Result) string {
	var buf [96]byte
	b := append(buf[:0], sfName...)
	b = append(b, ";r="...)
	rem := r.Remaining
	if rem < 0 || !r.Allowed {
		rem = 0
	}
	b = strconv.AppendInt(b, int64(rem), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, ceilSeconds(r.ResetAfter), 10)
	return string(b)
}

// SetRateLimitHeaders writes RateLimit-Policy and RateLimit to h, and for a
// refused request Retry-After (RFC 9110 §10.2.3, delay-seconds, at least 1:
// "Retry-After: 0" invites an immediate retry that would be refused again).
func SetRateLimitHeaders(h http.Header, name string, l Limit, r Result) {
	p, c := RateLimitHeaders(name, l, r)
	h.Set("RateLimit-Policy", p)
	h.Set("RateLimit", c)
	if !r.Allowed {
		h.Set("Retry-After", RetryAfterValue(r.RetryAfter))
	}
}

// RetryAfterValue is d as Retry-After delay-seconds, rounded up, at least 1.
func RetryAfterValue(d time.Duration) string {
	s := ceilSeconds(d)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// sfString quotes s as a Structured Field sf-string (RFC 9651 §3.3.3):
// only printable ASCII, with `"` and `\` escaped. Any other byte is
// replaced by "_" so a rule name can never break the header.
func sfString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ParseEscalation reads a ban policy's `escalate:` value: "2x", "2x, max
// 24h", "1.5x max 7d" or "none". It returns the factor (1 = no escalation)
// and the longest ban (0 = no limit beyond the store's ten years).
func ParseEscalation(s string) (factor float64, max time.Duration, err error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return 1, 0, nil
	}
	head, tail, hasMax := strings.Cut(s, "max")
	head = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(head), ","))
	if !strings.HasSuffix(head, "x") {
		return 0, 0, fmt.Errorf("escalate %q: want a factor such as 2x, optionally followed by \", max 24h\"", s)
	}
	factor, err = strconv.ParseFloat(strings.TrimSuffix(head, "x"), 64)
	if err != nil || factor < 1 || factor > 100 {
		return 0, 0, fmt.Errorf("escalate %q: the factor must be a number from 1 to 100 followed by x", s)
	}
	if hasMax {
		t := strings.TrimSpace(tail)
		max, err = ParseDuration(t)
		if err != nil || max <= 0 {
			return 0, 0, fmt.Errorf("escalate %q: max must be a duration such as 24h or 7d", s)
		}
	}
	return factor, max, nil
}

// ParseDuration is time.ParseDuration plus a whole-day suffix ("7d"), since
// ban lengths are naturally given in days.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 3660 {
			return 0, fmt.Errorf("duration %q: want whole days such as 7d", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
