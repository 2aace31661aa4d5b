package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReplayReportsWhatAChangedPolicyDecidesDifferently(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "new.yaml")
	if err := os.WriteFile(cfg, []byte(`
rules:
  - name: block-doc-net
    when: { ip: [203.0.113.0/24] }
    action: deny
  - name: reports-open-now
    when: { path: { prefix: [/reports/] } }
    action: allow
  - name: hide-internal
    when: { path: { prefix: [/internal/] } }
    action: conceal
`), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, err := loadRuntime(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	log := strings.Join([]string{
		`{"msg":"decision","method":"GET","host":"x","action":"allow","path":"/a","client_ip":"203.0.113.5"}`,
		`{"msg":"decision","method":"GET","host":"x","action":"deny","code":"path_forbidden","path":"/reports/q3","client_ip":"198.51.100.1"}`,
		`{"msg":"decision","method":"GET","host":"x","action":"deny","code":"path_forbidden","path":"/internal/x","client_ip":"198.51.100.1"}`,
		`{"msg":"decision","method":"GET","host":"x","action":"allow","path":"/b","client_ip":"198.51.100.1"}`,
		`{"msg":"waf","request_id":"z"}`,
		`GET http://x/%2e%2e/ 198.51.100.1`,
		`not a request line at all`,
	}, "\n")
	sum, err := replay(rt, strings.NewReader(log), time.Unix(1_800_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requests != 5 || sum.Unchanged != 1 {
		t.Errorf("requests %d unchanged %d, want 5 and 1", sum.Requests, sum.Unchanged)
	}
	if len(sum.NewlyRefused) != 2 || sum.NewlyRefused[0].Rule != "block-doc-net" || !strings.Contains(sum.NewlyRefused[1].After, "bad_request") {
		t.Errorf("newly refused: %+v", sum.NewlyRefused)
	}
	if len(sum.NewlyAllowed) != 1 || sum.NewlyAllowed[0].Rule != "reports-open-now" {
		t.Errorf("newly allowed: %+v", sum.NewlyAllowed)
	}
	if len(sum.CodeChanged) != 1 || sum.CodeChanged[0].After != "conceal not_found" {
		t.Errorf("code changed: %+v", sum.CodeChanged)
	}
	if len(sum.Skipped) != 1 || !strings.Contains(sum.Skipped[0], "line 7") {
		t.Errorf("skipped: %q", sum.Skipped)
	}
}
