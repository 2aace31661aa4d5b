package engine_test

// What the policy's background work runs into (a key server that cannot be
// reached, a database that breaks on reload) reaches the operator's log:
// the logger given to Build is handed to everything Build starts.

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls the log until it holds all of want, or fails after limit.
func waitFor(t *testing.T, log *lockedBuffer, limit time.Duration, want ...string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		all := true
		for _, w := range want {
			if !strings.Contains(log.String(), w) {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say %q within %v:\n%s", want, limit, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestUnreachableJWKSIsLogged(t *testing.T) {
	src := `identity:
  jwt:
    jwks_url: http://` + closedPort(t) + `/jwks.json
    issuer: https://issuer.example
    audiences: [api]
    algorithms: [ES256]
rules:
  - name: api
    when: { path: { prefix: [/api/] } }
    require: { authenticated: true }
    action: allow
`
	cfg, err := config.Parse("policy.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	rt, err := engine.Build(cfg, engine.Options{Logger: slog.New(slog.NewJSONHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rt.Start(ctx)
	waitFor(t, &log, 10*time.Second, "JWKS refresh failed", "/jwks.json", "connection refused")
}

func TestBrokenGeoIPReloadIsLogged(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "country.mmdb")
	good, err := os.ReadFile(filepath.Join("..", "match", "geo", "testdata", "GeoIP2-Country-Test.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, good, 0o644); err != nil {
		t.Fatal(err)
	}
	src := `geo: { country_db: ` + db + `, reload_interval: 50ms }
rules:
  - name: no-gb
    when: { country: [GB] }
    action: deny
`
	cfg, err := config.Parse(filepath.Join(dir, "policy.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	rt, err := engine.Build(cfg, engine.Options{Logger: slog.New(slog.NewJSONHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rt.Start(ctx)
	// The file is replaced by something that is no database; the last good
	// copy stays in use, and the operator is told.
	time.Sleep(100 * time.Millisecond)
	if err := os.WriteFile(db, []byte("this is not an mmdb file"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(db, later, later)
	waitFor(t, &log, 10*time.Second, "geo database reload failed", "country.mmdb")
}
