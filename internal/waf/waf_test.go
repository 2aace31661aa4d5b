package waf

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/warden-gateway/warden/internal/decision"
)

var testClient = netip.MustParseAddr("192.0.2.10")

func newEngine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// browserRequest is a request with the headers a browser sends, so that the
// protocol rules (920xxx) have nothing to say about it.
func browserRequest(method, target string, body io.Reader) *http.Request {
	r := httptest.NewRequest(method, target, body)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	r.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	r.Header.Set("Accept-Language", "en-GB,en;q=0.5")
	if body != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// What the client sent; net/http keeps it in Header on the server side.
		r.Header.Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	return r
}

// inspect runs Inspect with r's own path and query as the canonical ones and
// ends the transaction.
func inspect(t *testing.T, e *Engine, r *http.Request) Verdict {
	t.Helper()
	v, body, err := e.Inspect(RequestFrom(r, "", r.URL.EscapedPath(), r.URL.RawQuery, testClient))
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if _, err := v.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if body != nil {
		body.Close()
	}
	return v
}

func hasRule(v Verdict, prefix string) bool {
	return slices.ContainsFunc(v.Matches, func(m Match) bool {
		return strings.HasPrefix(strconv.Itoa(m.RuleID), prefix)
	})
}

const (
	sqliQuery = "id=1%27%20OR%20%271%27%3D%271" // id=1' OR '1'='1
	xssQuery  = "q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E"
)

func TestAttacksBlockedInBlockModeWithCRSRuleIDs(t *testing.T) {
	e := newEngine(t, Config{})
	for _, tc := range []struct {
		name, target, rulePrefix string
	}{
		{"sqli", "/?" + sqliQuery, "942"},
		{"xss", "/search?" + xssQuery, "941"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := inspect(t, e, browserRequest("GET", tc.target, nil))
			if !v.Blocked || !v.WouldBlock || v.Status != http.StatusForbidden {
				t.Fatalf("verdict %+v: want blocked with 403", v)
			}
			if !hasRule(v, tc.rulePrefix) || !slices.Contains(v.RuleIDs(), 949110) {
				t.Fatalf("rules %v: want a %sxxx rule and 949110", v.RuleIDs(), tc.rulePrefix)
			}
			if v.Score < DefaultInboundThreshold {
				t.Fatalf("score %d below threshold", v.Score)
			}
			d, refused := v.Refusal()
			if !refused || d.Code != decision.WAFBlocked || d.Status != http.StatusForbidden {
				t.Fatalf("refusal %+v", d)
			}
			if strings.Contains(d.Reason, tc.rulePrefix) || !strings.Contains(d.Detail, tc.rulePrefix) {
				t.Fatalf("rule ids must be in Detail (%q) and not in the public reason (%q)", d.Detail, d.Reason)
			}
			for _, m := range v.Matches {
				if m.RuleID == 0 || m.ErrorLog == "" || !strings.Contains(m.ErrorLog, `[id "`+strconv.Itoa(m.RuleID)+`"]`) {
					t.Fatalf("match %+v lacks its ErrorLog line", m)
				}
			}
		})
	}
}

func TestAttacksPassInDetectModeWithWouldBlock(t *testing.T) {
	e := newEngine(t, Config{Mode: ModeDetect})
	for _, target := range []string{"/?" + sqliQuery, "/search?" + xssQuery} {
		v := inspect(t, e, browserRequest("GET", target, nil))
		if v.Blocked || !v.WouldBlock {
			t.Fatalf("%s: verdict %+v: want not blocked, would block", target, v)
		}
		if !slices.Contains(v.RuleIDs(), 949110) || v.Score < DefaultInboundThreshold {
			t.Fatalf("%s: rules %v score %d", target, v.RuleIDs(), v.Score)
		}
		if _, refused := v.Refusal(); refused {
			t.Fatalf("%s: detect mode refused", target)
		}
		if !strings.Contains(v.Detail(), "would block") {
			t.Fatalf("detail %q does not say would block", v.Detail())
		}
	}
}

