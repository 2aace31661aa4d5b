package crs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// wardenExpectation is what warden does, instead of letting the WAF judge,
// with a test whose request its front end handles before the WAF: refuse it
// with 400 bad_request (a path with no single safe meaning, ambiguous
// framing), or drop a header by its name and log that it did. The runner
// sends every listed test and asserts the expectation with verify on the
// stage it concerns; a listed test is counted as passed only when verify
// holds, and a listed test that the WAF now judges and passes fails the
// suite (take it off the list), so the list stays honest. Every other test
// must be judged by the WAF, as Coraza judges it.
type wardenExpectation struct {
	kind   string // "refused before the WAF", "header dropped and logged"
	reason string
	verify func(sr *stageRun, up *echoUpstream) error
}

// wardenExpectations are the tests warden's front end answers before (or
// instead of) the WAF, beyond Coraza's own ignore list and overrides.
//
// warden makes every request target canonical before any check runs (see
// internal/canonical): a path with no single safe meaning is refused with
// 400 bad_request. An accepted path is judged by the WAF twice over when
// its spelling changed: as the client sent it and in its canonical form
// (so merged slashes and resolved dot segments hide nothing from CRS).
// Before that, warden refuses a request whose framing is ambiguous (the
// request smuggling shapes, such as Content-Length with Transfer-Encoding),
// and it drops every header whose name holds '_' before any rule (CGI, PHP
// and WSGI read X_Filename as X-Filename, so such a header could pose as one
// warden sets or strips), so neither the WAF nor the upstream sees it, and
// logs the drop. warden is not weakened to let any of these through.
var wardenExpectations = map[string]wardenExpectation{
	"920272-5": refusedBeforeWAF(
		"invalid UTF-8 in the path (/i%FFndex.html): warden refuses it 400 bad_request before the WAF; the test expects 200",
		"decodes to invalid UTF-8"),
	"921190-1": refusedBeforeWAF(
		"a newline in the path (/foo%0Abar): warden refuses control characters 400 bad_request before the WAF",
		"contains control character 0x0a"),
	"921190-2": refusedBeforeWAF(
		"a newline in the path (/foo%0abar): warden refuses control characters 400 bad_request before the WAF",
		"contains control character 0x0a"),
	"921190-3": refusedBeforeWAF(
		"a newline in the path (/index.php/PHP%0Ainfo.php, CVE-2019-11043): warden refuses control characters 400 bad_request before the WAF",
		"contains control character 0x0a"),
	"921190-4": refusedBeforeWAF(
		"a newline in the path (/index.php/PHP_VALUE%0Asession.auto_start=1;;;, CVE-2019-11043): warden refuses control characters 400 bad_request before the WAF",
		"contains control character 0x0a"),
	"931131-1": refusedBeforeWAF(
		"an encoded slash in the path (/get/file:%2f%2f/...): warden refuses %2F 400 bad_request before the WAF (the path also holds double-encoded dots, %252e)",
		"contains an encoded slash (%2F)"),
	"934101-5": refusedBeforeWAF(
		"an encoded ';' in the path (/get/rce/lol%3drequire%3bx...): warden refuses ';' path parameters 400 bad_request before the WAF",
		"contains ';' path parameters"),
	"942550-24": refusedBeforeWAF(
		"an encoded '?' in the path (/get/OR%20%27%7B%22a%22%3A%22b%22%7D%27%20%3F%20%27a%27): warden refuses it 400 bad_request before the WAF, since servers that decode before splitting read it as the start of the query",
		"contains an encoded '?' or '#'"),
	"942550-26": refusedBeforeWAF(
		"an encoded '?' in the path (/get/OR%20%27%5B1%2C2%5D%27%20%3F%20%271%27): warden refuses it 400 bad_request before the WAF, since servers that decode before splitting read it as the start of the query",
		"contains an encoded '?' or '#'"),
	"942550-28": refusedBeforeWAF(
		"an encoded '?' in the path (/get/OR%20...%3F%7C%20array...): warden refuses it 400 bad_request before the WAF, since servers that decode before splitting read it as the start of the query",
		"contains an encoded '?' or '#'"),
	"942550-30": refusedBeforeWAF(
		"an encoded '?' in the path (/get/OR%20...%3F%26%20array...): warden refuses it 400 bad_request before the WAF, since servers that decode before splitting read it as the start of the query",
		"contains an encoded '?' or '#'"),
	"942550-34": refusedBeforeWAF(
		"an encoded '?' in the path (/get/OR%20...%23%3E%20...%3F%20%27c%27): warden refuses it 400 bad_request before the WAF, since servers that decode before splitting read it as the start of the query",
		"contains an encoded '?' or '#'"),
	"942550-45": refusedBeforeWAF(
		"an encoded '?' in the path (/get/payload='...'%3A%3Ajsonb%20%40%3F%20'...'): warden refuses it 400 bad_request before the WAF, since servers that decode before splitting read it as the start of the query",
		"contains an encoded '?' or '#'"),
	"933110-3": headerDropped("X_Filename",
		"header X_Filename: a.php: warden drops header names with '_' before any rule, so neither the WAF nor the upstream sees it"),
	"933110-13": headerDropped("X_Filename",
		"header X_Filename: fda.php5...: warden drops header names with '_' before any rule, so neither the WAF nor the upstream sees it"),
	"933110-14": headerDropped("X_Filename",
		"header X_Filename: fthisfewfda.php.: warden drops header names with '_' before any rule, so neither the WAF nor the upstream sees it"),
	"933220-2": headerDropped("X_Filename",
		"header X_Filename: /tmp/sess_abc123def456ghi789jkl: warden drops header names with '_' before any rule, so neither the WAF nor the upstream sees it"),
	"944140-3": headerDropped("X_Filename",
		"header X_Filename: B.jsp: warden drops header names with '_' before any rule, so neither the WAF nor the upstream sees it"),
	"944140-8": headerDropped("X_Filename",
		"header X_Filename: foo.jspx.: warden drops header names with '_' before any rule, so neither the WAF nor the upstream sees it"),
	"920181-1": refusedBeforeWAF(
		"Content-Length and Transfer-Encoding: chunked together: warden refuses the ambiguous framing (request smuggling) 400 bad_request before the WAF; the test expects 200",
		"the request's framing is ambiguous"),
	// Tests that pass through warden, but on warden's own 400 before the
	// WAF (they expect a rule not to fire): passing them says nothing about
	// the WAF, so the refusal itself is what is asserted.
	"920271-5": refusedBeforeWAF(
		"a segment starting with a space (/%20index.html): warden refuses it 400 bad_request before the WAF, since some servers trim it",
		"has a segment that starts with a space"),
	"920271-6": refusedBeforeWAF(
		"invalid UTF-8 in the path (/%FFindex.html): warden refuses it 400 bad_request before the WAF",
		"decodes to invalid UTF-8"),
	"920610-1": refusedBeforeWAF(
		"an encoded '#' in the path (/%23fragment): warden refuses it 400 bad_request before the WAF",
		"contains an encoded '?' or '#'"),
	"920100-6": refusedBeforeWAF(
		"CONNECT www.coreruleset.org:80: warden is no forward proxy and refuses a target that is not a path 400 bad_request before the WAF",
		"not a path"),
	"920300-3": refusedBeforeWAF(
		"CONNECT www.coreruleset.org:80: warden is no forward proxy and refuses a target that is not a path 400 bad_request before the WAF",
		"not a path"),
	"930110-4": refusedBeforeWAF(
		"a segment ending in dots (/get/foo../1234): warden refuses it 400 bad_request before the WAF, since Windows servers strip them",
		"has a segment that ends in a dot or space"),
	"930110-5": refusedBeforeWAF(
		"a segment ending in dots (/get/foo.../1234): warden refuses it 400 bad_request before the WAF, since Windows servers strip them",
		"has a segment that ends in a dot or space"),
	"932380-6": refusedBeforeWAF(
		"an encoded slash in the path (/get/url%2Fbla%3F...): warden refuses %2F 400 bad_request before the WAF",
		"contains an encoded slash (%2F)"),
}

