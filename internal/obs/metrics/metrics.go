// Package metrics counts what the engine decides, for Prometheus. Every
// finished request passes through Observe (an engine observer); the counters
// live on a private registry served by the admin listener, so nothing else
// linked into the binary can add series to warden's /metrics.
//
// Label values are bounded: codes are the fixed set of decision codes
// (anything else counts as "other"), rule names are the config's own (a
// name the runtime does not know counts as "other"), stages and actions are
// the engine's fixed words. A client cannot mint a new series.
package metrics

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/engine"
)

// Metrics is warden's set of Prometheus collectors.
type Metrics struct {
	// Registry holds only warden's collectors and the Go/process ones.
	Registry *prometheus.Registry

	decisions       *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	upstreamDur     prometheus.Histogram
	waf             *prometheus.CounterVec
	generation      prometheus.Gauge
	reloads         *prometheus.CounterVec
	lastReload      prometheus.Gauge
	rules           prometheus.Gauge
	listSize        *prometheus.GaugeVec

	// Challenges, RateLimited and Bans are registered now and counted by
	// the parts that issue them (challenge pages, rate limits, bans):
	// result is issued, passed or failed; RateLimited and Bans are by rule.
	Challenges  *prometheus.CounterVec
	RateLimited *prometheus.CounterVec
	Bans        *prometheus.CounterVec
	BansActive  prometheus.Gauge

	mu      sync.Mutex
	ruleSet *ruleNames
	gen     atomic.Int64
}

// DefaultRule is the rule name of a decision made by the policy's default.
const DefaultRule = "(default)"

// ruleNames is the set of rule names of one runtime, built once per
// runtime the first time a request under it is counted.
type ruleNames struct {
	rt    *engine.Runtime
	names map[string]struct{}
}

// DurationBuckets suit a gateway: most decisions take microseconds, most
// upstream answers milliseconds to seconds.
var DurationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// New makes the collectors and registers them on a new registry.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	// Each collector is registered where it is made, so none can be made
	// and forgotten.
	reg := promauto.With(m.Registry)
	m.decisions = reg.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_decisions_total",
		Help: "Finished requests by decision code (empty when allowed), deciding rule, stage and action.",
	}, []string{"code", "rule", "stage", "action"})
	m.requestDuration = reg.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "warden_request_duration_seconds",
		Help:    "Time from the start of judgement to the end of the request; for refusals this is the decision latency.",
		Buckets: DurationBuckets,
	}, []string{"outcome"})
	m.upstreamDur = reg.NewHistogram(prometheus.HistogramOpts{
		Name:    "warden_upstream_duration_seconds",
		Help:    "Duration of requests handed to an upstream, judgement included.",
		Buckets: DurationBuckets,
	})
	m.waf = reg.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_waf_inspections_total",
		Help: "Requests the WAF found something in, by result: blocked, would_block (detect mode), matched (under the threshold), too_large.",
	}, []string{"result"})
	m.generation = reg.NewGauge(prometheus.GaugeOpts{
		Name: "warden_policy_generation",
		Help: "How many policies have been put in service since start (1 after the first load).",
	})
	m.reloads = reg.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_reloads_total",
		Help: "Policy reloads by result: ok or failed (a failed reload leaves the previous policy serving).",
	}, []string{"result"})
	m.lastReload = reg.NewGauge(prometheus.GaugeOpts{
		Name: "warden_policy_loaded_timestamp_seconds",
		Help: "Unix time the policy in service was put in service.",
	})
	m.rules = reg.NewGauge(prometheus.GaugeOpts{
		Name: "warden_policy_rules",
		Help: "Rules in the policy in service.",
	})
	m.listSize = reg.NewGaugeVec(prometheus.GaugeOpts{
		Name: "warden_ip_list_entries",
		Help: "Entries of each ip_lists list (inline CIDRs plus the lines of its files) in the policy in service.",
	}, []string{"list"})
	m.Challenges = reg.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_challenges_total",
		Help: "Challenges by result: issued, passed, failed.",
	}, []string{"result"})
	m.RateLimited = reg.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_rate_limited_total",
		Help: "Requests refused by a rate limit, by rule.",
	}, []string{"rule"})
	m.Bans = reg.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_bans_total",
		Help: "Bans imposed, by rule.",
	}, []string{"rule"})
	m.BansActive = reg.NewGauge(prometheus.GaugeOpts{
		Name: "warden_bans_active",
		Help: "Bans in force now.",
	})
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"ok", "failed"} {
		m.reloads.WithLabelValues(r)
	}
	for _, r := range []string{"issued", "passed", "failed"} {
		m.Challenges.WithLabelValues(r)
	}
	return m
}