func TestBenignRequestsPass(t *testing.T) {
	e := newEngine(t, Config{})
	for _, r := range []*http.Request{
		browserRequest("GET", "/articles/2024/hello-world?page=2&sort=date", nil),
		browserRequest("POST", "/account/profile", strings.NewReader("name=Ada+Lovelace&email=ada%40example.org&bio=Mathematician+and+writer.")),
	} {
		v := inspect(t, e, r)
		if !v.Inspected || v.Blocked || v.WouldBlock || v.Score != 0 {
			t.Fatalf("%s %s: verdict %+v, rules %v", r.Method, r.URL, v, v.RuleIDs())
		}
	}
}

func TestRouteTuningExcludesOnlyOnItsRoute(t *testing.T) {
	// id=1' OR '1'='1 matches only 942100 at paranoia 1 (score 5 = threshold).
	attack := func(path, arg string) *http.Request {
		return browserRequest("GET", path+"?"+arg+"=1%27%20OR%20%271%27%3D%271", nil)
	}
	base := inspect(t, newEngine(t, Config{}), attack("/search", "id"))
	if !base.Blocked || !slices.Contains(base.RuleIDs(), 942100) {
		t.Fatalf("the untuned attack must be blocked by 942100: %v", base.RuleIDs())
	}
	for _, tc := range []struct {
		name   string
		tuning RouteTuning
		// stillBlocked are requests the tuning must not let through.
		stillBlocked []*http.Request
	}{
		{"rule id", RouteTuning{PathPrefix: "/search", RemoveRuleIDs: []int{942100}},
			[]*http.Request{attack("/other", "id"), attack("/searchx", "id"), attack("/", "id")}},
		{"tag", RouteTuning{PathPrefix: "/search", RemoveTags: []string{"attack-sqli"}},
			[]*http.Request{attack("/other", "id"), attack("/searchx", "id")}},
		{"target", RouteTuning{PathPrefix: "/search", RemoveTargets: []TargetExclusion{{RuleID: 942100, Target: "ARGS:id"}}},
			[]*http.Request{attack("/other", "id"), attack("/search", "q")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, Config{Routes: []RouteTuning{tc.tuning}})
			for _, path := range []string{"/search", "/search/deeper"} {
				if v := inspect(t, e, attack(path, "id")); v.Blocked || slices.Contains(v.RuleIDs(), 942100) {
					t.Fatalf("%s: still blocked after exclusion: %v", path, v.RuleIDs())
				}
			}
			for _, r := range tc.stillBlocked {
				if v := inspect(t, e, r); !v.Blocked || !slices.Contains(v.RuleIDs(), 942100) {
					t.Fatalf("%s: the exclusion leaked beyond its route/target: %v", r.URL, v.RuleIDs())
				}
			}
		})
	}
}

func TestRouteTuningKeysOnTheCanonicalPathGiven(t *testing.T) {
	e := newEngine(t, Config{Routes: []RouteTuning{{PathPrefix: "/search", RemoveRuleIDs: []int{942100}}}})
	// r.URL says /search; the canonical path warden judged says /admin.
	r := browserRequest("GET", "/search?"+sqliQuery, nil)
	v, _, err := e.Inspect(RequestFrom(r, "", "/admin", sqliQuery, testClient))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Blocked {
		t.Fatalf("tuning for /search applied to canonical /admin: %v", v.RuleIDs())
	}
	// And the query judged is the one given, not r.URL's (a front end with
	// no raw target to give).
	req := RequestFrom(browserRequest("GET", "/x?"+sqliQuery, nil), "", "/x", "id=42", testClient)
	req.RawTarget = ""
	v, _, err = e.Inspect(req)
	if err != nil {
		t.Fatal(err)
	}
	if v.Blocked || v.Score != 0 {
		t.Fatalf("judged r.URL's query instead of the canonical one: %v", v.RuleIDs())
	}
}

func TestRouteOffSkipsInspectionAndStreamsBody(t *testing.T) {
	e := newEngine(t, Config{Routes: []RouteTuning{{PathPrefix: "/upload/", Off: true}}})
	r := browserRequest("POST", "/upload/file?"+sqliQuery, strings.NewReader("x=<script>alert(1)</script>"))
	original := r.Body
	v, body, err := e.Inspect(RequestFrom(r, "", "/upload/file", sqliQuery, testClient))
	if err != nil {
		t.Fatal(err)
	}
	if v.Inspected || v.Blocked || len(v.Matches) != 0 {
		t.Fatalf("route with the WAF off was inspected: %+v", v)
	}
	if body != original {
		t.Fatal("route with the WAF off must hand back r.Body itself, unread")
	}
	if v := inspect(t, e, browserRequest("GET", "/uploadx?"+sqliQuery, nil)); !v.Blocked {
		t.Fatal("the off switch leaked to /uploadx")
	}
}

