package importtest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/importer"
	"github.com/warden-gateway/warden/internal/policy"
)

// CheckOutput requires that whatever the importer writes is a policy that
// parses and compiles (files it names may be missing, which only the
// identity check reads).
func CheckOutput(t *testing.T, dir string, res *importer.Result) {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(dir, "out.yaml"), res.YAML)
	if err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, res.YAML)
	}
	if _, err := policy.Compile(cfg); err != nil && !strings.Contains(err.Error(), "htpasswd") {
		t.Fatalf("output does not compile: %v\n%s", err, res.YAML)
	}
	for _, n := range res.Notes {
		if n.Kind != importer.NotTranslated && n.Kind != importer.Approximate || n.Why == "" {
			t.Fatalf("malformed note %+v", n)
		}
	}
}