// refusedBeforeWAF: warden answered 400 bad_request (to the client and in
// its decision log, with a reason saying why) before it had a canonical
// request, so the WAF never saw the request.
func refusedBeforeWAF(reason, why string) wardenExpectation {
	return wardenExpectation{kind: "refused before the WAF", reason: reason, verify: func(sr *stageRun, _ *echoUpstream) error {
		if sr.sendErr != nil {
			return fmt.Errorf("no response: %v", sr.sendErr)
		}
		if sr.resp.status != 400 {
			return fmt.Errorf("warden answered %d, not 400", sr.resp.status)
		}
		if sr.requestID == "" {
			return errors.New("the 400 carries no X-Request-Id, so it is not warden's refusal")
		}
		if sr.judged {
			return errors.New("the WAF judged the request")
		}
		if err := checkRefusalBody(sr, "bad_request"); err != nil {
			return err
		}
		var decided bool
		for _, r := range sr.records {
			switch r.msg {
			case "waf", "waf response":
				return fmt.Errorf("the WAF logged %q for a request refused before it", r.msg)
			case "decision":
				if r.str("code") != "bad_request" || r.str("status") != "400" {
					return fmt.Errorf("decision log: code %q status %s, want bad_request 400", r.str("code"), r.str("status"))
				}
				if st := r.str("stage"); st != "prerule" && st != "canonical" {
					return fmt.Errorf("decision log: the refusal was made at stage %q, after the front end's checks", st)
				}
				if !strings.Contains(r.str("reason"), why) {
					return fmt.Errorf("decision log: reason %q does not say %q", r.str("reason"), why)
				}
				decided = true
			}
		}
		if !decided {
			return errors.New("the decision log holds no refusal for the request")
		}
		return nil
	}}
}