func TestBodyOverLimit(t *testing.T) {
	const limit = 64
	attackBody := "comment=" + strings.Repeat("a", limit) + "&x=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
	for _, chunked := range []bool{false, true} {
		name := "content-length"
		if chunked {
			name = "chunked"
		}
		t.Run(name, func(t *testing.T) {
			newReq := func() *http.Request {
				r := browserRequest("POST", "/comments", strings.NewReader(attackBody))
				if chunked {
					r.ContentLength = -1
					r.Header.Del("Content-Length")
					r.TransferEncoding = []string{"chunked"}
				}
				return r
			}

			reject := newEngine(t, Config{BodyLimit: limit})
			v := inspect(t, reject, newReq())
			d, refused := v.Refusal()
			if !v.TooLarge || !refused || d.Code != decision.BadRequest || d.Reason != "request body too large to inspect" {
				t.Fatalf("reject: verdict %+v refusal %+v", v, d)
			}

			pass := newEngine(t, Config{BodyLimit: limit, BodyOverLimit: BodyOverLimitPass})
			v, body, err := pass.Inspect(RequestFrom(newReq(), "", "/comments", "", testClient))
			if err != nil {
				t.Fatal(err)
			}
			if v.TooLarge || !v.BodyUninspected || v.Blocked {
				t.Fatalf("pass: verdict %+v (rules %v)", v, v.RuleIDs())
			}
			forwarded, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			if string(forwarded) != attackBody {
				t.Fatalf("pass: forwarded %d bytes, want the whole %d-byte body", len(forwarded), len(attackBody))
			}

			// Under the limit the same engine inspects, and blocks, the body.
			small := browserRequest("POST", "/comments", strings.NewReader("x=%3Cscript%3Ealert(1)%3C%2Fscript%3E"))
			if v := inspect(t, pass, small); !v.Blocked || !hasRule(v, "941") {
				t.Fatalf("a body within the limit was not inspected: %v", v.RuleIDs())
			}
		})
	}
}

