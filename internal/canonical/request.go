// Package canonical turns a raw HTTP request into the facts rules judge: the
// client IP (through trusted proxies only) and one canonical path. Whatever
// the rules see is what the handler serves and the upstream receives.
package canonical

import (
	"crypto/x509"
	"net/http"
	"net/netip"
)

// Request is the canonical view of an HTTP request. It is built once per
// request, before any rule runs, and never changes afterwards.
type Request struct {
	Method string
	// Host is the requested host, lower-cased, without port.
	Host string
	// Path is the decoded, normalized path: it starts with "/", holds no dot
	// segments, no repeated slashes, no NUL and only valid UTF-8.
	Path string
	// LowerPath is Path lower-cased, for case-insensitive rules; it is Path
	// itself when Path has no upper-case letters.
	LowerPath string
	// EscapedPath is Path percent-encoded for the wire: the exact path sent
	// upstream.
	EscapedPath string
	RawQuery    string
	// ClientIP is the address rules judge: the peer, or, when the peer is a
	// trusted proxy, the nearest untrusted address it reported.
	ClientIP netip.Addr
	// PeerIP is the address of the TCP peer.
	PeerIP netip.Addr
	// PeerTrusted reports whether PeerIP is among trusted_proxies; identity
	// headers set by upstream authenticators are honoured only then.
	PeerTrusted bool
	Header      http.Header
	TLS         bool
	// VerifiedBot names the verified bot making the request ("" for none).
	// Proving one takes DNS lookups, so it is the one fact not made here:
	// the engine fills it in before the rules run, when a rule asks.
	VerifiedBot string
	// ClientCerts are the certificates the TLS client presented, leaf
	// first, as sent: not verified (identity.ClientCert verifies them
	// against the configured CAs, with the request's time).
	ClientCerts []*x509.Certificate
	// StrippedHeaders names, sorted, the override headers (see
	// CheckOverrideHeaders) that were deleted from Header because this peer
	// may not set them; the decision log lists them.
	StrippedHeaders []string
}