// headerDropped: the client sent header name, warden dropped it and said
// so in the request's decision record (dropped_headers), the WAF judged the
// rest of the request, and the upstream received it without that header
// (in either spelling).
func headerDropped(name, reason string) wardenExpectation {
	return wardenExpectation{kind: "header dropped and logged", reason: reason, verify: func(sr *stageRun, up *echoUpstream) error {
		if sr.sendErr != nil {
			return fmt.Errorf("no response: %v", sr.sendErr)
		}
		if sr.resp.status != 200 {
			return fmt.Errorf("warden answered %d, not 200 from the upstream", sr.resp.status)
		}
		head, _, _ := bytes.Cut(sr.raw, []byte("\r\n\r\n"))
		if !bytes.Contains(head, []byte("\r\n"+name+":")) {
			return fmt.Errorf("the request does not send header %s", name)
		}
		i := slices.IndexFunc(sr.records, func(r logRecord) bool { return r.msg == "decision" && r.str("action") == "allow" })
		if i < 0 {
			return errors.New("the decision log holds no allow decision for the request")
		}
		// Logged under the name Go's header map keys it by (X_filename).
		if dropped := sr.records[i].strings("dropped_headers"); !slices.ContainsFunc(dropped, func(d string) bool { return strings.EqualFold(d, name) }) {
			return fmt.Errorf("the decision record does not log the drop of %s (dropped_headers %v)", name, dropped)
		}
		if !sr.judged {
			return errors.New("the WAF did not judge the rest of the request")
		}
		got, ok := up.received(sr.requestID)
		if !ok {
			return fmt.Errorf("the upstream received no request with X-Request-Id %s", sr.requestID)
		}
		for _, spelling := range []string{name, strings.ReplaceAll(name, "_", "-")} {
			if v, present := got[http.CanonicalHeaderKey(spelling)]; present {
				return fmt.Errorf("the upstream received %s: %q", spelling, v)
			}
			if v, present := got[spelling]; present {
				return fmt.Errorf("the upstream received %s: %q", spelling, v)
			}
		}
		return nil
	}}
}

// checkRefusalBody checks the public body of a refusal: it carries the
// request id, and the reason code when the format has a field for it
// (problem+json's code, the text format's "code:" line).
func checkRefusalBody(sr *stageRun, code string) error {
	_, body, ok := bytes.Cut(sr.resp.raw, []byte("\r\n\r\n"))
	if !ok {
		return errors.New("the response has no body")
	}
	if !bytes.Contains(body, []byte(sr.requestID)) {
		return fmt.Errorf("the refusal body does not carry the request id %s", sr.requestID)
	}
	ct := sr.resp.header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/problem+json"):
		var p struct {
			Code string `json:"code"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			return fmt.Errorf("problem+json body: %v", err)
		}
		if p.Code != code {
			return fmt.Errorf("problem+json code %q, want %q", p.Code, code)
		}
	case strings.HasPrefix(ct, "text/plain"):
		if !bytes.Contains(body, []byte("code: "+code+"\n")) {
			return fmt.Errorf("text body does not say code: %s", code)
		}
	}
	return nil
}
