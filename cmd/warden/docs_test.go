package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
)

// TestEveryConfigKeyIsDocumented walks the config structs' yaml tags (what
// the decoder accepts) and fails for any key docs/config.md does not name
// by its full path in backquotes.
func TestEveryConfigKeyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := configKeys()
	if len(keys) < 100 {
		t.Fatalf("only %d keys found: the walk is broken", len(keys))
	}
	for _, k := range keys {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/config.md does not document `%s`", k)
		}
	}
}

// TestSchemaHasEveryKey: the schema names every key, and no others.
func TestSchemaHasEveryKey(t *testing.T) {
	b, err := json.Marshal(policySchema())
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	json.Unmarshal(b, &s)
	var walk func(node any, prefix string, out map[string]bool)
	walk = func(node any, prefix string, out map[string]bool) {
		m, _ := node.(map[string]any)
		if m == nil {
			return
		}
		if alts, ok := m["anyOf"].([]any); ok {
			for _, a := range alts {
				am, _ := a.(map[string]any)
				if am["type"] == "array" {
					walk(am["items"], prefix+"[]", out)
				}
			}
			return
		}
		if props, ok := m["properties"].(map[string]any); ok {
			if m["additionalProperties"] != false {
				t.Errorf("%s accepts unknown keys", prefix)
			}
			for k, v := range props {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				out[p] = true
				walk(v, p, out)
			}
			return
		}
		if ap, ok := m["additionalProperties"].(map[string]any); ok {
			walk(ap, prefix+".*", out)
		}
	}
	got := map[string]bool{}
	walk(s, "", got)
	for _, k := range configKeys() {
		if !got[k] {
			t.Errorf("schema lacks %s", k)
		}
		delete(got, k)
	}
	for k := range got {
		t.Errorf("schema has %s, which the decoder does not accept", k)
	}
}

// TestDemoPolicyTemplate: the printed template has no placeholders left
// and decodes without a shape error.
func TestDemoPolicyTemplate(t *testing.T) {
	tpl := demoTemplate()
	if strings.Contains(tpl, "{{") || strings.Contains(tpl, "embed:") {
		t.Errorf("template keeps placeholders:\n%s", tpl)
	}
	if _, err := config.Parse("demo.yaml", []byte(tpl)); err != nil {
		t.Errorf("template does not decode: %v", err)
	}
}

func TestCheckWarnings(t *testing.T) {
	src := `
identity:
  htpasswd: { file: users, roles: { alice: [ops] } }
rules:
  - name: ops
    require: { roles_any: [ops, admin] }
  - name: img
    when: { referer_not_in: [none, server_names] }
    action: deny
`
	cfg, err := config.Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ws := policyWarnings(cfg)
	if len(ws) != 2 || !strings.Contains(ws[0].Error(), `p.yaml:6: rule "ops" requires role "admin"`) || !strings.Contains(ws[1].Error(), "p.yaml:8") {
		t.Errorf("warnings: %v", ws)
	}
	cfg.ServerNames = []config.Scalar{{Value: "example.com"}}
	cfg.Identity.Htpasswd.Roles["bob"] = []config.Scalar{{Value: "admin"}}
	if ws := policyWarnings(cfg); len(ws) != 0 {
		t.Errorf("warnings after the fix: %v", ws)
	}
}
