package config

// TLS makes the gateway's listen address speak HTTPS. Certificates come
// from files (reloaded when they change), from an ACME CA, or both: a file
// certificate whose names match the client's SNI wins.
type TLS struct {
	Pos Pos
	// CertFile and KeyFile are one certificate; Certificates are several,
	// chosen by the name the client asks for (SNI).
	CertFile     Scalar           `yaml:"cert_file"`
	KeyFile      Scalar           `yaml:"key_file"`
	Certificates []TLSCertificate `yaml:"certificates"`
	// ReloadInterval is how often the certificate files are checked for a
	// change (default 5s).
	ReloadInterval Duration `yaml:"reload_interval"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion Scalar `yaml:"min_version"`
	// HTTP2 is on unless set to false.
	HTTP2 *bool `yaml:"http2"`
	// RedirectHTTP is a plain-HTTP address (such as :80) that answers every
	// request with a redirect to HTTPS, and ACME HTTP-01 challenges.
	RedirectHTTP Scalar `yaml:"redirect_http"`
	// HSTS adds Strict-Transport-Security to every HTTPS response.
	HSTS *HSTS `yaml:"hsts"`
	// ACME obtains and renews certificates automatically.
	ACME *ACME `yaml:"acme"`
}

// TLSCertificate is one certificate and its key, PEM files.
type TLSCertificate struct {
	Pos      Pos
	CertFile Scalar `yaml:"cert_file"`
	KeyFile  Scalar `yaml:"key_file"`
}

// HSTS is the Strict-Transport-Security header (RFC 6797).
type HSTS struct {
	Pos               Pos
	MaxAge            Duration `yaml:"max_age"`
	IncludeSubdomains bool     `yaml:"include_subdomains"`
	Preload           bool     `yaml:"preload"`
}

// ACME configures automatic certificates (RFC 8555).
type ACME struct {
	Pos Pos
	// CA is the directory URL (default: Let's Encrypt).
	CA Scalar `yaml:"ca"`
	// CARoot is a PEM file of roots to trust for the CA's own HTTPS (a
	// private CA such as Pebble or step-ca); default: the system's.
	CARoot Scalar `yaml:"ca_root"`
	Email  Scalar `yaml:"email"`
	// Storage is the folder for accounts, keys and certificates (default
	// "acme" beside the policy file). It must survive restarts: CAs limit
	// how often a name may be issued.
	Storage Scalar `yaml:"storage"`
	// Domains are obtained at start and renewed.
	Domains []Scalar `yaml:"domains"`
	// OnDemand are host names (exact, or *.example.com) for which a
	// certificate is obtained at the first handshake that asks for one.
	// Only names on this list are ever requested: a client cannot make
	// warden ask the CA for names of its choosing.
	OnDemand []Scalar `yaml:"on_demand"`
	// Challenges are the challenge types to use: http-01 (needs
	// redirect_http on port 80) and tls-alpn-01 (needs listen on port
	// 443). Default: both.
	Challenges []Scalar `yaml:"challenges"`
}

// ClientCert makes a TLS client certificate the caller's identity (mTLS).
// The certificate is asked for in the handshake and verified by the
// policy, so that a rule that requires it can say what is wrong.
type ClientCert struct {
	Pos Pos
	// CAFile is a PEM file of the CAs that issue client certificates.
	CAFile Scalar `yaml:"ca_file"`
	// Roles maps a certificate's subject common name or a subject
	// alternative name (DNS name, e-mail address, URI) to roles.
	Roles map[string][]Scalar `yaml:"roles"`
}
