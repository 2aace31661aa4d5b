package identity

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/warden-gateway/warden/internal/canonical"
)

func TestTrustedHeaders(t *testing.T) {
	h := NewHeaders(HeaderConfig{EmailHeader: "x-forwarded-email"})
	headers := http.Header{}
	headers.Set("X-Forwarded-User", " alice ")
	headers.Set("X-Forwarded-Groups", "admin, ops,,  viewers ")
	headers.Set("X-Forwarded-Email", "alice@example.com")

	// From an untrusted peer the headers are ignored entirely.
	if p, err := h.Authenticate(&canonical.Request{Header: headers, PeerTrusted: false}, t0); p != nil || err != nil {
		t.Fatalf("untrusted peer: p=%+v err=%v, want nil, nil", p, err)
	}

	p, err := h.Authenticate(&canonical.Request{Header: headers, PeerTrusted: true}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "alice" || p.Method != "header" || !slices.Equal(p.Roles, []string{"admin", "ops", "viewers"}) || p.Claims["email"] != "alice@example.com" {
		t.Fatalf("principal = %+v", p)
	}

	// Groups without a user is no identity.
	noUser := http.Header{"X-Forwarded-Groups": {"admin"}}
	if p, err := h.Authenticate(&canonical.Request{Header: noUser, PeerTrusted: true}, t0); p != nil || err != nil {
		t.Fatalf("groups only: p=%+v err=%v", p, err)
	}
	for name, hv := range map[string][]string{"two users": {"alice", "mallory"}, "empty user": {"  "}} {
		r := &canonical.Request{Header: http.Header{"X-Forwarded-User": hv}, PeerTrusted: true}
		if p, err := h.Authenticate(r, t0); p != nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: p=%+v err=%v, want ErrInvalid", name, p, err)
		}
	}
	if h.Challenge(false) != "" {
		t.Errorf("trusted headers offer no challenge, got %q", h.Challenge(false))
	}
	if got := h.HeaderNames(); !slices.Equal(got, []string{"X-Forwarded-User", "X-Forwarded-Groups", "X-Forwarded-Email"}) {
		t.Errorf("header names = %v", got)
	}
}

func TestTrustedHeadersCustomNames(t *testing.T) {
	h := NewHeaders(HeaderConfig{UserHeader: "remote-user", GroupsHeader: "Remote-Groups"})
	r := &canonical.Request{Header: http.Header{}, PeerTrusted: true}
	r.Header.Set("Remote-User", "bob")
	r.Header.Set("Remote-Groups", "dev")
	r.Header.Set("X-Forwarded-User", "alice") // not the configured header
	p, err := h.Authenticate(r, t0)
	if err != nil || p.ID != "bob" || !slices.Equal(p.Roles, []string{"dev"}) || p.Claims != nil {
		t.Fatalf("p=%+v err=%v", p, err)
	}
}
