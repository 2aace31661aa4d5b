package crs

// TestCRSRegressionSuite runs the OWASP CRS v4.25.0 regression suite twice
// in one run: against Coraza's own net/http middleware as Coraza's CRS
// harness serves it (the baseline), then against a real warden server built
// from a YAML config, in front of a real echo upstream, judged by the rule
// ids in warden's decision log. Coraza's ignore list and overrides apply to
// both runs, unchanged. A test counts as passed through warden only when an
// expectation was checked: the WAF judged every stage and go-ftw's checks
// held (as Coraza judges it), or the test is on wardenExpectations
// (expectations_test.go) and what warden does instead was asserted.
// warden's count must match or exceed Coraza's, and every test Coraza passes
// must pass through warden in one of those two ways.

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/waf"
)

// crsSetupDirectives is the test-only block of Coraza's CRS run
// (testing/coreruleset, see the suite's README), loaded before the CRS. The
// SecDefaultAction lines for phases 3-5 of that block are part of every
// warden engine already (see waf.engineDirectives), verbatim.
const crsSetupDirectives = `SecResponseBodyMimeType text/plain
SecAction "id:900005,\
  phase:1,\
  nolog,\
  pass,\
  ctl:ruleEngine=DetectionOnly,\
  ctl:ruleRemoveById=910000,\
  setvar:tx.blocking_paranoia_level=4,\
  setvar:tx.crs_validate_utf8_encoding=1,\
  setvar:tx.arg_name_length=100,\
  setvar:tx.arg_length=400,\
  setvar:tx.total_arg_length=64000,\
  setvar:tx.max_num_args=255,\
  setvar:tx.max_file_size=64100,\
  setvar:tx.combined_file_sizes=65535"
# go-ftw's marker: logged, and the marker request triggers nothing else.
SecRule REQUEST_HEADERS:X-CRS-Test "@rx ^.*$" \
  "id:999999,\
  phase:1,\
  log,\
  msg:'X-CRS-Test %{MATCHED_VAR}',\
  pass,\
  t:none,\
  ctl:ruleRemoveById=1-999999"
`

// wardenCRSConfig is Coraza's CRS test setup as a warden config: the WAF in
// detection mode at paranoia 4 with the setup block above, response
// inspection on, coraza.conf-recommended's body limit and action, and one
// upstream for every path. Every decision is logged (log.decisions: all), so
// the runner can check what warden decided about any request, not only
// about the refused ones.
var wardenCRSConfig = `
log:
  decisions: all
handle:
  - path: /
    upstream: "{{UPSTREAM}}"
waf:
  mode: detect
  paranoia_level: 4
  response_inspection: true
  body_limit: 13107200
  body_over_limit: reject
  setup_directives: |
` + indentedSetup

var indentedSetup = "    " + strings.ReplaceAll(strings.TrimRight(crsSetupDirectives, "\n"), "\n", "\n    ") + "\n"

// engineCRSConfig is the same WAF settings as a waf.Config, for the run
// against the bare engine.
func engineCRSConfig() waf.Config {
	return waf.Config{
		Mode:               waf.ModeDetect,
		ParanoiaLevel:      4,
		ResponseInspection: true,
		BodyLimit:          13107200,
		BodyOverLimit:      waf.BodyOverLimitReject,
		SetupDirectives:    crsSetupDirectives,
	}
}

// crsIgnored is Coraza's .ftw.yml ignore list as the README gives it: tests
// not run at all, because Go's net/http answers before any handler runs.
var crsIgnored = map[string]string{
	"920100-4": "valid CONNECT 1.2.3.4:80: the Go stack answers 404, the WAF is never reached",
	"920100-5": "CONNECT without port: the Go stack answers 404 where the test expects 400; WAF not reached",
	"920280-3": "HTTP/0.9 request line: Go's server answers 505 itself, the test expects 400",
	"920430-3": "HTTP/0.9 request line: Go answers 505, the test expects 400",
	"920430-5": "request line without version: the test expects a transport error; Go sends an error response and the WAF never sees the request",
	"920430-9": "HTTP/0.8 request line: Go answers 505, the test expects 400",
	"920610-2": "raw #fragment in the request target: Apache answers 400, Go accepts it and answers 200",
}

// crsOverride replaces the whole output of a test's stages, like a go-ftw
// platform override.
type crsOverride struct {
	reason string
	output ftwOutput
}

