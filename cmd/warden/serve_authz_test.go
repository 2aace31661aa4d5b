package main

// `warden serve` runs the listeners one config names: here forward-auth and
// ext_authz without the gateway, then a SIGHUP that changes the peers
// reaches both services at once.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/warden-gateway/warden/internal/authz/authztest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestServeRunsTheDecisionServices(t *testing.T) {
	dir := t.TempDir()
	faAddr, eaAddr := freeAddr(t), freeAddr(t)
	policy := func(peers string) {
		src := fmt.Sprintf(`rules:
  - name: private
    when: { path: { prefix: [/private/] } }
    action: deny
forward_auth: { listen: %q, peers: [%s] }
ext_authz: { listen: %q, peers: [%s] }
`, faAddr, peers, eaAddr, peers)
		if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	policy("127.0.0.1/32")
	cmd := wardenCmd(t, dir, "serve", "--config", "policy.yaml")
	var stderr authztest.RecordLog
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c1, err1 := net.Dial("tcp", faAddr)
		c2, err2 := net.Dial("tcp", eaAddr)
		if err1 == nil && err2 == nil {
			c1.Close()
			c2.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("warden serve exited:\n%s", stderr.Text())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the services are not listening after 20s:\n%s", stderr.Text())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// No listen: in the config, so no gateway on the default address.
	if strings.Contains(stderr.Text(), "serving policy.yaml on") {
		t.Errorf("the gateway runs though the config names no listen:\n%s", stderr.Text())
	}

	forward := func(uri string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+faAddr+"/auth", nil)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", uri)
		req.Header.Set("X-Forwarded-For", "192.0.2.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	conn, err := grpc.NewClient(eaAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	check := func(path string) int {
		resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: "192.0.2.1"}}}},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path, Host: "h"}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if d := resp.GetDeniedResponse(); d != nil {
			return int(d.GetStatus().GetCode())
		}
		return 200
	}
	if got := [4]int{forward("/pub"), forward("/private/x"), check("/pub"), check("/private/x")}; got != [4]int{200, 403, 200, 403} {
		t.Fatalf("forward-auth and ext_authz answered %v, want [200 403 200 403]\n%s", got, stderr.Text())
	}
	if resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v %v", resp, err)
	}

	// A reload that no longer lists 127.0.0.1 reaches both services.
	policy("10.0.0.0/8")
	cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(20 * time.Second)
	for forward("/pub") != http.StatusForbidden || check("/pub") != http.StatusForbidden {
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP, 127.0.0.1 is still a peer:\n%s", stderr.Text())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
