// Package waf is warden's WAF stage: the OWASP Core Rule Set (the copy
// embedded in github.com/corazawaf/coraza-coreruleset/v4) run by Coraza.
//
// warden adds three things to the plain Coraza setup: where the WAF sits (the
// gateway calls Inspect only after the cheap checks passed), what a refusal
// says (Verdict carries the matched rules for the decision log), and tuning
// an operator can read (RouteTuning, compiled into CRS-style runtime
// exclusion rules).
//
// The WAF never works out a path of its own: Inspect is given the canonical
// path the gateway judged and forwards, and the target exactly as the client
// sent it; the CRS judges both (see Request), route tuning keys on the
// canonical path, and the request body it inspects is the very byte slice
// it hands back for forwarding.
package waf

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// Modes of the engine.
const (
	ModeBlock  = "block"  // refuse requests the CRS scores as attacks
	ModeDetect = "detect" // log "would block" with the rule ids, still serve
)

// What to do with a request body larger than Config.BodyLimit.
const (
	BodyOverLimitReject = "reject" // refuse the request (bad_request)
	BodyOverLimitPass   = "pass"   // forward it, body uninspected
)

// Defaults of Config.
const (
	DefaultParanoiaLevel     = 1
	DefaultInboundThreshold  = 5
	DefaultOutboundThreshold = 4
	DefaultBodyLimit         = 1 << 20
	// MaxBodyLimit bounds BodyLimit: inspected bodies are held in memory.
	MaxBodyLimit = 1 << 30
	// ResponseBodyLimit is how much of a response body phase 4 inspects
	// (Coraza's recommended SecResponseBodyLimit); the rest is streamed.
	ResponseBodyLimit = 512 << 10
)

// Rule ids warden generates. ModSecurity reserves 1-99999 for local use;
// warden keeps 90000-99999 for itself, so operator Directives should not use it.
const (
	settingsRuleID   = 90000
	firstRouteRuleID = 90010
	lastRouteRuleID  = 99999
)

// Config is the WAF section of a warden configuration.
type Config struct {
	// Mode is ModeBlock (default) or ModeDetect.
	Mode string
	// ParanoiaLevel is the CRS blocking paranoia level, 1..4 (default 1).
	ParanoiaLevel int
	// InboundThreshold is the CRS inbound anomaly score threshold (default 5).
	InboundThreshold int
	// OutboundThreshold is the CRS outbound anomaly score threshold (default 4).
	OutboundThreshold int
	// BodyLimit is how many request body bytes are inspected (default 1 MiB).
	BodyLimit int64
	// BodyOverLimit is BodyOverLimitReject (default) or BodyOverLimitPass.
	BodyOverLimit string
	// ResponseInspection turns on CRS phases 3 and 4 (default off).
	ResponseInspection bool
	// Routes holds per-route false-positive tuning.
	Routes []RouteTuning
	// SetupDirectives is raw SecLang loaded before the CRS and after warden's
	// own settings: the place for CRS setup variables (SecAction setvar:tx.*)
	// that the rule files read while they initialise. Validated at New.
	SetupDirectives string
	// Directives is raw SecLang appended after the CRS, for anything the
	// fields above do not cover. Validated at New.
	Directives string
}

// RouteTuning is the false-positive tuning of one route.
type RouteTuning struct {
	// PathPrefix is the canonical (decoded) path prefix the tuning applies
	// to. It matches whole segments: "/api" covers "/api" and "/api/x" but
	// not "/apix"; a prefix ending in "/" covers everything below it.
	PathPrefix string
	// Off turns the WAF off for the prefix: nothing is inspected and the
	// request body is streamed untouched.
	Off bool
	// RemoveRuleIDs become ctl:ruleRemoveById.
	RemoveRuleIDs []int
	// RemoveTags become ctl:ruleRemoveByTag.
	RemoveTags []string
	// RemoveTargets become ctl:ruleRemoveTargetById=ID;TARGET.
	RemoveTargets []TargetExclusion
}

// TargetExclusion stops one rule from looking at one variable.
type TargetExclusion struct {
	RuleID int
	// Target is a collection with an optional key, such as "ARGS:password",
	// "REQUEST_COOKIES:session" or "ARGS:/^json\.secret/" (a regex key).
	Target string
}

// Engine is one compiled Coraza WAF with the CRS and warden's tuning.
// It is safe for concurrent use.
type Engine struct {
	waf    coraza.WAF
	cfg    Config // with defaults filled in
	offs   []string
	detect bool
}

