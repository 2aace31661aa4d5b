package engine_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/identity"
)

func newEngine(t *testing.T, src string, now *time.Time) (*engine.Engine, *lockedBuffer) {
	t.Helper()
	cfg, err := config.Parse("policy.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&log, nil))
	rt, err := engine.Build(cfg, engine.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	e := engine.New(logger)
	e.Swap(rt)
	e.Now = func() time.Time { return *now }
	return e, &log
}

// judge runs one request from ip through the engine and logs it, as a
// front end does.
func judge(e *engine.Engine, method, target, ip string, headers ...string) *engine.Outcome {
	w := engine.Wire{Method: method, Target: target, Host: "site.example", RemoteAddr: ip + ":4000", Header: http.Header{}}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		w.Header.Add(k, strings.TrimSpace(v))
	}
	o := &engine.Outcome{Front: "test"}
	e.Judge(&w, o)
	e.Log(o)
	return o
}

func TestRateLimitRefusesOverTheLimitWithRetryAfter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	e, _ := newEngine(t, `
rules:
  - name: api-rate
    when: { path: { prefix: [/api/] } }
    rate_limit: { requests: 3, per: 1m, burst: 3 }
  - name: api
    when: { path: { prefix: [/api/] } }
    action: allow
`, &now)
	for i := 0; i < 3; i++ {
		o := judge(e, "GET", "/api/x", "192.0.2.1")
		if o.Refused() || o.Decision.Rule != "api" {
			t.Fatalf("request %d: %+v, want allowed by the next rule", i+1, o.Decision)
		}
		if got := o.Header.Get("RateLimit"); !strings.Contains(got, "r="+string(rune('0'+2-i))) {
			t.Errorf("request %d: RateLimit %q, want %d remaining", i+1, got, 2-i)
		}
	}
	o := judge(e, "GET", "/api/x", "192.0.2.1")
	if o.Decision.Code != "rate_limited" || o.Decision.Rule != "api-rate" || o.Decision.RetryAfter < 1 {
		t.Fatalf("fourth request: %+v, want 429 rate_limited by api-rate with Retry-After", o.Decision)
	}
	res := o.Response()
	if res.Status != 429 || res.Header.Get("Retry-After") == "" || res.Header.Get("RateLimit-Policy") == "" {
		t.Errorf("refusal: %d %v", res.Status, res.Header)
	}
	// Another client has its own count; other paths are not charged.
	if o := judge(e, "GET", "/api/x", "192.0.2.2"); o.Refused() {
		t.Errorf("another client: %+v", o.Decision)
	}
	if o := judge(e, "GET", "/", "192.0.2.1"); o.Refused() || len(o.RateLimits) != 0 {
		t.Errorf("another path: %+v %v", o.Decision, o.RateLimits)
	}
	// The quota comes back with time.
	now = now.Add(21 * time.Second)
	if o := judge(e, "GET", "/api/x", "192.0.2.1"); o.Refused() {
		t.Errorf("after 21 s: %+v", o.Decision)
	}
}

func TestBanAfterRepeatedRefusalsIsCheckedFirst(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	e, log := newEngine(t, `
identity:
  api_keys:
    header: X-API-Key
    keys: [{ id: ops, sha256: "`+identity.HashKey("right")+`", roles: [admin] }]
bans:
  - name: brute-force
    count: [invalid_credentials]
    after: 3
    within: 1m
    ban_for: 10m
    escalate: "2x, max 1h"
rules:
  - name: admin
    when: { path: { prefix: [/admin/] } }
    require: { roles_any: [admin] }
    action: allow
`, &now)
	for i := 0; i < 3; i++ {
		if o := judge(e, "GET", "/admin/", "198.51.100.7", "X-API-Key: wrong"); o.Decision.Code != "invalid_credentials" {
			t.Fatalf("attempt %d: %+v", i+1, o.Decision)
		}
	}
	if !strings.Contains(log.String(), `"msg":"ban"`) || !strings.Contains(log.String(), "brute-force") {
		t.Errorf("the ban is not logged:\n%s", log.String())
	}
	// Banned now, even with the right key: refused before the rules run.
	o := judge(e, "GET", "/admin/", "198.51.100.7", "X-API-Key: right")
	if o.Decision.Code != "banned" || o.Stage != engine.StageBan || o.Decision.RetryAfter < 590 || o.Trail.Len() != 0 {
		t.Fatalf("after three failures: %+v stage %v trail %d", o.Decision, o.Stage, o.Trail.Len())
	}
	if res := o.Response(); res.Status != 403 || res.Header.Get("Retry-After") == "" {
		t.Errorf("banned refusal: %d %v", res.Status, res.Header)
	}
	// Others are not affected.
	if o := judge(e, "GET", "/admin/", "198.51.100.8", "X-API-Key: right"); o.Refused() {
		t.Errorf("another client: %+v", o.Decision)
	}
	// The ban ends.
	now = now.Add(11 * time.Minute)
	if o := judge(e, "GET", "/admin/", "198.51.100.7", "X-API-Key: right"); o.Refused() {
		t.Errorf("after the ban: %+v", o.Decision)
	}
}

func TestReportOnlyRuleLogsWouldDenyAndLetsTheRequestGoOn(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	e, log := newEngine(t, `
rules:
  - name: new-country-block
    when: { ip: [203.0.113.0/24] }
    action: deny
    mode: report
  - name: everything
    when: { path: { prefix: [/] } }
    action: allow
`, &now)
	o := judge(e, "GET", "/page", "203.0.113.9")
	if o.Refused() || o.Decision.Rule != "everything" || o.Decision.Would.Rule != "new-country-block" || o.Decision.Would.Code != "ip_blocked" {
		t.Fatalf("report-only: %+v", o.Decision)
	}
	rec := o.Record()
	if rec.WouldDeny == nil || rec.WouldDeny.Code != "ip_blocked" || rec.WouldDeny.RuleAt != "policy.yaml:3" {
		t.Errorf("record: %+v", rec.WouldDeny)
	}
	if !strings.Contains(rec.Trace[0].Note, "report only: would refuse with ip_blocked") {
		t.Errorf("trace: %+v", rec.Trace)
	}
	if !strings.Contains(log.String(), `"would_deny":{"rule":"new-country-block"`) {
		t.Errorf("not logged (an allowed request with a would-deny is logged):\n%s", log.String())
	}
	if o := judge(e, "GET", "/page", "192.0.2.1"); o.Decision.Would.Code != "" {
		t.Errorf("a request the rule does not match: %+v", o.Decision.Would)
	}
}
