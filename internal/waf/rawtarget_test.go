package waf

import (
	"slices"
	"strings"
	"testing"
)

// inspectTarget judges a browser-like GET whose raw target is raw and whose
// canonical path and query (what warden's canonicalizer made of it) are
// path and query. raw "" hands over no raw target at all.
func inspectTarget(t *testing.T, e *Engine, raw, path, query string) Verdict {
	t.Helper()
	r := browserRequest("GET", "/", nil)
	req := RequestFrom(r, "", path, query, testClient)
	req.RawTarget = raw
	v, body, err := e.Inspect(req)
	if err != nil {
		t.Fatalf("Inspect(%q): %v", raw, err)
	}
	body.Close()
	if _, err := v.Finish(); err != nil {
		t.Fatal(err)
	}
	return v
}

// Issue 10: the canonicalizer merges "//", so /get/https://evil.example/
// became /get/https:/evil.example/ and CRS's remote file inclusion rule
// 931131 (paranoia 2: a URL scheme in REQUEST_FILENAME) found nothing,
// where Coraza's own middleware blocks it. The raw target is what CRS
// judges now. Each case also checks the canonical form alone, to show the
// blind spot is real (the test would pass without the raw target
// otherwise).
func TestRawTargetIsJudgedAtParanoia2(t *testing.T) {
	e := newEngine(t, Config{ParanoiaLevel: 2})
	for _, c := range []struct {
		name, raw, path, query string
		rule                   int
	}{
		{"merged slashes hide an https URL", "/get/https://evil.example/", "/get/https:/evil.example/", "", 931131},
		{"merged slashes hide an ftp URL", "/get/ftp://evil.example/shell.txt", "/get/ftp:/evil.example/shell.txt", "", 931131},
		{"file URL with three slashes", "/get/file:///etc/passwd", "/get/file:/etc/passwd", "", 931131},
		{"encoded colon, then slashes", "/get/http%3A//evil.example/x.txt", "/get/http:/evil.example/x.txt", "", 931131},
		{"dot segments resolved away", "/static/./../etc/passwd", "/etc/passwd", "", 930110},
		{"encoded dot segments resolved away", "/static/%2e%2e/etc/passwd", "/etc/passwd", "", 930100},
		{"doubled slashes and dot segments", "/a//b/../../etc/passwd", "/etc/passwd", "", 930110},
		{"an RFI argument, query judged as sent", "/include?file=https://evil.example/x", "/include", "file=https://evil.example/x", 931130},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := inspectTarget(t, e, c.raw, c.path, c.query)
			if !v.Blocked || !slices.Contains(v.RuleIDs(), c.rule) {
				t.Errorf("raw %q: blocked=%v rules %v, want blocked by %d", c.raw, v.Blocked, v.RuleIDs(), c.rule)
			}
			if m := v.Matches[slices.IndexFunc(v.Matches, func(m Match) bool { return m.RuleID == c.rule })]; m.Canonical {
				t.Errorf("raw %q: %d reported as matched on the canonical target", c.raw, c.rule)
			}
			if c.query != "" {
				return // the query is the same in both forms: nothing hidden
			}
			if canon := inspectTarget(t, e, "", c.path, c.query); slices.Contains(canon.RuleIDs(), c.rule) {
				t.Errorf("canonical %q alone matches %d too: the case does not show what the raw target adds", c.path, c.rule)
			}
		})
	}
	// Controls: the same shapes without an attack pass, raw or canonical.
	for _, c := range [][2]string{
		{"/static//css/site.css", "/static/css/site.css"},
		{"/docs/./guide/index.html", "/docs/guide/index.html"},
		{"/caf%C3%A9//menu", "/caf%C3%A9/menu"},
		{"/a%20b/c", "/a%20b/c"},
	} {
		if v := inspectTarget(t, e, c[0], c[1], ""); v.Blocked || v.Score != 0 {
			t.Errorf("benign raw %q (canonical %q): blocked=%v score %d %v", c[0], c[1], v.Blocked, v.Score, v.RuleIDs())
		}
	}
}