// New validates cfg and builds the WAF. Errors name the offending field,
// route, rule id or directive.
func New(cfg Config) (*Engine, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	routeRules, err := compileRoutes(cfg.Routes)
	if err != nil {
		return nil, err
	}

	loaded := newRuleCatalog()
	sections := directiveSections(cfg, routeRules)
	w, err := buildWAF(sections, loaded.observe)
	if err != nil {
		return nil, locateBuildError(sections, err)
	}
	if err := loaded.check(cfg.Routes); err != nil {
		return nil, err
	}

	e := &Engine{waf: w, cfg: cfg, detect: cfg.Mode == ModeDetect}
	for _, rt := range cfg.Routes {
		if rt.Off {
			e.offs = append(e.offs, rt.PathPrefix)
		}
	}
	return e, nil
}

// Directives returns the complete SecLang the engine was built from, in load
// order, for `warden check` output and for comparing against other Coraza
// integrations with the same settings.
func (e *Engine) Directives() string {
	routeRules, _ := compileRoutes(e.cfg.Routes)
	var b strings.Builder
	for _, s := range directiveSections(e.cfg, routeRules) {
		fmt.Fprintf(&b, "# %s\n%s\n", s.name, s.text)
	}
	return b.String()
}

// Mode reports the mode the engine runs in.
func (e *Engine) Mode() string { return e.cfg.Mode }

func withDefaults(cfg Config) (Config, error) {
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeBlock
	case ModeBlock, ModeDetect:
	default:
		return cfg, fmt.Errorf("waf: mode %q: want %q or %q", cfg.Mode, ModeBlock, ModeDetect)
	}
	switch {
	case cfg.ParanoiaLevel == 0:
		cfg.ParanoiaLevel = DefaultParanoiaLevel
	case cfg.ParanoiaLevel < 1 || cfg.ParanoiaLevel > 4:
		return cfg, fmt.Errorf("waf: paranoia level %d: want 1 to 4", cfg.ParanoiaLevel)
	}
	switch {
	case cfg.InboundThreshold == 0:
		cfg.InboundThreshold = DefaultInboundThreshold
	case cfg.InboundThreshold < 0:
		return cfg, fmt.Errorf("waf: inbound threshold %d: want a positive score", cfg.InboundThreshold)
	}
	switch {
	case cfg.OutboundThreshold == 0:
		cfg.OutboundThreshold = DefaultOutboundThreshold
	case cfg.OutboundThreshold < 0:
		return cfg, fmt.Errorf("waf: outbound threshold %d: want a positive score", cfg.OutboundThreshold)
	}
	switch {
	case cfg.BodyLimit == 0:
		cfg.BodyLimit = DefaultBodyLimit
	case cfg.BodyLimit < 0 || cfg.BodyLimit > MaxBodyLimit:
		return cfg, fmt.Errorf("waf: body limit %d: want 1 to %d bytes", cfg.BodyLimit, MaxBodyLimit)
	}
	switch cfg.BodyOverLimit {
	case "":
		cfg.BodyOverLimit = BodyOverLimitReject
	case BodyOverLimitReject, BodyOverLimitPass:
	default:
		return cfg, fmt.Errorf("waf: body over limit %q: want %q or %q", cfg.BodyOverLimit, BodyOverLimitReject, BodyOverLimitPass)
	}
	return cfg, nil
}

// section is one named block of SecLang.
type section struct{ name, text string }

// directiveSections is the whole configuration in load order. Order matters:
// settings and exclusions are phase-1 rules that must run before the CRS
// rules they steer, and SecDefaultAction must precede the rules it applies to.
func directiveSections(cfg Config, routeRules string) []section {
	sections := []section{
		{"engine settings", engineDirectives(cfg)},
		{"CRS settings", settingsDirectives(cfg)},
	}
	if strings.TrimSpace(cfg.SetupDirectives) != "" {
		sections = append(sections, section{"setup directives", cfg.SetupDirectives})
	}
	sections = append(sections, section{"CRS setup", "Include @crs-setup.conf.example"})
	if routeRules != "" {
		sections = append(sections, section{"route tuning", routeRules})
	}
	sections = append(sections, section{"CRS rules", "Include @owasp_crs/*.conf"})
	if strings.TrimSpace(cfg.Directives) != "" {
		sections = append(sections, section{"directives", cfg.Directives})
	}
	return sections
}

