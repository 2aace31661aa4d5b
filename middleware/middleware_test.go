package middleware_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/middleware"
)

func TestWrapGuardsAHandler(t *testing.T) {
	policy := `
identity:
  api_keys:
    keys:
      - { id: ada, sha256: "` + identity.HashKey("ada-key") + `", roles: [admin] }
      - { id: bob, sha256: "` + identity.HashKey("bob-key") + `", roles: [user] }
rules:
  - name: admin
    when: { path: { prefix: [/admin/] } }
    require: { roles_any: [admin] }
    action: allow
  - name: hidden
    when: { path: { prefix: [/internal/] } }
    action: conceal
`
	g, err := middleware.New("policy.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, roles, _ := middleware.Caller(r.Context())
		io.WriteString(w, r.URL.Path+" "+who+" "+strings.Join(roles, ","))
	})
	srv := httptest.NewServer(g.Wrap(app))
	defer srv.Close()

	get := func(path, key string) (int, string, http.Header) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Accept", "application/json")
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if st, body, _ := get("/admin/x", "ada-key"); st != 200 || body != "/admin/x ada admin" {
		t.Errorf("admin: %d %q", st, body)
	}
	st, body, h := get("/admin/x", "bob-key")
	var p map[string]any
	if err := json.Unmarshal([]byte(body), &p); err != nil || st != 403 || p["code"] != "role_required" ||
		p["reason"] != "account lacks role: admin" || p["request_id"] != h.Get("X-Request-Id") {
		t.Errorf("user: %d %s", st, body)
	}
	if st, _, h := get("/admin/x", ""); st != 401 || h.Get("WWW-Authenticate") == "" {
		t.Errorf("anonymous: %d, WWW-Authenticate %q", st, h.Get("WWW-Authenticate"))
	}
	if st, _, _ := get("/internal/x", "ada-key"); st != 404 {
		t.Errorf("concealed: %d", st)
	}
	if st, _, _ := get("/x/%2e%2e/%2e%2e/admin/", ""); st != 400 {
		t.Errorf("escape above root: %d", st)
	}
	// The handler sees the canonical path, the one the rules judged.
	if st, body, _ := get("/pub//a/./b", ""); st != 200 || !strings.HasPrefix(body, "/pub/a/b ") {
		t.Errorf("canonical path: %d %q", st, body)
	}
}

func TestLoadReportsPositions(t *testing.T) {
	_, err := middleware.New("bad.yaml", []byte("rules:\n  - name: x\n    when: { ip: [10.0.0.300/8] }\n    action: deny\n"))
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:3") {
		t.Fatalf("error %v, want a bad.yaml:3 position", err)
	}
}
