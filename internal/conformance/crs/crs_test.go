package crs

// TestCRSRegressionSuite runs the OWASP CRS v4.25.0 regression suite twice:
// against the bare WAF engine served the way Coraza's own harness serves its
// middleware (the baseline: every test Coraza passes), then against a real
// warden server built from a YAML config, in front of a real echo upstream,
// judged by the rule ids in warden's decision log. Coraza's ignore list and
// overrides apply to both runs, unchanged; warden's few further exclusions
// (exclusions_test.go) are each checked to still fail for the reason given.

import (
	"fmt"
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
	failure    string    // "" when every stage passed
	failed     *stageRun // the stage that failed
	excluded   bool      // on wardenExclusions (its reason checked)
	// refusedBeforeWAF: warden refused a stage with 400 before it had a
	// canonical request, so before the WAF (the test passed on warden's 400
	// alone, or failed on it).
	refusedBeforeWAF bool
}

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
// overrides applied; the first failing stage decides.
func runCase(ws *serverUnderTest, c ftwCase) caseResult {
	res := caseResult{name: c.name}
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
		if slices.ContainsFunc(sr.records, isFrontEndRefusal) {
			res.refusedBeforeWAF = true
		}
		if sr.failure != "" {
			res.failure = fmt.Sprintf("stage %d: %s", i+1, sr.failure)
			res.failed = &sr
			return res
		}
	}
	return res
}

// isFrontEndRefusal: warden's decision log holds a bad_request refusal made
// before any rule (stage prerule or canonical): a path that cannot be made
// canonical, ambiguous framing, an override header.
func isFrontEndRefusal(r logRecord) bool {
	st := r.str("stage")
	return r.msg == "decision" && (st == "prerule" || st == "canonical") && r.str("code") == "bad_request"
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

func TestCRSRegressionSuite(t *testing.T) {
	cases, nfiles := loadCases(t)
	up := startUpstream(t)

	// First the bare engine, as Coraza's own harness runs it: every test
	// Coraza passes must pass, and this is what warden's front end is
	// compared with.
	engine, err := waf.New(engineCRSConfig())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	engineResults := runSuite(startEngineServer(t, engine, albedoUpstream()), cases)
	engineSummary := summarize(engineResults)
	t.Logf("CRS v4.25.0 regression suite against the bare engine (Coraza's harness): %d tests from %d files in %v: %s",
		len(cases), nfiles, time.Since(start).Round(time.Millisecond), engineSummary)
	for _, f := range engineSummary.failures {
		t.Errorf("engine failed %s", f)
	}

	// Then warden itself, judged by the rule ids in its decision log.
	ws := startWarden(t, wardenCRSConfig, up.url)
	start = time.Now()
	results := runSuite(ws, cases)
	engineByName := map[string]caseResult{}
	for _, r := range engineResults {
		engineByName[r.name] = r
	}
	var excludedRuns int
	for i, r := range results {
		ex, listed := wardenExclusions[r.name]
		if !listed {
			continue
		}
		excludedRuns++
		switch {
		case r.failure == "":
			t.Errorf("excluded %s passes through warden now: take it off wardenExclusions (%s)", r.name, ex.reason)
		case engineByName[r.name].failure != "":
			t.Errorf("excluded %s fails against the bare engine too, so warden's front end is not why it fails: %s", r.name, engineByName[r.name].failure)
		default:
			if err := ex.verify(r.failed, up); err != nil {
				t.Errorf("excluded %s (%s), but the reason does not hold: %v (the test failed with: %s)", r.name, ex.reason, err, r.failure)
			}
		}
		results[i].excluded = true
	}
	if excludedRuns != len(wardenExclusions) {
		t.Errorf("wardenExclusions names %d tests, %d of them are in the suite", len(wardenExclusions), excludedRuns)
	}
	summary := summarize(results)
	t.Logf("CRS v4.25.0 regression suite through warden: %d tests from %d files in %v: %s",
		len(cases), nfiles, time.Since(start).Round(time.Millisecond), summary)
	for _, name := range slices.Sorted(mapKeys(crsIgnored)) {
		t.Logf("ignored (Coraza's list) %s: %s", name, crsIgnored[name])
	}
	for _, r := range results {
		if r.refusedBeforeWAF && r.failure == "" {
			t.Logf("passed on warden's own 400, before the WAF: %s", r.name)
		}
	}
	for _, name := range slices.Sorted(mapKeys(wardenExclusions)) {
		t.Logf("excluded (warden's front end, reason verified) %s: %s", name, wardenExclusions[name].reason)
	}
	for _, s := range []struct {
		name    string
		summary suiteSummary
	}{{"engine", engineSummary}, {"warden", summary}} {
		if s.summary.ignored != len(crsIgnored) {
			t.Errorf("%s: ignored %d tests, the ignore list names %d: a listed test is missing from the suite", s.name, s.summary.ignored, len(crsIgnored))
		}
		if s.summary.overridden != len(crsOverrides) {
			t.Errorf("%s: overrode %d tests, the override list names %d: a listed test is missing from the suite", s.name, s.summary.overridden, len(crsOverrides))
		}
	}
	for _, f := range summary.failures {
		t.Errorf("failed %s", f)
	}
}

// suiteSummary counts a run's results.
type suiteSummary struct {
	passed, overriddenPassed, ignored, overridden, excluded int
	// passedOnRefusal: passed tests where warden refused a stage with 400
	// before the WAF (a test expecting no rule, or status 400).
	passedOnRefusal int
	failures        []string
}

func (s suiteSummary) String() string {
	return fmt.Sprintf("%d passed (%d of them with Coraza's overridden expectations, %d on warden's own 400 before the WAF), %d failed, %d ignored (Coraza's list), %d excluded (warden's front end)",
		s.passed, s.overriddenPassed, s.passedOnRefusal, len(s.failures), s.ignored, s.excluded)
}

func summarize(results []caseResult) suiteSummary {
	var s suiteSummary
	for _, r := range results {
		if r.overridden {
			s.overridden++
		}
		switch {
		case r.ignored:
			s.ignored++
		case r.excluded:
			s.excluded++
		case r.failure != "":
			s.failures = append(s.failures, r.name+": "+r.failure)
		default:
			s.passed++
			if r.overridden {
				s.overriddenPassed++
			}
			if r.refusedBeforeWAF {
				s.passedOnRefusal++
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