func buildWAF(sections []section, observe func(types.RuleMetadata)) (coraza.WAF, error) {
	wafCfg := coraza.NewWAFConfig().WithRootFS(coreruleset.FS)
	if observe != nil {
		wafCfg = experimental.WAFConfigWithRuleObserver(wafCfg, observe)
	}
	for _, s := range sections {
		wafCfg = wafCfg.WithDirectives(s.text)
	}
	return coraza.NewWAF(wafCfg)
}

// locateBuildError says where the configuration Coraza refused is wrong.
// Coraza's message names the directive but not the line, so the failing
// section is found by loading the sections one more at a time, and inside an
// operator's section the failing directive by bisection (the error path
// only; a build takes a fraction of a second).
func locateBuildError(sections []section, err error) error {
	failing := len(sections) - 1
	for i := range sections {
		if _, e := buildWAF(sections[:i+1], nil); e != nil {
			failing, err = i, e
			break
		}
	}
	s := sections[failing]
	msg := strings.TrimPrefix(err.Error(), "invalid WAF config from string: ")
	if s.name != "directives" && s.name != "setup directives" {
		return fmt.Errorf("waf: %s: %s", s.name, msg)
	}
	lines := logicalLines(s.text)
	lo, hi := 1, len(lines) // the smallest failing prefix length lies in [lo, hi]
	for lo < hi {
		mid := (lo + hi) / 2
		prefix := append(slices.Clone(sections[:failing]), section{s.name, joinLines(lines[:mid])})
		if _, e := buildWAF(prefix, nil); e != nil {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if len(lines) > 0 {
		return fmt.Errorf("waf: %s line %d: %s", s.name, lines[lo-1].line, msg)
	}
	return fmt.Errorf("waf: %s: %s", s.name, msg)
}

// logicalLine is one directive as Coraza's parser sees it, with the number
// of the physical line it starts on.
type logicalLine struct {
	line int
	text string
}

// logicalLines splits SecLang the way Coraza's parser does: blank lines and
// # comments skipped, a trailing backslash continues the directive, and a
// backtick block runs to a line starting with a backtick.
func logicalLines(text string) []logicalLine {
	var out []logicalLine
	var cur strings.Builder
	start := 0
	inBackticks := false
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if !inBackticks && line[len(line)-1] == '`' {
			inBackticks = true
		} else if inBackticks && line[0] == '`' {
			inBackticks = false
		}
		cur.WriteString(raw)
		cur.WriteString("\n")
		if inBackticks || line[len(line)-1] == '\\' {
			continue
		}
		out = append(out, logicalLine{start, cur.String()})
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, logicalLine{start, cur.String()})
	}
	return out
}

func joinLines(lines []logicalLine) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.text)
	}
	return b.String()
}

// engineDirectives follows Coraza's coraza.conf-recommended (v3.8.1) except
// for the body limits: warden reads the body itself, up to BodyLimit, so
// Coraza's own limit is set one byte above and never triggers, and the body
// stays in memory (no temporary files).
//
// SecRxPreFilter stays off (Coraza's default). It would skip @rx rules whose
// required literals a value lacks, and on the benign benchmark form POST it
// saves a third of the CRS's CPU, but in Coraza v3.8.1 it skips rules that
// would have matched: two CRS regression tests (942220-2, 932311-7) fail with
// it on (docs/benchmarks.md, "## WAF"; TestEngineKeepsRxPreFilterOff).
func engineDirectives(cfg Config) string {
	engine := "On"
	if cfg.Mode == ModeDetect {
		engine = "DetectionOnly"
	}
	responseAccess := "Off"
	if cfg.ResponseInspection {
		responseAccess = "On"
	}
	coraLimit := strconv.FormatInt(cfg.BodyLimit+1, 10)
	return `SecRuleEngine ` + engine + `
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" \
    "id:'200000',phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" \
    "id:'200001',phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "^application/[a-z0-9.-]+[+]json" \
    "id:'200006',phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule URI_PARSE_ERROR "@eq 1" \
    "id:'200009',phase:1,t:none,log,deny,status:400,msg:'URI failed to parse.'"
SecRequestBodyJsonDepthLimit 1024
SecArgumentsLimit 1000
SecRequestBodyLimit ` + coraLimit + `
SecRequestBodyInMemoryLimit ` + coraLimit + `
SecRequestBodyLimitAction ProcessPartial
SecRule REQBODY_ERROR "!@eq 0" \
    "id:'200002',phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%{reqbody_error_msg}',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" \
    "id:'200003',phase:2,t:none,log,deny,status:400, \
    msg:'Multipart request body failed strict validation.', \
    logdata:'MULTIPART_DUPLICATE_PART_HEADER=%{MULTIPART_DUPLICATE_PART_HEADER}, \
    MULTIPART_INVALID_QUOTING=%{MULTIPART_INVALID_QUOTING}'"
SecRule ARGUMENTS_LIMIT_REACHED "@eq 1" \
    "id:'200004',phase:1,t:none,log,deny,status:400,msg:'Argument limit reached; request rejected (GET/PATH args)'"
SecRule ARGUMENTS_LIMIT_REACHED "@eq 1" \
    "id:'200005',phase:2,t:none,log,deny,status:400,msg:'Argument limit reached; request rejected (POST args)'"
SecResponseBodyAccess ` + responseAccess + `
SecResponseBodyMimeType text/plain text/html text/xml
SecResponseBodyJsonDepthLimit 1024
SecResponseBodyLimit ` + strconv.Itoa(ResponseBodyLimit) + `
SecResponseBodyLimitAction ProcessPartial
# The CRS v4.25.0 setup example sets default actions for phases 1 and 2
# only; without these the response rules (which carry no "log" action of
# their own) would match silently. CRS v4.25.1 adds the same three lines.
SecDefaultAction "phase:3,log,auditlog,pass"
SecDefaultAction "phase:4,log,auditlog,pass"
SecDefaultAction "phase:5,log,auditlog,pass"
`
}