// Observe counts one finished request; register it with eng.Observe.
func (m *Metrics) Observe(o *engine.Outcome) {
	d := &o.Decision
	code := ""
	if d.Code != "" {
		code = string(d.Code)
		if !d.Code.Known() {
			code = "other"
		}
	}
	m.decisions.WithLabelValues(code, m.ruleLabel(o.Runtime, d.Rule), o.Stage.String(), d.Action.String()).Inc()
	secs := o.Duration.Seconds()
	if o.Refused() {
		m.requestDuration.WithLabelValues("refused").Observe(secs)
	} else {
		m.requestDuration.WithLabelValues("allowed").Observe(secs)
	}
	if strings.HasPrefix(o.Handler, "upstream ") {
		m.upstreamDur.Observe(secs)
	}
	if o.WAFRan {
		v := &o.WAF
		switch {
		case v.Blocked:
			m.waf.WithLabelValues("blocked").Inc()
		case v.WouldBlock:
			m.waf.WithLabelValues("would_block").Inc()
		case v.TooLarge:
			m.waf.WithLabelValues("too_large").Inc()
		case len(v.Matches) > 0:
			m.waf.WithLabelValues("matched").Inc()
		}
	}
	if d.Code == decision.RateLimited {
		m.RateLimited.WithLabelValues(m.ruleLabel(o.Runtime, d.Rule)).Inc()
	}
}

// ruleLabel is the rule's name when the runtime's config has a rule by that
// name, "" for none, and "other" for anything else (bounded cardinality).
func (m *Metrics) ruleLabel(rt *engine.Runtime, rule string) string {
	if rule == "" || rt == nil || rt.Config == nil {
		return ruleOr(rule)
	}
	m.mu.Lock()
	rs := m.ruleSet
	if rs == nil || rs.rt != rt {
		rs = &ruleNames{rt: rt, names: make(map[string]struct{}, len(rt.Config.Rules)+1)}
		// The policy's default names itself so in the decision.
		rs.names[DefaultRule] = struct{}{}
		for i := range rt.Config.Rules {
			rs.names[rt.Config.Rules[i].Name.Value] = struct{}{}
		}
		m.ruleSet = rs
	}
	m.mu.Unlock()
	if _, ok := rs.names[rule]; ok {
		return rule
	}
	return "other"
}

func ruleOr(rule string) string {
	if rule == "" {
		return ""
	}
	return "other"
}

// Loaded records a policy put in service at now (the first load or a
// successful reload).
func (m *Metrics) Loaded(rt *engine.Runtime, now time.Time) {
	m.generation.Set(float64(m.gen.Add(1)))
	m.lastReload.Set(float64(now.Unix()))
	if rt == nil {
		return
	}
	if rt.Policy != nil {
		m.rules.Set(float64(rt.Policy.RuleCount()))
	}
	m.listSize.Reset()
	if rt.Config != nil {
		for name, n := range ListSizes(rt.Config.Pos.File, rt.Config.IPLists) {
			m.listSize.WithLabelValues(name).Set(float64(n))
		}
	}
}

// Reloaded counts a reload attempt; a successful one is also Loaded.
func (m *Metrics) Reloaded(rt *engine.Runtime, err error, now time.Time) {
	if err != nil {
		m.reloads.WithLabelValues("failed").Inc()
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
	m.Loaded(rt, now)
}

// Generation is the number of policies put in service so far.
func (m *Metrics) Generation() int {
	return int(m.gen.Load())
}

// ListSizes counts each list's entries: its inline CIDRs and the
// non-comment lines of its files (relative to the config's folder, as the
// policy reads them). A file that cannot be read counts nothing here; the
// policy has already refused it.
func ListSizes(configFile string, lists map[string]config.IPList) map[string]int {
	out := make(map[string]int, len(lists))
	base := filepath.Dir(configFile)
	for name, l := range lists {
		n := len(l.CIDRs)
		for _, f := range l.Files {
			p := f.Value
			if !filepath.IsAbs(p) {
				p = filepath.Join(base, p)
			}
			n += countEntries(p)
		}
		out[name] = n
	}
	return out
}

func countEntries(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line != "" {
			n++
		}
	}
	return n
}

// CountLogDrops exports how many decision-log lines a full queue dropped
// (dropped reads obs.LogWriter.Dropped): a flood that outruns the log shows
// up here, not as slower refusals.
func (m *Metrics) CountLogDrops(dropped func() uint64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "warden_log_dropped_total",
		Help: "Decision-log lines dropped because the log's queue was full (the log could not keep up).",
	}, func() float64 { return float64(dropped()) }))
}