func TestBodyForwardedIsTheBodyInspected(t *testing.T) {
	// A rule that logs the whole request body as Coraza saw it.
	e := newEngine(t, Config{Mode: ModeDetect, Directives: `SecRule REQUEST_BODY "@rx ^" "id:10001,phase:2,pass,log,msg:'body seen',logdata:'%{MATCHED_VAR}'"`})

	var mu sync.Mutex
	var upstreamGot []byte
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		upstreamGot = b
		mu.Unlock()
	}))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)

	var inspected string
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, body, err := e.Inspect(RequestFrom(r, "", r.URL.EscapedPath(), r.URL.RawQuery, testClient))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, m := range v.Matches {
			if m.RuleID == 10001 {
				inspected = m.Data
			}
		}
		r.Body = body
		proxy.ServeHTTP(v.WrapResponse(w), r)
		if _, err := v.Finish(); err != nil {
			t.Error(err)
		}
	}))
	defer front.Close()

	var sent bytes.Buffer
	sent.WriteString("a=1&b=")
	for i := 1; i < 256; i++ { // every byte value but NUL, some of them raw
		if i != '&' && i != '=' {
			sent.WriteByte(byte(i))
		}
	}
	sent.WriteString("&c=" + strings.Repeat("xyz", 3000))
	resp, err := http.Post(front.URL+"/form", "application/x-www-form-urlencoded", bytes.NewReader(sent.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(upstreamGot, sent.Bytes()) {
		t.Fatalf("upstream got %d bytes, client sent %d", len(upstreamGot), sent.Len())
	}
	if inspected != sent.String() {
		t.Fatalf("WAF inspected %d bytes, upstream got %d", len(inspected), len(upstreamGot))
	}
}

func TestNetHTTPHeadersGivenBackToCoraza(t *testing.T) {
	e := newEngine(t, Config{Mode: ModeDetect})
	// 920280: missing Host header; Inspect must add r.Host back, so a
	// request with a Host does not trip it.
	r := browserRequest("GET", "/", nil)
	if v := inspect(t, e, r); slices.Contains(v.RuleIDs(), 920280) {
		t.Fatalf("Host present but 920280 fired: %v", v.RuleIDs())
	}
	r = browserRequest("GET", "/", nil)
	r.Host = ""
	if v := inspect(t, e, r); !slices.Contains(v.RuleIDs(), 920280) {
		t.Fatalf("Host missing but 920280 silent: %v", v.RuleIDs())
	}
	// 920171: GET with Transfer-Encoding, which net/http keeps out of Header.
	r = browserRequest("GET", "/", nil)
	r.TransferEncoding = []string{"chunked"}
	if v := inspect(t, e, r); !slices.Contains(v.RuleIDs(), 920171) {
		t.Fatalf("GET with Transfer-Encoding but 920171 silent: %v", v.RuleIDs())
	}
}

func TestRequestIDBecomesTransactionID(t *testing.T) {
	e := newEngine(t, Config{})
	r := browserRequest("GET", "/?"+sqliQuery, nil)
	v, _, err := e.Inspect(RequestFrom(r, "req-7f3a", r.URL.EscapedPath(), r.URL.RawQuery, testClient))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Finish()
	if v.TransactionID != "req-7f3a" || len(v.Matches) == 0 {
		t.Fatalf("transaction id %q, %d matches", v.TransactionID, len(v.Matches))
	}
	for _, m := range v.Matches {
		if !strings.Contains(m.ErrorLog, `[unique_id "req-7f3a"]`) {
			t.Fatalf("ErrorLog without the request id: %s", m.ErrorLog)
		}
	}
}

func TestResponseInspection(t *testing.T) {
	leak := "Warning: mysql_fetch_array() expects parameter 1 to be resource, boolean given in /var/www/list.php on line 12\n" +
		"You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near ''' at line 1"
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("X-Upstream", "yes")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, leak)
	})
	serve := func(e *Engine) (*httptest.ResponseRecorder, ResponseVerdict) {
		r := browserRequest("GET", "/list", nil)
		v, _, err := e.Inspect(RequestFrom(r, "", "/list", "", testClient))
		if err != nil || v.Blocked {
			t.Fatalf("request refused: %v %+v", err, v)
		}
		rec := httptest.NewRecorder()
		upstream.ServeHTTP(v.WrapResponse(rec), r)
		rv, err := v.Finish()
		if err != nil {
			t.Fatal(err)
		}
		return rec, rv
	}

	rec, rv := serve(newEngine(t, Config{ResponseInspection: true}))
	if !rv.Blocked || !rv.WouldBlock || rv.Score < DefaultOutboundThreshold {
		t.Fatalf("block mode: response verdict %+v", rv)
	}
	if !slices.ContainsFunc(rv.Matches, func(m Match) bool { return m.RuleID >= 950000 && m.RuleID < 960000 }) {
		t.Fatalf("no response rule matched: %+v", rv.Matches)
	}
	if rec.Body.Len() != 0 || rec.Header().Get("X-Upstream") != "" || rec.Code != http.StatusOK /* recorder default: nothing written */ || rec.Flushed {
		t.Fatalf("a blocked response leaked: code %d headers %v body %q", rec.Code, rec.Header(), rec.Body.String())
	}
	if d, refused := rv.Refusal(); !refused || d.Code != decision.WAFBlocked {
		t.Fatalf("refusal %+v", d)
	}

	rec, rv = serve(newEngine(t, Config{ResponseInspection: true, Mode: ModeDetect}))
	if rv.Blocked || !rv.WouldBlock {
		t.Fatalf("detect mode: response verdict %+v", rv)
	}
	if rec.Body.String() != leak || rec.Header().Get("X-Upstream") != "yes" {
		t.Fatalf("detect mode: response not passed on: %d %q", rec.Code, rec.Body.String())
	}

	// Off by default: the writer is the caller's own and nothing is held.
	e := newEngine(t, Config{})
	r := browserRequest("GET", "/list", nil)
	v, _, err := e.Inspect(RequestFrom(r, "", "/list", "", testClient))
	if err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	if w := v.WrapResponse(rec); w != http.ResponseWriter(rec) {
		t.Fatal("response inspection off, yet the writer was wrapped")
	}
	if rv, _ := v.Finish(); rv.Blocked || len(rv.Matches) != 0 {
		t.Fatalf("response inspection off, yet verdict %+v", rv)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"directive syntax", Config{Directives: "SecRuleRemoveById 942100\n\nSecRule ARGS \"@rx a\" \\\n  \"id:10002,phase:2,pass,bogus\""},
			[]string{"directives line 3", `invalid action "bogus"`}},
		{"unknown directive", Config{Directives: "# tuning\nSecRuel ARGS"},
			[]string{"directives line 2", `unknown directive "secruel"`}},
		{"setup directive", Config{SetupDirectives: "SecAction \"id:900100,phase:1,pass,setvar:tx.x=1,nonsense\""},
			[]string{"setup directives line 1", "nonsense"}},
		{"duplicate id", Config{Directives: `SecAction "id:942100,phase:1,pass,nolog"`},
			[]string{"directives line 1", "942100"}},
		{"unknown rule id", Config{Routes: []RouteTuning{{PathPrefix: "/a", RemoveRuleIDs: []int{942999}}}},
			[]string{`route "/a"`, "942999", "no such rule"}},
		{"unknown tag", Config{Routes: []RouteTuning{{PathPrefix: "/a", RemoveTags: []string{"attack-nothing"}}}},
			[]string{`route "/a"`, "attack-nothing"}},
		{"bad target", Config{Routes: []RouteTuning{{PathPrefix: "/a", RemoveTargets: []TargetExclusion{{RuleID: 942100, Target: "PARAMS:id"}}}}},
			[]string{`route "/a"`, "PARAMS"}},
		{"target of unknown rule", Config{Routes: []RouteTuning{{PathPrefix: "/a", RemoveTargets: []TargetExclusion{{RuleID: 1234567, Target: "ARGS:id"}}}}},
			[]string{`route "/a"`, "1234567"}},
		{"target with comma", Config{Routes: []RouteTuning{{PathPrefix: "/a", RemoveTargets: []TargetExclusion{{RuleID: 942100, Target: "ARGS:a,ctl:ruleEngine=Off"}}}}},
			[]string{`route "/a"`, "comma"}},
		{"prefix with quote", Config{Routes: []RouteTuning{{PathPrefix: `/a" "id:1`}}},
			[]string{"route 1", "path prefix"}},
		{"relative prefix", Config{Routes: []RouteTuning{{PathPrefix: "api"}}},
			[]string{"must start with /"}},
		{"mode", Config{Mode: "log"}, []string{`mode "log"`}},
		{"paranoia", Config{ParanoiaLevel: 5}, []string{"paranoia level 5"}},
		{"body over limit", Config{BodyOverLimit: "drop"}, []string{`"drop"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil {
				t.Fatal("New accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestDirectivesApplyAfterCRS(t *testing.T) {
	// Raw SecLang can remove a CRS rule (it is loaded after the CRS).
	e := newEngine(t, Config{Directives: "SecRuleRemoveById 942100"})
	if v := inspect(t, e, browserRequest("GET", "/?"+sqliQuery, nil)); v.Blocked {
		t.Fatalf("SecRuleRemoveById 942100 ignored: %v", v.RuleIDs())
	}
	// Paranoia and thresholds reach the CRS.
	strict := newEngine(t, Config{InboundThreshold: 1000})
	if v := inspect(t, strict, browserRequest("GET", "/?"+sqliQuery, nil)); v.Blocked || v.WouldBlock || v.Score < 5 {
		t.Fatalf("threshold 1000: %+v", v)
	}
	if !strings.Contains(strict.Directives(), "tx.inbound_anomaly_score_threshold=1000") {
		t.Fatal("Directives() does not show the threshold")
	}
}

// TestEngineKeepsRxPreFilterOff: Coraza v3.8.1's SecRxPreFilter skips @rx
// rules that would have matched (942220 on this PHP strtod value, 932311 on
// an IMAP STORE injection; both CRS regression tests fail with it on), so the
// engine must not turn it on, and the value must be refused by 942220.
func TestEngineKeepsRxPreFilterOff(t *testing.T) {
	e := newEngine(t, Config{})
	if strings.Contains(e.Directives(), "SecRxPreFilter On") {
		t.Fatal("the engine turns on SecRxPreFilter, which misses CRS attacks in Coraza v3.8.1")
	}
	v := inspect(t, e, browserRequest("GET", "/get?i=2.2250738585072011e-308", nil))
	if !slices.Contains(v.RuleIDs(), 942220) {
		t.Fatalf("rules %v: want 942220", v.RuleIDs())
	}
}