// crsOverrides is Coraza's .ftw-overrides.yml as the README gives it.
var crsOverrides = func() map[string]crsOverride {
	m := map[string]crsOverride{
		"920100-8": {"Apache rejects a colon in the path; Go and the RFC allow it",
			ftwOutput{Status: 200, Log: ftwLog{NoExpectIDs: []int{920100}}}},
		"920270-4": {"Host: localhost%00: the rule fires, Apache answers 400 where Go answers 200",
			ftwOutput{Log: ftwLog{ExpectIDs: []int{920270}}}},
		"920274-1": {"Host: localhost%1F: the rule fires, Apache answers 400 where Go answers 200",
			ftwOutput{Log: ftwLog{ExpectIDs: []int{920274}}}},
		"920430-8": {"HTTP/4.0: Go answers 505 before any handler runs",
			ftwOutput{Status: 505, Log: ftwLog{NoExpectIDs: []int{920430}}}},
		"920620-1": {"two Content-Type headers: Apache merges them, Go keeps both, so the rule fires",
			ftwOutput{Log: ftwLog{ExpectIDs: []int{920620}}}},
		"922130-4": {"Coraza's multipart parser accepts this header, then the CRS rule catches it",
			ftwOutput{Log: ftwLog{ExpectIDs: []int{922130}}}},
	}
	for _, id := range []string{"920290-1", "920290-4"} {
		m[id] = crsOverride{"Go moves Host into Request.Host and Coraza's adapter re-adds it only when non-empty, so CRS sees a missing Host (920280), not an empty one (920290)",
			ftwOutput{Log: ftwLog{ExpectIDs: []int{920280}}}}
	}
	for _, id := range []string{"922130-1", "922130-2", "922130-7"} {
		m[id] = crsOverride{"Coraza's multipart parser raises MULTIPART_STRICT_ERROR (rule 200003) at parse time",
			ftwOutput{Log: ftwLog{ExpectIDs: []int{200003}}}}
	}
	for _, id := range []string{"922130-3", "922130-5", "922130-6"} {
		m[id] = crsOverride{"valid multipart bodies: none of 200002, 200003, 922130 may fire (stricter than upstream)",
			ftwOutput{Log: ftwLog{NoExpectIDs: []int{200002, 200003, 922130}}}}
	}
	return m
}()

// crsParallel requests are in flight at once.
const crsParallel = 8

type ftwCase struct {
	name string // "<rule>-<test>"
	test ftwTest
}

// caseResult is one test's outcome.
type caseResult struct {
	name       string
	ignored    bool
	overridden bool
	failure    string    // go-ftw's verdict: "" when every stage passed its checks
	failed     *stageRun // the stage that failed
	last       *stageRun // the last stage run
	// judged: the WAF judged every stage run; notJudged is the first stage
	// it did not judge (1-based, 0 when judged).
	judged    bool
	notJudged int
	// outcome and problem are set by classify: outcome is how the test
	// passed ("judged", or "asserted: " and the expectation's kind), problem
	// why it did not.
	outcome, problem string
}

func (r caseResult) passed() bool { return !r.ignored && r.problem == "" }

func loadCases(t testing.TB) ([]ftwCase, int) {
	t.Helper()
	files, err := loadFTWFiles(crsTestFiles()...)
	if err != nil {
		t.Fatal(err)
	}
	// 920539.yaml holds only comments: 318 of the 319 files decode to tests.
	if len(files) != crsSuiteFiles-1 {
		t.Fatalf("loaded %d CRS test files with tests, want %d (of %d files)", len(files), crsSuiteFiles-1, crsSuiteFiles)
	}
	var cases []ftwCase
	for _, f := range files {
		for i, tc := range f.Tests {
			id := tc.TestID
			if id == 0 {
				id = i + 1
			}
			cases = append(cases, ftwCase{name: fmt.Sprintf("%d-%d", f.RuleID, id), test: tc})
		}
	}
	if len(cases) != crsSuiteTests {
		t.Fatalf("loaded %d CRS tests, want %d", len(cases), crsSuiteTests)
	}
	return cases, len(files)
}

// runCase runs a test's stages in order, with Coraza's ignore list and
// overrides applied; the first failing stage decides, as in go-ftw.
func runCase(ws *serverUnderTest, c ftwCase) caseResult {
	res := caseResult{name: c.name, judged: true}
	if _, ok := crsIgnored[c.name]; ok {
		res.ignored = true
		return res
	}
	for i, stage := range c.test.Stages {
		out := stage.Output
		if o, ok := crsOverrides[c.name]; ok {
			out = o.output
			res.overridden = true
		}
		sr := ws.runStage(stage.Input, out)
		if sr.failure != "" && stage.Output.RetryOnce != nil && *stage.Output.RetryOnce {
			sr = ws.runStage(stage.Input, out)
		}
		sr.stage = i + 1
		res.last = &sr
		if !sr.judged && res.judged {
			res.judged, res.notJudged = false, i+1
		}
		if sr.failure != "" {
			res.failure = fmt.Sprintf("stage %d: %s", i+1, sr.failure)
			res.failed = &sr
			return res
		}
	}
	return res
}

