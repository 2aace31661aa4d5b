// Package authz holds what warden's decision services share: the compiled
// forward_auth and ext_authz sections (their addresses and the peers that
// may ask). The services themselves are one thin package per front end,
// forwardauth (nginx, Traefik, Caddy, Envoy's HTTP ext_authz) and extauthz
// (Envoy's gRPC ext_authz); both judge with the engine, as the gateway does.
//
// This package imports no front end and not the engine, so the engine's
// Build can validate these sections with the rest of the config.
package authz

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/match/ipmatch"
)

// DefaultMaxCheckBytes bounds one ext_authz CheckRequest when the config
// does not: gRPC's own default receive limit.
const DefaultMaxCheckBytes = 4 << 20

// Services are the decision services one config asks for.
type Services struct {
	ForwardAuth *Service
	ExtAuthz    *Service
}

// Service is one decision service: where it listens and who may ask.
type Service struct {
	Listen string
	// Peers are the proxies whose description of the original request is
	// believed. Never nil for a compiled service.
	Peers *ipmatch.Set
	// MaxRequestBytes bounds one request message (ext_authz).
	MaxRequestBytes int64
}

// PeerAllowed reports whether addr ("ip:port" or "ip") is a configured
// peer. An address that cannot be read is not one.
func (s *Service) PeerAllowed(addr string) bool {
	if s == nil || s.Peers == nil {
		return false
	}
	a, err := netip.ParseAddrPort(addr)
	if err == nil {
		return s.Peers.Contains(a.Addr().Unmap())
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && s.Peers.Contains(ip.Unmap())
}

// Compile validates the forward_auth and ext_authz sections, with positions.
// A section that is absent compiles to nil: no listener.
func Compile(cfg *config.Config) (*Services, config.Errors) {
	var errs config.Errors
	out := &Services{}
	if fa := cfg.ForwardAuth; fa != nil {
		out.ForwardAuth = compileService("forward_auth", fa.Pos, fa.Listen, fa.Peers, &errs)
	}
	if ea := cfg.ExtAuthz; ea != nil {
		s := compileService("ext_authz", ea.Pos, ea.Listen, ea.Peers, &errs)
		switch {
		case ea.MaxRequestBytes < 0:
			errs = append(errs, &config.Error{Pos: ea.Pos, Msg: fmt.Sprintf("ext_authz.max_request_bytes must be positive, not %d", ea.MaxRequestBytes)})
		case ea.MaxRequestBytes == 0:
			s.MaxRequestBytes = DefaultMaxCheckBytes
		default:
			s.MaxRequestBytes = ea.MaxRequestBytes
		}
		out.ExtAuthz = s
	}
	if out.ForwardAuth != nil && out.ExtAuthz != nil && out.ForwardAuth.Listen == out.ExtAuthz.Listen && !anyPort(out.ForwardAuth.Listen) {
		errs = append(errs, &config.Error{Pos: cfg.ExtAuthz.Listen.Pos, Msg: fmt.Sprintf("ext_authz.listen %s is forward_auth's address too", out.ExtAuthz.Listen)})
	}
	return out, errs
}

func compileService(section string, pos config.Pos, listen config.Scalar, peers []config.Scalar, errs *config.Errors) *Service {
	s := &Service{Listen: listen.Value, Peers: &ipmatch.Set{}}
	if listen.Value == "" {
		*errs = append(*errs, &config.Error{Pos: pos, Msg: section + " needs listen (an address such as 127.0.0.1:9091)"})
	} else if _, _, err := net.SplitHostPort(listen.Value); err != nil {
		*errs = append(*errs, &config.Error{Pos: listen.Pos, Msg: fmt.Sprintf("%s.listen %q: %v", section, listen.Value, err)})
	}
	if len(peers) == 0 {
		*errs = append(*errs, &config.Error{Pos: pos, Msg: section + " needs peers: the proxies that may ask (CIDRs)",
			Hint: "the original request is described in headers; believed from anyone, a client could describe an allowed one"})
	}
	for _, p := range peers {
		pfx, err := ipmatch.ParsePrefix(p.Value)
		if err != nil {
			*errs = append(*errs, &config.Error{Pos: p.Pos, Msg: fmt.Sprintf("%s.peers: %v", section, err)})
			continue
		}
		s.Peers.Add(pfx)
	}
	return s
}

// anyPort reports an address whose port the system picks (":0"), which two
// listeners can share.
func anyPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return addr == "" || err == nil && port == "0"
}
