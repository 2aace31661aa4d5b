package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportHelperProcess is not a test: it is `warden import` when the
// test binary re-executes itself with WARDEN_TEST_RUN_IMPORT=1, so that
// cmdImport runs as a process with real stdout, stderr and exit code.
func TestImportHelperProcess(t *testing.T) {
	if os.Getenv("WARDEN_TEST_RUN_IMPORT") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(cmdImport(args))
}

func runImport(t *testing.T, dir string, args ...string) result {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"-test.run=^TestImportHelperProcess$", "--"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WARDEN_TEST_RUN_IMPORT=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("warden import %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

func TestImportNginx(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "www")
	if err := os.MkdirAll(site, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := "events {}\nhttp {\n  server {\n    root " + site + ";\n    location /admin/ {\n      allow 10.0.0.0/8;\n      deny all;\n    }\n    rewrite ^/old /new;\n  }\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runImport(t, dir, "nginx", "nginx.conf")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"not_ip: [10.0.0.0/8]", "# nginx.conf:6: location /admin/: allow 10.0.0.0/8 (line 6); deny all (line 7)", "root: " + site} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, want := range []string{
		"nginx.conf:1: not translated: events {...} (not an access-control setting)\n",
		"nginx.conf:9: not translated: rewrite ^/old /new (rewriting and file lookup beyond root and index are not translated)\n",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	// The output is a policy `warden check` accepts.
	if err := os.WriteFile(filepath.Join(dir, "warden.yaml"), []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadRuntime(filepath.Join(dir, "warden.yaml")); err != nil {
		t.Errorf("imported policy does not check: %v\n%s", err, r.stdout)
	}
}

func TestImportHtaccess(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "private"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "private", ".htaccess"), []byte("Require ip 192.0.2.0/24\nSetEnv A b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runImport(t, dir, "htaccess", "--root", dir, "private/.htaccess")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "not_ip: [192.0.2.0/24]") || !strings.Contains(r.stdout, "prefix: [/private/]") {
		t.Errorf("unexpected output:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "private/.htaccess:2: not translated: SetEnv A b (not an access-control setting)") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

func TestImportUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage:"},
		{[]string{"nginx"}, 2, "usage:"},
		{[]string{"htaccess", "x"}, 2, "usage:"},
		{[]string{"caddy", "x"}, 2, `unknown source "caddy"`},
		{[]string{"nginx", "missing.conf"}, 1, "read nginx config"},
		{[]string{"htaccess", "--root", dir, "/elsewhere/.htaccess"}, 1, "read apache config"},
	} {
		r := runImport(t, dir, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("import %v: exit %d, stderr %q; want exit %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
		if r.stdout != "" {
			t.Errorf("import %v wrote to stdout: %q", tc.args, r.stdout)
		}
	}
}

// TestImportThroughMain runs `warden import` as users do.
func TestImportThroughMain(t *testing.T) {
	dir := t.TempDir()
	r := warden(t, dir, "import")
	if r.code != 2 || !strings.Contains(r.stderr, "warden import nginx FILE") {
		t.Errorf("warden import: exit %d, stderr %q", r.code, r.stderr)
	}
}
