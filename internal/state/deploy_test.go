package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// proposedPolicy is the part of the policy syntax proposed for issue 14 that
// this package reads: the deploy examples must stay readable by it.
type proposedPolicy struct {
	State struct {
		Store   string `yaml:"store"`
		OnError string `yaml:"on_error"`
		Redis   struct {
			Addr     string `yaml:"addr"`
			Timeout  string `yaml:"timeout"`
			Cooldown string `yaml:"cooldown"`
		} `yaml:"redis"`
	} `yaml:"state"`
	Rules []struct {
		Name      string `yaml:"name"`
		OnError   string `yaml:"on_error"`
		RateLimit *struct {
			Requests int    `yaml:"requests"`
			Per      string `yaml:"per"`
			Burst    int    `yaml:"burst"`
			Key      string `yaml:"key"`
		} `yaml:"rate_limit"`
	} `yaml:"rules"`
	Bans []struct {
		Name     string   `yaml:"name"`
		Count    []string `yaml:"count"`
		After    int      `yaml:"after"`
		Within   string   `yaml:"within"`
		BanFor   string   `yaml:"ban_for"`
		Escalate string   `yaml:"escalate"`
	} `yaml:"bans"`
}

func TestDeployExamplesUseTheProposedSyntax(t *testing.T) {
	root := filepath.Join("..", "..", "deploy")
	policies := map[string][]byte{}
	compose, err := os.ReadFile(filepath.Join(root, "compose", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policies["compose/policy.yaml"] = compose
	k8s, err := os.ReadFile(filepath.Join(root, "kubernetes", "warden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(k8s)))
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if doc.Kind == "ConfigMap" {
			policies["kubernetes ConfigMap"] = []byte(doc.Data["policy.yaml"])
		}
	}
	if len(policies) != 2 {
		t.Fatalf("found %d policies, want the Compose one and the ConfigMap's", len(policies))
	}
	for name, src := range policies {
		var p proposedPolicy
		if err := yaml.Unmarshal(src, &p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.State.Store != "redis" || p.State.Redis.Addr == "" {
			t.Errorf("%s: state is not a shared Redis: %+v", name, p.State)
		}
		if _, err := ParseFailMode(p.State.OnError); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for _, d := range []string{p.State.Redis.Timeout, p.State.Redis.Cooldown} {
			if _, err := ParseDuration(d); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		limits, bans := 0, 0
		for _, r := range p.Rules {
			if _, err := ParseFailMode(r.OnError); err != nil {
				t.Errorf("%s rule %s: %v", name, r.Name, err)
			}
			if r.RateLimit == nil {
				continue
			}
			limits++
			per, err := ParseDuration(r.RateLimit.Per)
			if err != nil {
				t.Errorf("%s rule %s: %v", name, r.Name, err)
			}
			if err := (Limit{Rate: r.RateLimit.Requests, Per: per, Burst: r.RateLimit.Burst}).Validate(); err != nil {
				t.Errorf("%s rule %s: %v", name, r.Name, err)
			}
			if _, err := ParseKeySpec(r.RateLimit.Key); err != nil {
				t.Errorf("%s rule %s: %v", name, r.Name, err)
			}
		}
		for _, b := range p.Bans {
			bans++
			within, err1 := ParseDuration(b.Within)
			banFor, err2 := ParseDuration(b.BanFor)
			factor, max, err3 := ParseEscalation(b.Escalate)
			for _, err := range []error{err1, err2, err3} {
				if err != nil {
					t.Errorf("%s ban %s: %v", name, b.Name, err)
				}
			}
			pol := BanPolicy{Name: b.Name, After: b.After, Within: within, BanFor: banFor, Factor: factor, MaxBan: max}
			if err := pol.Validate(); err != nil {
				t.Errorf("%s ban %s: %v", name, b.Name, err)
			}
			if len(b.Count) == 0 {
				t.Errorf("%s ban %s counts no refusal codes", name, b.Name)
			}
		}
		if limits == 0 || bans == 0 {
			t.Errorf("%s: %d rate limits and %d bans; the example should show both", name, limits, bans)
		}
	}
}