// classifyCoraza: under Coraza's middleware a test passes when go-ftw's
// checks hold.
func classifyCoraza(r *caseResult) {
	switch {
	case r.ignored:
	case r.failure != "":
		r.problem = "failed " + r.failure
	case !r.judged && answeredByGo(r):
		r.outcome = "asserted: " + goAnswered
	case !r.judged:
		r.problem = "passed, but the middleware never saw the request, and Go's server did not answer it either"
	default:
		r.outcome = "judged"
	}
}

// classifyWarden decides how a test passed through warden, if it did: the
// WAF judged every stage and go-ftw's checks held, or the test is listed in
// wardenExpectations and its expectation holds on the stage it concerns
// (the failing one, else the last).
func classifyWarden(r *caseResult, cz *caseResult, up *echoUpstream) {
	if r.ignored {
		return
	}
	ex, listed := wardenExpectations[r.name]
	switch {
	case listed && r.failure == "" && r.judged:
		r.problem = fmt.Sprintf("listed in wardenExpectations (%s), but the WAF judged it and it passes: take it off", ex.kind)
	case listed:
		sr := r.failed
		if sr == nil {
			sr = r.last
		}
		if err := ex.verify(sr, up); err != nil {
			r.problem = fmt.Sprintf("expected %s (%s), but that does not hold on stage %d: %v (go-ftw: %s)", ex.kind, ex.reason, sr.stage, err, orNone(r.failure))
			return
		}
		r.outcome = "asserted: " + ex.kind
	case r.failure != "":
		r.problem = "failed " + r.failure
	case !r.judged && answeredByGo(r) && answeredByGo(cz) && cz.last.resp.status == r.last.resp.status:
		r.outcome = "asserted: " + goAnswered
	case !r.judged:
		r.problem = fmt.Sprintf("passed go-ftw's checks, but the WAF did not judge stage %d: list what warden does instead in wardenExpectations", r.notJudged)
	default:
		r.outcome = "judged"
	}
}

// goAnswered is the outcome of a test whose request Go's HTTP server
// answered itself, before any handler (a malformed request line or
// Content-Length, an unsupported HTTP version, ...): nothing of warden's,
// nor Coraza's middleware, ever sees it. Through warden it counts as passed
// only when Coraza's middleware met the very same fate (no handler, the
// same status), since the front is the same net/http server.
const goAnswered = "answered by Go's HTTP server before any handler"

// answeredByGo: the last stage got a response that no handler wrote (no
// X-Request-Id, which both fronts set on every answer).
func answeredByGo(r *caseResult) bool {
	return r != nil && r.last != nil && r.last.resp != nil && r.last.requestID == ""
}

func orNone(s string) string {
	if s == "" {
		return "passed"
	}
	return s
}

// runSuite runs every case against ws, crsParallel at a time.
func runSuite(ws *serverUnderTest, cases []ftwCase) []caseResult {
	results := make([]caseResult, len(cases))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range crsParallel {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(cases) {
					return
				}
				results[i] = runCase(ws, cases[i])
			}
		})
	}
	wg.Wait()
	return results
}

var crsReport = flag.String("crs.report", "", "write TestCRSRegressionSuite's per-test results (Coraza middleware and warden) to this TSV file")