// settingsDirectives sets the CRS variables warden's config controls. The
// CRS initialisation (REQUEST-901) only fills in variables still unset.
func settingsDirectives(cfg Config) string {
	return fmt.Sprintf(`SecAction "id:%d,phase:1,pass,nolog,t:none,`+
		`setvar:tx.blocking_paranoia_level=%d,`+
		`setvar:tx.inbound_anomaly_score_threshold=%d,`+
		`setvar:tx.outbound_anomaly_score_threshold=%d"`,
		settingsRuleID, cfg.ParanoiaLevel, cfg.InboundThreshold, cfg.OutboundThreshold)
}

// compileRoutes turns the per-route tuning into phase-1 rules, the way CRS
// runtime exclusions are written, keyed on the canonical path warden's own
// rules judged (TX:warden_canonical_path, set by Inspect before phase 1),
// not on REQUEST_FILENAME: that is the raw path the client sent, and a
// client must not pick or dodge a route's tuning by spelling the path
// another way (//search, /./search). Each prefix becomes two rules: the
// exact path and everything below it.
func compileRoutes(routes []RouteTuning) (string, error) {
	var b strings.Builder
	seen := map[string]bool{}
	id := firstRouteRuleID
	for i, rt := range routes {
		if err := checkPrefix(rt.PathPrefix); err != nil {
			return "", fmt.Errorf("waf: route %d: %w", i+1, err)
		}
		if seen[rt.PathPrefix] {
			return "", fmt.Errorf("waf: route %q: path prefix listed twice", rt.PathPrefix)
		}
		seen[rt.PathPrefix] = true
		if rt.Off {
			continue // decided in Go before any transaction exists
		}
		ctls, err := routeControls(rt)
		if err != nil {
			return "", fmt.Errorf("waf: route %q: %w", rt.PathPrefix, err)
		}
		if len(ctls) == 0 {
			continue
		}
		actions := strings.Join(ctls, ",")
		matchers := [][2]string{{"@beginsWith", rt.PathPrefix}}
		if !strings.HasSuffix(rt.PathPrefix, "/") {
			matchers = [][2]string{{"@streq", rt.PathPrefix}, {"@beginsWith", rt.PathPrefix + "/"}}
		}
		for _, m := range matchers {
			if id > lastRouteRuleID {
				return "", fmt.Errorf("waf: too many tuned routes (rule ids %d-%d exhausted)", firstRouteRuleID, lastRouteRuleID)
			}
			fmt.Fprintf(&b, "SecRule TX:%s \"%s %s\" \"id:%d,phase:1,pass,nolog,t:none,%s\"\n", canonicalPathVar, m[0], m[1], id, actions)
			id++
		}
	}
	return b.String(), nil
}

