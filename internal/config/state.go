package config

// RateLimit is a rule's rate limit: Requests per Per, Burst at once.
type RateLimit struct {
	Pos      Pos
	Requests int      `yaml:"requests"`
	Per      Duration `yaml:"per"`
	Burst    int      `yaml:"burst"`
	// Key is what is counted: ip (default), ip_prefix, ip_prefix:V4,V6,
	// principal, api_key or header:NAME.
	Key Scalar `yaml:"key"`
	// OnError is what the rule does when a shared store cannot answer:
	// closed (default, 503) or open (the local count decides).
	OnError Scalar `yaml:"on_error"`
}

// Ban is a ban policy: After refusals with one of Count's codes within
// Within ban the client for BanFor, longer for repeat offenders.
type Ban struct {
	Pos    Pos
	Name   Scalar   `yaml:"name"`
	Count  []Scalar `yaml:"count"`
	After  int      `yaml:"after"`
	Within Duration `yaml:"within"`
	BanFor Duration `yaml:"ban_for"`
	// Escalate is "2x" or "2x, max 24h": each further ban is that many
	// times longer.
	Escalate Scalar `yaml:"escalate"`
	// Key is what is banned: ip (default) or ip_prefix[:V4,V6].
	Key Scalar `yaml:"key"`
	// Paths limits the refusals that count to these path prefixes (probes
	// such as /.env); empty counts every path.
	Paths []Scalar `yaml:"paths"`
}

// State says where rate-limit counters and bans live.
type State struct {
	Pos Pos
	// Store is memory (default: this instance) or redis (shared).
	Store Scalar `yaml:"store"`
	Redis *Redis `yaml:"redis"`
	// MaxEntries bounds the in-memory store (and the local fallback).
	MaxEntries int `yaml:"max_entries"`
	// OnError is the default for rules that do not say: closed or open.
	OnError Scalar `yaml:"on_error"`
}

// Redis is a Redis server's address.
type Redis struct {
	Pos      Pos
	Addr     Scalar `yaml:"addr"`
	Username Scalar `yaml:"username"`
	// PasswordFile holds the password (never the config itself).
	PasswordFile Scalar   `yaml:"password_file"`
	DB           int      `yaml:"db"`
	Timeout      Duration `yaml:"timeout"`
}

// Challenge configures the browser challenge: where its signing key lives
// (the same file on every replica), how long a clearance lasts.
type Challenge struct {
	Pos Pos
	// KeyFile holds the HMAC key; generated (mode 0600) when missing.
	KeyFile      Scalar   `yaml:"key_file"`
	ClearanceTTL Duration `yaml:"clearance_ttl"`
	CookieName   Scalar   `yaml:"cookie_name"`
}

// VerifiedBots configures how bots prove who they are.
type VerifiedBots struct {
	Pos Pos
	// Resolver is the DNS server crawler claims are checked with
	// (forward-confirmed reverse DNS), such as 127.0.0.1:53.
	Resolver Scalar `yaml:"resolver"`
	// Agents sign their requests (Web Bot Auth); each names its keys.
	Agents []BotAgent `yaml:"agents"`
}

// BotAgent is a Web Bot Auth agent and the JWKS file of its Ed25519 keys.
type BotAgent struct {
	Pos      Pos
	Agent    Scalar `yaml:"agent"`
	JWKSFile Scalar `yaml:"jwks_file"`
}