// The canonical form is judged too when it differs: a rule that only the
// canonical target matches still counts, and is marked as such.
func TestCanonicalTargetIsJudgedToo(t *testing.T) {
	const rule = `SecRule REQUEST_FILENAME "@streq /admin/export" "id:1001,phase:1,deny,status:403,log,msg:'canonical only'"`
	e := newEngine(t, Config{Directives: rule})
	v := inspectTarget(t, e, "/admin//export", "/admin/export", "")
	i := slices.IndexFunc(v.Matches, func(m Match) bool { return m.RuleID == 1001 })
	if !v.Blocked || i < 0 {
		t.Fatalf("rule on the canonical path: blocked=%v rules %v", v.Blocked, v.RuleIDs())
	}
	if !v.Matches[i].Canonical || !strings.Contains(v.Detail(), `1001 "canonical only" in REQUEST_FILENAME (canonical target)`) {
		t.Errorf("the match is not marked as the canonical target's: %+v / %s", v.Matches[i], v.Detail())
	}

	// Detect mode: would block, does not.
	d := newEngine(t, Config{Mode: ModeDetect, Directives: rule})
	if v := inspectTarget(t, d, "/admin//export", "/admin/export", ""); v.Blocked || !v.WouldBlock || !slices.Contains(v.RuleIDs(), 1001) {
		t.Errorf("detect mode: blocked=%v wouldBlock=%v %v", v.Blocked, v.WouldBlock, v.RuleIDs())
	}

	// A rule both forms match is reported once.
	both := newEngine(t, Config{Directives: `SecRule REQUEST_HEADERS:User-Agent "@contains Firefox" "id:1002,phase:1,pass,log,msg:'seen'"`})
	v = inspectTarget(t, both, "/a//b", "/a/b", "")
	if n := len(slices.DeleteFunc(slices.Clone(v.RuleIDs()), func(id int) bool { return id != 1002 })); n != 1 {
		t.Errorf("rule 1002 reported %d times, want once: %v", n, v.RuleIDs())
	}
}

// Route tuning keys on the canonical path, never on the raw one: a client
// can neither dodge a route's tuning nor borrow another route's by
// spelling the path differently.
func TestRouteTuningKeysOnCanonicalNotRawPath(t *testing.T) {
	e := newEngine(t, Config{ParanoiaLevel: 2, Routes: []RouteTuning{
		{PathPrefix: "/proxy/", RemoveRuleIDs: []int{931131}},
	}})
	// The tuned route, spelled with doubled slashes: canonical /proxy/...,
	// so the tuning applies.
	if v := inspectTarget(t, e, "//proxy//https://partner.example/feed", "/proxy/https:/partner.example/feed", ""); slices.Contains(v.RuleIDs(), 931131) {
		t.Errorf("tuning for /proxy/ did not apply to raw //proxy//...: %v", v.RuleIDs())
	}
	// A raw path that starts with the tuned prefix but resolves elsewhere
	// does not borrow its tuning.
	v := inspectTarget(t, e, "/proxy/../get/https://evil.example/", "/get/https:/evil.example/", "")
	if !v.Blocked || !slices.Contains(v.RuleIDs(), 931131) {
		t.Errorf("raw /proxy/../get/... borrowed /proxy/'s tuning: blocked=%v %v", v.Blocked, v.RuleIDs())
	}
	if !strings.Contains(e.Directives(), "SecRule TX:warden_canonical_path \"@beginsWith /proxy/\"") {
		t.Errorf("route rule not keyed on TX:warden_canonical_path:\n%s", e.Directives())
	}
}

func TestRequestFromTakesTheRawTargetAsSent(t *testing.T) {
	r := browserRequest("GET", "/get/https://evil.example/?a=1", nil)
	req := RequestFrom(r, "id", "/get/https:/evil.example/", "a=1", testClient)
	if req.RawTarget != "/get/https://evil.example/?a=1" {
		t.Errorf("RawTarget = %q, want the request line's target", req.RawTarget)
	}
}
