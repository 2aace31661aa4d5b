package config

// ForwardAuth is the forward-auth decision service: nginx auth_request,
// Traefik ForwardAuth and Caddy forward_auth ask it about each request.
type ForwardAuth struct {
	Pos Pos
	// Listen is its address, such as 127.0.0.1:9091.
	Listen Scalar `yaml:"listen"`
	// Peers are the proxies allowed to ask (CIDRs); the original request's
	// X-Forwarded-* / X-Original-* headers are believed only from them.
	// Required: a decision service that believed anyone's description of
	// "the original request" would let a client describe an allowed one.
	Peers []Scalar `yaml:"peers"`
}

// ExtAuthz is the Envoy ext_authz v3 gRPC decision service.
type ExtAuthz struct {
	Pos Pos
	// Listen is its address, such as 127.0.0.1:9191.
	Listen Scalar `yaml:"listen"`
	// Peers are the Envoys allowed to ask (CIDRs). Required, as for
	// forward_auth.
	Peers []Scalar `yaml:"peers"`
	// MaxRequestBytes bounds one CheckRequest message (with the body Envoy
	// buffered, when with_request_body is on); default 4 MiB.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
}

// Admin is the admin listener: metrics, health, the admin page, bans.
type Admin struct {
	Pos Pos
	// Listen is its address; loopback by default (127.0.0.1:9090).
	Listen Scalar `yaml:"listen"`
	// TokenFile holds the bearer token every admin path but /healthz and
	// /readyz requires (relative paths are from the config's folder).
	// Without it a token is generated at start and printed once.
	TokenFile Scalar `yaml:"token_file"`
}
