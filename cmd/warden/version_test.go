package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionLine(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	cases := []struct {
		name               string
		bi                 *debug.BuildInfo
		verOver, commitOvr string
		want               string
	}{
		{"go install of a tag: no vcs settings",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}}, "", "",
			"warden v1.2.3 commit unknown go1.26.8"},
		{"go install of a commit: the pseudo-version names it",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261205082700-7a7c3ac0ffee"}}, "", "",
			"warden v0.0.0-20261205082700-7a7c3ac0ffee commit 7a7c3ac0ffee go1.26.8"},
		{"pseudo-version after a tag, built dirty",
			&debug.BuildInfo{Main: debug.Module{Version: "v1.2.4-0.20261205082700-7a7c3ac0ffee+dirty"}}, "", "",
			"warden v1.2.4-0.20261205082700-7a7c3ac0ffee+dirty commit 7a7c3ac0ffee"},
		{"go build in a checkout with VCS stamping",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
				Settings: settings("vcs", "git", "vcs.revision", rev, "vcs.time", "2026-12-05T08:27:00Z", "vcs.modified", "true")}, "", "",
			"warden (devel) commit " + rev + " (modified) 2026-12-05T08:27:00Z go1.26.8"},
		{"-buildvcs=false: nothing known",
			&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "", "",
			"warden (devel) commit unknown"},
		{"no build information at all",
			nil, "", "", "warden (devel) commit unknown"},
		{"-ldflags -X overrides both",
			&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: settings("vcs.revision", rev, "vcs.modified", "true")},
			"v9.9.9", "abc123", "warden v9.9.9 commit abc123"},
		{"a tag that merely looks numeric is not a pseudo-version",
			&debug.BuildInfo{Main: debug.Module{Version: "v2.0.0"}}, "", "",
			"warden v2.0.0 commit unknown"},
	}
	for _, c := range cases {
		if got := versionLine(c.bi, c.verOver, c.commitOvr); got != c.want {
			t.Errorf("%s:\n got  %q\n want %q", c.name, got, c.want)
		}
	}
}

// TestVersionOfABuiltBinary builds warden the way a user does (go build in
// the checkout, VCS stamping on despite GOFLAGS=-buildvcs=false in some
// environments), and once more with the -ldflags -X overrides, and runs
// `warden version` on each.
func TestVersionOfABuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skipf("no git (%v): the commit cannot be checked", err)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	want := strings.TrimSpace(string(head))
	dir := t.TempDir()
	build := func(name string, extra ...string) string {
		exe := filepath.Join(dir, name)
		args := append([]string{"build", "-buildvcs=true", "-o", exe}, extra...)
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(exe, "version").Output()
		if err != nil {
			t.Fatalf("%s version: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse --show-toplevel: %v", err)
	}
	got := build("warden")
	// The go command stamps the commit only when the module root holds a
	// .git directory; a `git worktree` has a .git file, which it does not
	// recognise, so there the commit must be reported as unknown.
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err == nil && fi.IsDir() {
		if !strings.Contains(got, " commit "+want) {
			t.Errorf("warden version = %q, want the checkout's commit %s", got, want)
		}
	} else if !strings.Contains(got, " commit unknown") {
		t.Errorf("in a git worktree (the go command records no commit): warden version = %q, want commit unknown", got)
	} else {
		t.Logf("a git worktree: the go command records no commit, and warden says so: %q", got)
	}
	got = build("warden-x", "-ldflags", "-X main.version=v9.9.9-test -X main.commit=feedface")
	if !strings.HasPrefix(got, "warden v9.9.9-test commit feedface") {
		t.Errorf("with -ldflags -X: warden version = %q", got)
	}
}
