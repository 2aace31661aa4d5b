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

// frontEndExclusion is a test that passes against warden's WAF engine but
// not through warden, because warden's front end handles the request before
// (or instead of) the WAF. The runner still sends it, and then checks that
// the test fails, that it passes against the bare engine, and that verify
// finds the stated cause on the failing stage. An exclusion that no longer
// applies fails the suite, so this list stays honest.
type frontEndExclusion struct {
	reason string
	verify func(sr *stageRun, up *echoUpstream) error
}

// wardenExclusions are the exclusions beyond Coraza's own lists.
//
// warden makes every request target canonical before any check runs (see
// internal/canonical): a path with no single safe meaning is refused with
// 400 bad_request, and an accepted path is decoded and normalized once. The
// WAF then judges the canonical request line, the very one the upstream
// receives. A few CRS tests put their attack in the raw path itself, so they
// see warden's refusal (and no WAF at all) or a normalized path that no
// longer holds the attack. Before that, warden refuses a request whose
// framing is ambiguous (the request smuggling shapes, such as Content-Length
// with Transfer-Encoding), and it drops every header whose name
// holds '_' before any rule (CGI, PHP and WSGI read X_Filename as
// X-Filename, so such a header could pose as one warden sets or strips), so
// neither the WAF nor the upstream sees it. warden is not weakened to let
// any of these through.
var wardenExclusions = map[string]frontEndExclusion{
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
	"920100-16": forwardedAs("/",
		"absolute-form target without a path (GET http://localhost HTTP/1.1): warden forwards, and the WAF judges, the origin-form GET / HTTP/1.1, which 920100 has nothing against"),
	"931131-2": forwardedAs("/get/https:/example.com/",
		"repeated slashes in the path (/get/https://example.com/): warden merges them, so the upstream receives, and the WAF judges, /get/https:/example.com/, which holds no URL for 931131 to find"),
}

// refusedBeforeWAF: warden answered 400 bad_request (to the client and in
// its decision log, with a reason saying why) before it had a canonical
// request, so the WAF never saw the request.
func refusedBeforeWAF(reason, why string) frontEndExclusion {
	return frontEndExclusion{reason: reason, verify: func(sr *stageRun, _ *echoUpstream) error {
		if sr.sendErr != nil {
			return fmt.Errorf("no response: %v", sr.sendErr)
		}
		if sr.resp.status != 400 {
			return fmt.Errorf("warden answered %d, not 400", sr.resp.status)
		}
		if sr.requestID == "" {
			return errors.New("the 400 carries no X-Request-Id, so it is not warden's refusal")
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

// forwardedAs: warden accepted the request and forwarded it under the
// canonical path want, which differs from the raw request target.
func forwardedAs(want, reason string) frontEndExclusion {
	return frontEndExclusion{reason: reason, verify: func(sr *stageRun, _ *echoUpstream) error {
		if sr.sendErr != nil {
			return fmt.Errorf("no response: %v", sr.sendErr)
		}
		if sr.resp.status != 200 {
			return fmt.Errorf("warden answered %d, not 200 from the upstream", sr.resp.status)
		}
		rawPath, err := requestPath(sr.raw)
		if err != nil {
			return err
		}
		if rawPath == want {
			return fmt.Errorf("the raw target's path is %q already: warden changed nothing", rawPath)
		}
		for _, r := range sr.records {
			if r.msg == "decision" && r.str("action") == "allow" {
				if got := r.str("path"); got != want {
					return fmt.Errorf("decision log: warden forwarded path %q, want %q", got, want)
				}
				return nil
			}
		}
		return errors.New("the decision log holds no allow decision for the request")
	}}
}

// headerDropped: the client sent header name, warden served the request,
// and the upstream received it without that header (in either spelling).
func headerDropped(name, reason string) frontEndExclusion {
	return frontEndExclusion{reason: reason, verify: func(sr *stageRun, up *echoUpstream) error {
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
		if !slices.ContainsFunc(sr.records, func(r logRecord) bool { return r.msg == "decision" && r.str("action") == "allow" }) {
			return errors.New("the decision log holds no allow decision for the request")
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

// requestPath is the path part of the request target in a raw request.
func requestPath(raw []byte) (string, error) {
	line, _, _ := bytes.Cut(raw, []byte("\r\n"))
	parts := strings.Split(string(line), " ")
	if len(parts) < 2 {
		return "", fmt.Errorf("request line %q has no target", line)
	}
	target := parts[1]
	if i := strings.Index(target, "://"); i >= 0 && !strings.HasPrefix(target, "/") {
		rest := target[i+3:]
		j := strings.IndexAny(rest, "/?")
		if j < 0 {
			return "", nil // authority only: no path at all
		}
		target = rest[j:]
	}
	path, _, _ := strings.Cut(target, "?")
	return path, nil
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
