package refusal

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/decision"
)

// tagPattern finds markup in a rendered page: every '<' that opens a tag,
// comment or doctype.
var tagPattern = regexp.MustCompile(`<[!/]?[A-Za-z]*`)

// FuzzWrite renders refusals whose reason, rule, contact, request id and
// negotiation headers come from the fuzzer, and checks each format: JSON is
// valid and carries the fields unchanged; HTML has exactly the markup of the
// same page rendered with harmless text (no input becomes a tag, attribute
// or script); text keeps to one line per field with no control characters.
func FuzzWrite(f *testing.F) {
	f.Add("account lacks role: admin", "admin-area", "ops@example.com", "0123abcd", "text/html", "Mozilla/5.0", uint8(3), false, true)
	f.Add("<script>alert(1)</script>", "</code><img src=x>", "\"><svg onload=1>", "id\r\nX-Injected: 1", "application/json", "", uint8(0), false, false)
	f.Add("a\x1b[2Jb\u202e", "r\nfake: line", "", "", "text/plain", "curl/8", uint8(7), true, true)
	codes := decision.Codes()
	f.Fuzz(func(t *testing.T, reason, rule, contact, requestID, accept, ua string, code uint8, minimal, showRule bool) {
		d := decision.Refuse(codes[int(code)%len(codes)], reason)
		d.Rule = rule
		opt := Options{Minimal: minimal, ShowRule: showRule, Contact: contact}
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", accept)
		r.Header.Set("User-Agent", ua)
		w := httptest.NewRecorder()
		Write(w, r, &d, requestID, opt)
		body := w.Body.String()
		want := Build(&d, requestID, opt)
		if w.Code != want.Status || w.Code < 400 || w.Code > 599 {
			t.Fatalf("status %d (problem says %d)", w.Code, want.Status)
		}
		if want.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
			t.Fatal("401 without WWW-Authenticate")
		}
		switch ct := w.Header().Get("Content-Type"); {
		case ct == "application/problem+json":
			var got Problem
			if !json.Valid([]byte(body)) {
				t.Fatalf("invalid JSON: %q", body)
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if got.Code != want.Code || got.Status != want.Status || got.Reason != viaJSON(want.Reason) ||
				got.RequestID != viaJSON(requestID) {
				t.Fatalf("JSON %+v does not carry %+v", got, want)
			}
		case strings.HasPrefix(ct, "text/html"):
			d2 := d
			d2.Reason, d2.Rule = benign(reason), benign(rule)
			opt2 := opt
			opt2.Contact = benign(contact)
			w2 := httptest.NewRecorder()
			Write(w2, r, &d2, benign(requestID), opt2)
			got, base := tagPattern.FindAllString(body, -1), tagPattern.FindAllString(w2.Body.String(), -1)
			if strings.Join(got, " ") != strings.Join(base, " ") {
				t.Fatalf("input changed the page's markup:\n%v\nvs\n%v\n%s", got, base, body)
			}
		case strings.HasPrefix(ct, "text/plain"):
			for _, c := range body {
				if c < 0x20 && c != '\n' || c == 0x7f || c >= 0x80 && c < 0xa0 {
					t.Fatalf("control character %U in text body %q", c, body)
				}
			}
			if n := strings.Count(body, "\n"); n > 5 {
				t.Fatalf("%d lines: input added lines: %q", n, body)
			}
		default:
			t.Fatalf("Content-Type %q", ct)
		}
	})
}

// viaJSON is s as JSON carries it: invalid UTF-8 bytes become U+FFFD.
func viaJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

// benign replaces a fuzzed string by one of the same emptiness with no
// markup at all, for the reference rendering.
func benign(s string) string {
	if s == "" {
		return ""
	}
	return "x"
}
