package importer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/policy"
)

// checkOutput requires that whatever the importer writes is a policy that
// parses and compiles (files it names may be missing, which only the
// identity check reads).
func checkOutput(t *testing.T, dir string, res *Result) {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(dir, "out.yaml"), res.YAML)
	if err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, res.YAML)
	}
	if _, err := policy.Compile(cfg); err != nil && !strings.Contains(err.Error(), "htpasswd") {
		t.Fatalf("output does not compile: %v\n%s", err, res.YAML)
	}
	for _, n := range res.Notes {
		if n.Kind != NotTranslated && n.Kind != Approximate || n.Why == "" {
			t.Fatalf("malformed note %+v", n)
		}
	}
}

func FuzzNginx(f *testing.F) {
	for _, seed := range []string{"testdata/nginx/site.conf"} {
		b, err := os.ReadFile(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, c := range nginxCases {
		f.Add("server {\n" + c.nginx + "\n}\n")
	}
	f.Fuzz(func(t *testing.T, text string) {
		dir := t.TempDir()
		p := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Nginx(p)
		if err != nil {
			return
		}
		checkOutput(t, dir, res)
	})
}

func FuzzHtaccess(f *testing.F) {
	for _, seed := range []string{"testdata/site/.htaccess", "testdata/site/private/.htaccess"} {
		b, err := os.ReadFile(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, c := range apacheCases {
		for _, text := range c.htaccess {
			f.Add(text)
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		dir := t.TempDir()
		p := filepath.Join(dir, ".htaccess")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Htaccess(dir, p)
		if err != nil {
			return
		}
		checkOutput(t, dir, res)
	})
}