func TestCRSRegressionSuite(t *testing.T) {
	cases, nfiles := loadCases(t)
	up := startUpstream(t)

	// First Coraza's own middleware, as Coraza's CRS harness runs it: the
	// count warden is held to.
	start := time.Now()
	czResults := runSuite(startCorazaMiddleware(t, engineCRSConfig(), albedoUpstream()), cases)
	for i := range czResults {
		classifyCoraza(&czResults[i])
	}
	czSummary := summarize(czResults)
	t.Logf("CRS v4.25.0 regression suite through Coraza's net/http middleware: %d tests from %d files in %v: %s",
		len(cases), nfiles, time.Since(start).Round(time.Millisecond), czSummary)

	// Then warden itself, judged by the rule ids in its decision log.
	ws := startWarden(t, wardenCRSConfig, up.url)
	ws.judged = wardenJudged(up)
	start = time.Now()
	results := runSuite(ws, cases)
	listedRuns := 0
	for i := range results {
		classifyWarden(&results[i], &czResults[i], up)
		if _, ok := wardenExpectations[results[i].name]; ok {
			listedRuns++
		}
	}
	summary := summarize(results)
	t.Logf("CRS v4.25.0 regression suite through warden: %d tests from %d files in %v: %s",
		len(cases), nfiles, time.Since(start).Round(time.Millisecond), summary)

	if listedRuns != len(wardenExpectations) {
		t.Errorf("wardenExpectations names %d tests, %d of them are in the suite", len(wardenExpectations), listedRuns)
	}
	for _, s := range []struct {
		name    string
		summary suiteSummary
	}{{"Coraza middleware", czSummary}, {"warden", summary}} {
		if s.summary.ignored != len(crsIgnored) {
			t.Errorf("%s: ignored %d tests, the ignore list names %d: a listed test is missing from the suite", s.name, s.summary.ignored, len(crsIgnored))
		}
		if s.summary.overridden != len(crsOverrides) {
			t.Errorf("%s: overrode %d tests, the override list names %d: a listed test is missing from the suite", s.name, s.summary.overridden, len(crsOverrides))
		}
	}

	// warden matches or exceeds Coraza, test by test: every test Coraza
	// passes passes through warden, judged or with its expectation asserted.
	for i, r := range results {
		cz := czResults[i]
		if r.ignored {
			continue
		}
		switch {
		case r.problem != "":
			t.Errorf("warden: %s: %s (Coraza's middleware: %s)", r.name, r.problem, orNone(cz.problem))
		case r.outcome != "judged":
			t.Logf("warden: %s: %s %s (Coraza's middleware: %s)", r.name, r.outcome, wardenExpectations[r.name].reason, orNone(cz.outcome))
		}
		if !cz.passed() {
			t.Logf("Coraza's middleware fails %s: %s (warden: %s)", cz.name, cz.problem, orNone(r.problem))
		}
	}
	if summary.passed < czSummary.passed {
		t.Errorf("warden passes %d tests, Coraza's middleware %d: warden must match or exceed it", summary.passed, czSummary.passed)
	}
	for _, name := range slices.Sorted(mapKeys(crsIgnored)) {
		t.Logf("ignored (Coraza's list) %s: %s", name, crsIgnored[name])
	}
	if *crsReport != "" {
		if err := writeCRSReport(*crsReport, czResults, results); err != nil {
			t.Error(err)
		}
	}
}

// writeCRSReport writes one line per test: its name, then for Coraza's
// middleware and for warden whether it passed and how (judged by the WAF,
// or the expectation asserted instead), and whether the WAF judged every
// stage.
func writeCRSReport(path string, cz, wd []caseResult) error {
	var b strings.Builder
	b.WriteString("test\tcoraza\tcoraza_waf_judged\twarden\twarden_waf_judged\n")
	cell := func(r caseResult) string {
		switch {
		case r.ignored:
			return "ignored"
		case r.problem != "":
			return "FAILED: " + strings.ReplaceAll(r.problem, "\t", " ")
		}
		return "passed (" + r.outcome + ")"
	}
	for i := range wd {
		fmt.Fprintf(&b, "%s\t%s\t%v\t%s\t%v\n", wd[i].name, cell(cz[i]), !cz[i].ignored && cz[i].judged, cell(wd[i]), !wd[i].ignored && wd[i].judged)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// suiteSummary counts a run's results.
type suiteSummary struct {
	passed, judged, overriddenPassed, ignored, overridden int
	asserted                                              map[string]int // by expectation kind
	failures                                              []string
}

func (s suiteSummary) String() string {
	var asserted []string
	for _, kind := range slices.Sorted(mapKeys(s.asserted)) {
		asserted = append(asserted, fmt.Sprintf("%d %s", s.asserted[kind], kind))
	}
	a := ""
	if len(asserted) > 0 {
		a = ", " + strings.Join(asserted, ", ") + ", asserted instead"
	}
	return fmt.Sprintf("%d passed (%d judged by the WAF%s; %d with Coraza's overridden expectations), %d failed, %d ignored (Coraza's list)",
		s.passed, s.judged, a, s.overriddenPassed, len(s.failures), s.ignored)
}

func summarize(results []caseResult) suiteSummary {
	s := suiteSummary{asserted: map[string]int{}}
	for _, r := range results {
		if r.overridden {
			s.overridden++
		}
		switch {
		case r.ignored:
			s.ignored++
		case r.problem != "":
			s.failures = append(s.failures, r.name+": "+r.problem)
		default:
			s.passed++
			if r.overridden {
				s.overriddenPassed++
			}
			if kind, ok := strings.CutPrefix(r.outcome, "asserted: "); ok {
				s.asserted[kind]++
			} else {
				s.judged++
			}
		}
	}
	sort.Strings(s.failures)
	return s
}

func mapKeys[V any](m map[string]V) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestCRSSuiteLoads: the whole suite loads from the module and the vendored
// extra file, with nothing read from outside the repository.
func TestCRSSuiteLoads(t *testing.T) {
	cases, _ := loadCases(t)
	var extra int
	for _, c := range cases {
		if strings.HasPrefix(c.name, "999999-") {
			extra++
		}
	}
	if extra != 37 {
		t.Errorf("999999.yml (vendored): %d tests loaded, want 37", extra)
	}
}
