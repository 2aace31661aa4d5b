package bypass

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/internal/identity"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the decision records logged.
func (l *lockedBuffer) records(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.b.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "decision" {
			out = append(out, m)
		}
	}
	return out
}

// TestOverrideHeadersAreLogged: the decision log (default: refusals only)
// holds both what happens to a client's override header: the refusal,
// naming the header, and the stripping, naming the headers stripped, on a
// request that was otherwise allowed.
func TestOverrideHeadersAreLogged(t *testing.T) {
	up := newLenient(t)
	cfg, err := config.Parse("bypass.yaml", []byte(fmt.Sprintf(policy, keyHashAdmin, identity.HashKey(userKey), up.srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	addr := gatewaytest.Start(t, cfg, slog.New(slog.NewJSONHandler(&logs, nil)), nil).Addr

	refused := shape{name: "refused", target: "/public/refused", header: []string{"X-Forwarded-Uri: /admin/secret"}}
	if o := send(t, addr, &refused, "log1"); o.status != 400 || o.code != "bad_request" {
		t.Fatalf("X-Forwarded-Uri from a client: %+v", o)
	}
	stripped := shape{name: "stripped", target: "/public/stripped", header: []string{"X-Forwarded-Port: 8443", "X-Forwarded-Server: forged.example"}}
	if o := send(t, addr, &stripped, "log2"); o.status != 200 {
		t.Fatalf("host overrides from a client: %+v", o)
	}
	if v := up.visits("log2"); len(v) != 1 || len(v[0].Forged) != 0 {
		t.Fatalf("upstream saw %+v", v)
	}
	proxied := shape{name: "trusted", target: "/public/trusted", from: "127.0.0.9", header: []string{"X-Forwarded-Uri: /public/trusted", "X-Forwarded-Port: 443"}}
	if o := send(t, addr, &proxied, "log3"); o.status != 200 {
		t.Fatalf("forward-auth headers from the trusted proxy: %+v", o)
	}

	var sawRefusal, sawStrip bool
	for _, rec := range logs.records(t) {
		where := rec["path"]
		if where == nil {
			where = rec["target"] // refused before the path was made canonical
		}
		switch where {
		case "/public/refused":
			sawRefusal = true
			if rec["code"] != "bad_request" || !strings.Contains(fmt.Sprint(rec["reason"]), "X-Forwarded-Uri") {
				t.Errorf("refusal record does not name the header: %v", rec)
			}
		case "/public/stripped":
			sawStrip = true
			if rec["action"] != "allow" || fmt.Sprint(rec["dropped_headers"]) != "[X-Forwarded-Port X-Forwarded-Server]" {
				t.Errorf("stripping record: %v", rec)
			}
		case "/public/trusted":
			t.Errorf("nothing was stripped from the trusted proxy, yet a record was logged: %v", rec)
		}
	}
	if !sawRefusal || !sawStrip {
		t.Errorf("refusal logged: %v, stripping logged: %v\n%s", sawRefusal, sawStrip, logs.b.String())
	}
}