func routeControls(rt RouteTuning) ([]string, error) {
	var ctls []string
	for _, id := range rt.RemoveRuleIDs {
		if id <= 0 {
			return nil, fmt.Errorf("remove rule id %d: want a positive rule id", id)
		}
		ctls = append(ctls, "ctl:ruleRemoveById="+strconv.Itoa(id))
	}
	for _, tag := range rt.RemoveTags {
		if !tagPattern.MatchString(tag) {
			return nil, fmt.Errorf("remove tag %q: tags are letters, digits and _ - . / :", tag)
		}
		ctls = append(ctls, "ctl:ruleRemoveByTag="+tag)
	}
	for _, te := range rt.RemoveTargets {
		if te.RuleID <= 0 {
			return nil, fmt.Errorf("remove target %q: rule id %d: want a positive rule id", te.Target, te.RuleID)
		}
		target, err := checkTarget(te.Target)
		if err != nil {
			return nil, fmt.Errorf("remove target of rule %d: %w", te.RuleID, err)
		}
		ctls = append(ctls, fmt.Sprintf("ctl:ruleRemoveTargetById=%d;%s", te.RuleID, target))
	}
	return ctls, nil
}

var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_./:-]+$`)

// checkPrefix keeps prefixes to what can be written inside a quoted SecLang
// operator argument without escaping or macro expansion.
func checkPrefix(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path prefix %q: must start with /", p)
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f || r == '"' || r == '\'' || r == '\\' || r == '%' {
			return fmt.Errorf("path prefix %q: contains %q, which a canonical path prefix here may not hold", p, r)
		}
	}
	return nil
}

// checkTarget validates "COLLECTION[:key]" itself, because Coraza's ctl
// parser silently ignores an unknown collection name.
func checkTarget(target string) (string, error) {
	name, key, hasKey := strings.Cut(target, ":")
	v, err := variables.Parse(name)
	if err != nil || v == variables.Unknown {
		return "", fmt.Errorf("target %q: unknown collection %q", target, name)
	}
	if !hasKey {
		return name, nil
	}
	if key == "" {
		return "", fmt.Errorf("target %q: empty key after ':'", target)
	}
	if strings.ContainsAny(key, ",\"' \t\r\n\\") && !isRegexKey(key) {
		return "", fmt.Errorf("target %q: key may not contain commas, quotes, spaces or backslashes", target)
	}
	if isRegexKey(key) {
		if strings.ContainsAny(key, ",\"'") {
			return "", fmt.Errorf("target %q: regex key may not contain commas or quotes", target)
		}
		if _, err := regexp.Compile(key[1 : len(key)-1]); err != nil {
			return "", fmt.Errorf("target %q: %w", target, err)
		}
	}
	return name + ":" + key, nil
}

func isRegexKey(k string) bool { return len(k) >= 2 && k[0] == '/' && k[len(k)-1] == '/' }

// ruleCatalog records the rules Coraza loaded, so tuning that names a rule
// id or tag that does not exist fails at New instead of doing nothing.
type ruleCatalog struct {
	ids  map[int]bool
	tags map[string]bool
}

func newRuleCatalog() *ruleCatalog {
	return &ruleCatalog{ids: map[int]bool{}, tags: map[string]bool{}}
}

func (c *ruleCatalog) observe(r types.RuleMetadata) {
	c.ids[r.ID()] = true
	for _, t := range r.Tags() {
		c.tags[t] = true
	}
}

func (c *ruleCatalog) check(routes []RouteTuning) error {
	var errs []error
	for _, rt := range routes {
		if rt.Off {
			continue
		}
		for _, id := range rt.RemoveRuleIDs {
			if !c.ids[id] {
				errs = append(errs, fmt.Errorf("waf: route %q: remove rule id %d: no such rule is loaded", rt.PathPrefix, id))
			}
		}
		for _, tag := range rt.RemoveTags {
			if !c.tags[tag] {
				errs = append(errs, fmt.Errorf("waf: route %q: remove tag %q: no loaded rule carries it", rt.PathPrefix, tag))
			}
		}
		for _, te := range rt.RemoveTargets {
			if !c.ids[te.RuleID] {
				errs = append(errs, fmt.Errorf("waf: route %q: remove target %q of rule %d: no such rule is loaded", rt.PathPrefix, te.Target, te.RuleID))
			}
		}
	}
	return errors.Join(errs...)
}

// routeOff reports whether the WAF is off for the canonical path.
func (e *Engine) routeOff(path string) bool {
	return slices.ContainsFunc(e.offs, func(prefix string) bool { return prefixCovers(prefix, path) })
}

// prefixCovers is the Go twin of the TX:warden_canonical_path rules compileRoutes
// writes: exact match or whole-segment prefix.
func prefixCovers(prefix, path string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix)
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}
