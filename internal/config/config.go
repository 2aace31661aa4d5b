// Package config reads warden's YAML policy into typed values that keep
// their file positions. It only decodes and checks shapes; meaning (CIDRs,
// regexes, shadowed rules) is checked when the policy compiles, with the
// same positions.
package config

import (
	"bytes"
	"fmt"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// Config is the whole policy file.
type Config struct {
	Pos Pos
	// Listen is the gateway address; --listen overrides it.
	Listen string `yaml:"listen"`
	// TrustedProxies are the peers whose client-address and identity
	// headers are believed.
	TrustedProxies  []Scalar `yaml:"trusted_proxies"`
	ClientIPHeaders []Scalar `yaml:"client_ip_headers"`
	Paths           Paths    `yaml:"paths"`
	// Default is what happens when no rule decides: "allow" (default) or
	// "deny".
	Default Scalar `yaml:"default"`
	// ServerNames are this site's host names, for Referer rules that say
	// server_names (as nginx's valid_referers does).
	ServerNames []Scalar          `yaml:"server_names"`
	IPLists     map[string]IPList `yaml:"ip_lists"`
	Identity    Identity          `yaml:"identity"`
	Geo         Geo               `yaml:"geo"`
	Rules       []Rule            `yaml:"rules"`
	Handle      []Handler         `yaml:"handle"`
	Refusals    Refusals          `yaml:"refusals"`
	WAF         *WAF              `yaml:"waf"`
	Limits      Limits            `yaml:"limits"`
	Log         Log               `yaml:"log"`
	// Bans turn repeated refusals into temporary bans (fail2ban-style);
	// State says where counters and bans are kept.
	Bans  []Ban  `yaml:"bans"`
	State *State `yaml:"state"`
	// Challenge configures the browser challenge (action: challenge).
	Challenge *Challenge `yaml:"challenge"`
	// VerifiedBots says how a bot proves itself: crawlers by reverse DNS
	// through this resolver, agents by Web Bot Auth signatures.
	VerifiedBots *VerifiedBots `yaml:"verified_bots"`
	// ForwardAuth, ExtAuthz and Admin are listeners beside the gateway's
	// (see services.go); absent sections run no listener.
	ForwardAuth *ForwardAuth `yaml:"forward_auth"`
	ExtAuthz    *ExtAuthz    `yaml:"ext_authz"`
	Admin       *Admin       `yaml:"admin"`
	// TLS makes listen speak HTTPS (see tls.go).
	TLS *TLS `yaml:"tls"`
	// Incomplete lists the sections ParsePartial found unknown keys in;
	// compile errors about those sections (a missing action, say) follow
	// from the typo and are not reported again.
	Incomplete []Pos `yaml:"-"`
}

// Paths say how request paths are made canonical.
type Paths struct {
	AllowEncodedSlash bool `yaml:"allow_encoded_slash"`
	AllowSemicolon    bool `yaml:"allow_semicolon"`
	AllowBackslash    bool `yaml:"allow_backslash"`
}

// IPList is a named list of CIDRs, inline and from files.
type IPList struct {
	Pos   Pos
	CIDRs []Scalar `yaml:"cidrs"`
	Files []Scalar `yaml:"files"`
}

// Rule is one ordered rule. The first rule that decides wins.
type Rule struct {
	Pos  Pos
	Name Scalar `yaml:"name"`
	When When   `yaml:"when"`
	// Require gates the rule on who is asking.
	Require *Require `yaml:"require"`
	// Expr is a CEL expression that must be true for the rule to match.
	Expr Scalar `yaml:"expr"`
	// Action is allow, deny or conceal. A rule with require and no action
	// only gates: a caller who passes goes on to the next rule.
	Action Scalar `yaml:"action"`
	Status int    `yaml:"status"`
	Code   Scalar `yaml:"code"`
	Reason Scalar `yaml:"reason"`
	// Mode is "enforce" (default) or "report": a report-only rule logs
	// what it would have refused and lets the request go on.
	Mode Scalar `yaml:"mode"`
	// RateLimit charges every request the rule matches; over the limit the
	// request is refused with 429. A rule with a rate limit and no action
	// lets a request within the limit go on to the next rule.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// Challenge sets the proof of work of an action: challenge rule.
	Challenge *RuleChallenge `yaml:"challenge"`
}

// RuleChallenge is a challenge rule's setting.
type RuleChallenge struct {
	Pos Pos
	// Difficulty is the leading zero bits of SHA-256 the browser must find
	// (default 16: well under a second in a browser).
	Difficulty int `yaml:"difficulty"`
}

// When holds a rule's matchers; all given must match.
type When struct {
	Pos           Pos
	Path          *PathMatch `yaml:"path"`
	Methods       []Scalar   `yaml:"methods"`
	Hosts         []Scalar   `yaml:"hosts"`
	IP            []Scalar   `yaml:"ip"`
	IPList        []Scalar   `yaml:"ip_list"`
	NotIP         []Scalar   `yaml:"not_ip"`
	NotIPList     []Scalar   `yaml:"not_ip_list"`
	Country       []Scalar   `yaml:"country"`
	NotCountry    []Scalar   `yaml:"not_country"`
	ASN           []Scalar   `yaml:"asn"`
	UserAgent     *UAMatch   `yaml:"user_agent"`
	RefererNotIn  []Scalar   `yaml:"referer_not_in"`
	OriginNotIn   []Scalar   `yaml:"origin_not_in"`
	Extensions    []Scalar   `yaml:"extensions"`
	Authenticated *bool      `yaml:"authenticated"`
	// VerifiedBot matches requests from verified bots (true) or from
	// anyone else (false); see verified_bots.
	VerifiedBot *bool `yaml:"verified_bot"`
}

// PathMatch matches the canonical path. Patterns in one list are alternatives.
type PathMatch struct {
	Pos    Pos
	Exact  []Scalar `yaml:"exact"`
	Prefix []Scalar `yaml:"prefix"`
	// Glob: '*' matches within a segment, '**' across segments, '?' one
	// character.
	Glob  []Scalar `yaml:"glob"`
	Regex []Scalar `yaml:"regex"`
	// CaseSensitive overrides the default (deny, conceal and require rules
	// match case-insensitively; allow rules case-sensitively).
	CaseSensitive *bool `yaml:"case_sensitive"`
}

// UAMatch matches the User-Agent header.
type UAMatch struct {
	Pos       Pos
	Substring []Scalar `yaml:"substring"`
	Glob      []Scalar `yaml:"glob"`
	Regex     []Scalar `yaml:"regex"`
	// Empty matches a missing or empty User-Agent.
	Empty         bool `yaml:"empty"`
	CaseSensitive bool `yaml:"case_sensitive"`
}

// Require says who may pass.
type Require struct {
	Pos           Pos
	Authenticated bool     `yaml:"authenticated"`
	RolesAny      []Scalar `yaml:"roles_any"`
	RolesAll      []Scalar `yaml:"roles_all"`
	ScopesAny     []Scalar `yaml:"scopes_any"`
	ScopesAll     []Scalar `yaml:"scopes_all"`
	// ClientCert requires the caller to be identified by a valid TLS
	// client certificate (identity.client_cert).
	ClientCert bool `yaml:"client_cert"`
}

// Identity configures authenticators, tried in the order: api_keys, jwt,
// basic (htpasswd), headers.
type Identity struct {
	APIKeys  *APIKeys  `yaml:"api_keys"`
	JWT      *JWT      `yaml:"jwt"`
	Htpasswd *Htpasswd `yaml:"htpasswd"`
	Headers  *Headers  `yaml:"headers"`
	// ClientCert is a TLS client certificate (see tls.go).
	ClientCert *ClientCert `yaml:"client_cert"`
}

// APIKeys holds hashed keys.
type APIKeys struct {
	Pos    Pos
	Header string   `yaml:"header"`
	Bearer *bool    `yaml:"bearer"`
	Keys   []APIKey `yaml:"keys"`
	File   Scalar   `yaml:"file"`
}

// APIKey is one hashed key.
type APIKey struct {
	Pos    Pos
	ID     Scalar   `yaml:"id"`
	SHA256 Scalar   `yaml:"sha256"`
	Roles  []Scalar `yaml:"roles"`
	Scopes []Scalar `yaml:"scopes"`
}

// JWT configures bearer-token verification.
type JWT struct {
	Pos         Pos
	JWKSFile    Scalar   `yaml:"jwks_file"`
	JWKSURL     Scalar   `yaml:"jwks_url"`
	Issuer      Scalar   `yaml:"issuer"`
	Audiences   []Scalar `yaml:"audiences"`
	Algorithms  []Scalar `yaml:"algorithms"`
	Leeway      Duration `yaml:"leeway"`
	RolesClaim  Scalar   `yaml:"roles_claim"`
	ScopesClaim Scalar   `yaml:"scopes_claim"`
	Subject     Scalar   `yaml:"subject_claim"`
	Refresh     Duration `yaml:"refresh"`
}

// Htpasswd configures HTTP Basic against an htpasswd file.
type Htpasswd struct {
	Pos             Pos
	File            Scalar              `yaml:"file"`
	AllowWeakHashes bool                `yaml:"allow_weak_hashes"`
	Roles           map[string][]Scalar `yaml:"roles"`
	Realm           string              `yaml:"realm"`
}

// Headers trusts identity headers from trusted proxies.
type Headers struct {
	Pos          Pos
	UserHeader   string `yaml:"user"`
	GroupsHeader string `yaml:"groups"`
	EmailHeader  string `yaml:"email"`
}

// Geo names the databases for country and ASN rules.
type Geo struct {
	CountryDB Scalar `yaml:"country_db"`
	ASNDB     Scalar `yaml:"asn_db"`
	// OnMissing is the failure mode when a database cannot be read:
	// "closed" (refuse with 503, default) or "open" (the rule does not
	// match).
	OnMissing Scalar `yaml:"on_missing"`
	// ReloadInterval is how often the database files are looked at for a
	// new version (default 60s).
	ReloadInterval Duration `yaml:"reload_interval"`
}

// Handler serves requests under a path prefix, from an upstream or a folder.
type Handler struct {
	Pos Pos
	// Host limits the handler to these host names (exact, or
	// *.example.com for one label): one warden serves several sites. When
	// every handler has a host, a request for any other host is refused.
	Host     []Scalar `yaml:"host"`
	Path     Scalar   `yaml:"path"`
	Upstream Scalar   `yaml:"upstream"`
	// PreserveHost sends the client's Host header upstream.
	PreserveHost bool     `yaml:"preserve_host"`
	Timeout      Duration `yaml:"timeout"`
	// MaxConnections bounds the connections to the upstream (0: none), so
	// a slow upstream cannot make warden open file descriptors without end.
	MaxConnections int      `yaml:"max_connections"`
	Root           Scalar   `yaml:"root"`
	Index          []Scalar `yaml:"index"`
	Listing        bool     `yaml:"listing"`
	ListingOn      []Scalar `yaml:"listing_on"`
	ListingOff     []Scalar `yaml:"listing_off"`
	Dotfiles       bool     `yaml:"serve_dotfiles"`
}

// Refusals tune what refused clients are told.
type Refusals struct {
	// Detail is "reason" (default: the code and the reason sentence) or
	// "minimal" (the code only). The trace never goes to the client.
	Detail Scalar `yaml:"detail"`
	// Contact is shown on HTML refusal pages ("ask the owner").
	Contact string `yaml:"contact"`
	// ShowRule adds the deciding rule's name to public bodies.
	ShowRule bool `yaml:"show_rule"`
}

// WAF configures Coraza with the OWASP Core Rule Set.
type WAF struct {
	Pos                Pos
	Mode               Scalar     `yaml:"mode"`
	ParanoiaLevel      int        `yaml:"paranoia_level"`
	InboundThreshold   int        `yaml:"inbound_threshold"`
	OutboundThreshold  int        `yaml:"outbound_threshold"`
	BodyLimit          int64      `yaml:"body_limit"`
	BodyOverLimit      Scalar     `yaml:"body_over_limit"`
	ResponseInspection bool       `yaml:"response_inspection"`
	Routes             []WAFRoute `yaml:"routes"`
	// SetupDirectives is raw SecLang loaded before the CRS (tx.* settings).
	SetupDirectives Scalar `yaml:"setup_directives"`
	Directives      Scalar `yaml:"directives"`
}

// WAFRoute tunes the WAF under a path prefix.
type WAFRoute struct {
	Pos           Pos
	Path          Scalar   `yaml:"path"`
	Off           bool     `yaml:"off"`
	RemoveRuleIDs []int    `yaml:"remove_rule_ids"`
	RemoveTags    []Scalar `yaml:"remove_tags"`
	// RemoveTargets are "RULEID;TARGET" pairs such as "942100;ARGS:q".
	RemoveTargets []Scalar `yaml:"remove_targets"`
}

// Limits bound what a client may send and how long it may take.
type Limits struct {
	MaxHeaderBytes    int      `yaml:"max_header_bytes"`
	MaxBodyBytes      int64    `yaml:"max_body_bytes"`
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	ReadTimeout       Duration `yaml:"read_timeout"`
	WriteTimeout      Duration `yaml:"write_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	MaxConnections    int      `yaml:"max_connections"`
}

// Log configures the decision log and the access log.
type Log struct {
	// Decisions is "refusals" (default), "all" or "off".
	Decisions Scalar `yaml:"decisions"`
	// Format is the decision log's: "json" (default) or "text" (logfmt).
	Format Scalar `yaml:"format"`
	// Access is the access log: one line per request. Absent: none.
	Access *AccessLog `yaml:"access"`
}

// AccessLog is one line per finished request, allowed or refused.
type AccessLog struct {
	Pos Pos
	// Format is "combined" (default: nginx's combined, then the request
	// id and the duration) or "json".
	Format Scalar `yaml:"format"`
	// File is where lines go: a path (relative to the config's folder),
	// "stderr" (default) or "stdout". A file is reopened on SIGUSR1.
	File Scalar `yaml:"file"`
	// MaxBytes rotates the file when it would grow past this size (0:
	// never; leave rotation to logrotate and SIGUSR1).
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxFiles is how many rotated files (FILE.1 … FILE.N) are kept
	// (default 5).
	MaxFiles int `yaml:"max_files"`
}

// Parse decodes a policy. name is used in error positions. All shape errors
// are returned together, and no config comes back with them.
func Parse(name string, data []byte) (*Config, error) {
	cfg, err := ParsePartial(name, data)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// ParsePartial is Parse for `warden check`: with shape errors it still
// returns what could be decoded (nil only for invalid YAML), so that the
// compile errors of the rest can be reported in the same run. A partial
// config must never serve.
func ParsePartial(name string, data []byte) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if err.Error() == "EOF" {
			return &Config{Pos: Pos{File: name}}, nil
		}
		line := yamlErrLine(err)
		if line == 0 {
			// yaml.v3 names no line for what it finds at the end of the
			// input ("unexpected end of stream"): that is the last line.
			line = 1 + bytes.Count(bytes.TrimRight(data, "\n"), []byte("\n"))
		}
		return nil, &Error{Pos: Pos{File: name, Line: line}, Msg: "not valid YAML: " + trimYAMLErr(err)}
	}
	d := &decoder{file: name}
	cfg := &Config{}
	d.decode(&root, reflect.ValueOf(cfg).Elem(), "config")
	cfg.Pos = Pos{File: name, Line: 1}
	cfg.Incomplete = d.incomplete
	return cfg, d.errs.Err()
}

// Load reads and decodes a policy file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}
