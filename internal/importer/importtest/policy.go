package importtest

import (
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/importer"
)

func WriteFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func Itoa(n int) string { return strconv.Itoa(n) }

// DecideFor asks the compiled policy about GET path from ip, with no
// credentials: 0 when allowed, else the refusal's status.
func DecideFor(t *testing.T, rt *gateway.Runtime, path, ip string) int {
	t.Helper()
	req := &canonical.Request{Method: "GET", Host: "example.com", Path: path, LowerPath: strings.ToLower(path),
		EscapedPath: path, ClientIP: netip.MustParseAddr(ip), PeerIP: netip.MustParseAddr(ip), Header: http.Header{}}
	d := rt.Policy.Decide(req, time.Unix(1_800_000_000, 0), nil)
	if d.Allowed() {
		return 0
	}
	if d.Status != 0 {
		return d.Status
	}
	return d.Code.Status()
}

func MustMatch(t *testing.T, re, s string) bool {
	t.Helper()
	ok, err := regexp.MatchString(re, s)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// CompileImported checks that an imported policy passes what `warden check`
// checks, with the YAML written next to base so relative paths resolve.
func CompileImported(t *testing.T, base string, res *importer.Result) *gateway.Runtime {
	t.Helper()
	cfgPath := filepath.Join(base, "imported.yaml")
	cfg, err := config.Parse(cfgPath, res.YAML)
	if err != nil {
		t.Fatalf("imported config does not parse: %v\n%s", err, Numbered(res.YAML))
	}
	rt, err := gateway.Build(cfg, gateway.Options{}, nil)
	if err != nil {
		t.Fatalf("imported config does not compile: %v\n%s", err, Numbered(res.YAML))
	}
	t.Cleanup(rt.Close)
	return rt
}

func NotesText(res *importer.Result) string {
	var b strings.Builder
	for _, n := range res.Notes {
		b.WriteString(n.String() + "\n")
	}
	return b.String()
}
