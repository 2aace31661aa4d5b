package identity

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-gateway/warden/internal/canonical"
)

// Defaults of JWTConfig.
const (
	DefaultJWKSRefreshInterval = 5 * time.Minute
	DefaultJWKSMinRefetch      = 10 * time.Second
	DefaultJWTCacheSize        = 16384
	// maxTokenBytes bounds what is parsed and cached: real tokens, even
	// with long role lists, stay well under it.
	maxTokenBytes = 16 << 10
	// jwksFileCheckInterval is how often a JWKS file's mtime is looked at.
	jwksFileCheckInterval = 5 * time.Second
)

// JWTConfig configures the JWT bearer authenticator.
type JWTConfig struct {
	// Exactly one of JWKSFile and JWKSURL names where the keys come from.
	JWKSFile string
	JWKSURL  string
	// Issuer is required: the "iss" claim must equal it.
	Issuer string
	// Audiences is required: the "aud" claim must hold at least one of
	// them, so a token minted for another service of the same issuer is
	// refused.
	Audiences []string
	// Algorithms pins the accepted "alg" values (required). "none" is
	// refused; HS256/384/512 are accepted only alone (never mixed with
	// asymmetric algorithms) and only with a JWKS file, since a shared
	// secret must not be published at a URL.
	Algorithms []string
	// Leeway tolerates clock skew on exp, nbf and iat.
	Leeway time.Duration
	// RolesClaim, ScopesClaim and SubjectClaim are dotted paths into the
	// claims ("realm_access.roles"). A claim may be a string (scopes:
	// space-separated), a list of strings, or nested. A path the claims
	// hold in more than one way (a member named "realm_access.roles" beside
	// a nested realm_access) refuses the token (see claimPath). Defaults:
	// "roles", "scope" (then "scp"), "sub".
	RolesClaim   string
	ScopesClaim  string
	SubjectClaim string
	// RefreshInterval is how often a JWKS URL is fetched again (default 5m).
	RefreshInterval time.Duration
	// MinRefetchInterval rate-limits the refetch triggered by an unknown
	// kid and the retries after a failed fetch (default 10s).
	MinRefetchInterval time.Duration
	// HTTPClient fetches the JWKS URL (default: a client with a 10s timeout).
	HTTPClient *http.Client
	// AllowHTTP permits a plain-http JWKS URL on a non-loopback host. Keys
	// fetched over plain http can be swapped by anyone on the path.
	AllowHTTP bool
	// CacheSize bounds the number of verified tokens remembered (default 16384).
	CacheSize int
	// Realm goes into the WWW-Authenticate challenge (default "warden").
	Realm  string
	Logger *slog.Logger
}

// JWT authenticates "Authorization: Bearer <JWS>" requests against a JWKS.
//
// Keys live in an immutable KeySet behind an atomic pointer; Authenticate
// only reads it. Fetching happens in Refresh and in the loop that Start
// launches. A verified token is remembered until it expires, so a repeated
// token costs a map lookup, not a signature check.
type JWT struct {
	cfg        JWTConfig
	algs       []jose.SignatureAlgorithm
	symmetric  bool
	keys       atomic.Pointer[KeySet]
	cache      *tokenCache
	fetchMu    sync.Mutex // serialises fetches and file reloads
	fileStamp  fileStamp  // guarded by fetchMu
	status     atomic.Pointer[KeyStatus]
	refetch    chan struct{}
	startOnce  sync.Once
	rolesPath  string
	scopePaths []string
	subPath    string
	log        *slog.Logger
}

// KeyStatus reports the state of the key source, for health checks and
// `warden doctor`.
type KeyStatus struct {
	Source string
	// Keys is the number of usable keys in the current snapshot (0: none
	// loaded yet, and bearer tokens get 503 unavailable).
	Keys        int
	KeyIDs      []string
	LoadedAt    time.Time
	LastAttempt time.Time
	// LastError is the error of the last attempt, nil when it succeeded.
	LastError error
}

var supportedAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
	"HS256": true, "HS384": true, "HS512": true,
}

// NewJWT checks cfg and, for a JWKS file, loads the keys. A JWKS URL is not
// fetched here: call Refresh (at startup) or Start.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	if (cfg.JWKSFile == "") == (cfg.JWKSURL == "") {
		return nil, errors.New("jwt: set exactly one of jwks_file and jwks_url")
	}
	if cfg.Issuer == "" {
		return nil, errors.New("jwt: issuer is required (the \"iss\" every accepted token must carry)")
	}
	if len(cfg.Audiences) == 0 {
		return nil, errors.New("jwt: at least one audience is required, so tokens minted for other services are refused")
	}
	if len(cfg.Algorithms) == 0 {
		return nil, errors.New("jwt: algorithms must be pinned, e.g. [RS256] or [EdDSA]")
	}
	j := &JWT{cfg: cfg, refetch: make(chan struct{}, 1), log: cfg.Logger}
	var hmac, asym bool
	for _, a := range cfg.Algorithms {
		switch {
		case strings.EqualFold(a, "none"):
			return nil, errors.New("jwt: algorithm \"none\" accepts unsigned tokens and is refused")
		case !supportedAlgs[a]:
			return nil, fmt.Errorf("jwt: unknown algorithm %q (known: RS256..512, PS256..512, ES256..512, EdDSA, HS256..512)", a)
		case strings.HasPrefix(a, "HS"):
			hmac = true
		default:
			asym = true
		}
		j.algs = append(j.algs, jose.SignatureAlgorithm(a))
	}
	if hmac && asym {
		return nil, errors.New("jwt: HS* algorithms may not be mixed with asymmetric ones (algorithm confusion)")
	}
	if hmac && cfg.JWKSURL != "" {
		return nil, errors.New("jwt: HS* algorithms need a shared secret, which must come from a jwks_file, not a URL")
	}
	j.symmetric = hmac
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("jwt: jwks_url %q is not an http(s) URL", cfg.JWKSURL)
		}
		if u.Scheme == "http" && !cfg.AllowHTTP && !isLoopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("jwt: jwks_url %q uses plain http; use https (keys fetched in clear can be replaced in transit) or allow it explicitly", cfg.JWKSURL)
		}
	}
	if j.cfg.Leeway < 0 {
		return nil, errors.New("jwt: leeway must not be negative")
	}
	if j.cfg.RefreshInterval <= 0 {
		j.cfg.RefreshInterval = DefaultJWKSRefreshInterval
	}
	if j.cfg.MinRefetchInterval <= 0 {
		j.cfg.MinRefetchInterval = DefaultJWKSMinRefetch
	}
	if j.cfg.HTTPClient == nil {
		j.cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if j.cfg.CacheSize <= 0 {
		j.cfg.CacheSize = DefaultJWTCacheSize
	}
	if j.cfg.Realm == "" {
		j.cfg.Realm = "warden"
	}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	j.rolesPath = orDefault(cfg.RolesClaim, "roles")
	j.subPath = orDefault(cfg.SubjectClaim, "sub")
	if cfg.ScopesClaim != "" {
		j.scopePaths = []string{cfg.ScopesClaim}
	} else {
		j.scopePaths = []string{"scope", "scp"}
	}
	j.cache = newTokenCache(j.cfg.CacheSize)
	j.status.Store(&KeyStatus{Source: j.source()})
	if cfg.JWKSFile != "" {
		if err := j.Refresh(context.Background()); err != nil {
			return nil, err
		}
	}
	return j, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (j *JWT) source() string {
	if j.cfg.JWKSFile != "" {
		return j.cfg.JWKSFile
	}
	return j.cfg.JWKSURL
}

// Name implements Authenticator.
func (j *JWT) Name() string { return "jwt" }

// Challenge implements Authenticator (RFC 6750 section 3).
func (j *JWT) Challenge(invalid bool) string {
	if invalid {
		return fmt.Sprintf(`Bearer realm=%q, error="invalid_token"`, j.cfg.Realm)
	}
	return fmt.Sprintf(`Bearer realm=%q`, j.cfg.Realm)
}

// Status returns the state of the key source.
func (j *JWT) Status() KeyStatus { return *j.status.Load() }

// Keys returns the current key snapshot, or nil when none was ever loaded.
func (j *JWT) Keys() *KeySet { return j.keys.Load() }

// Refresh loads the keys now: it fetches the JWKS URL, or reads the JWKS
// file. On failure the previous keys stay in use. A document identical to
// the current one keeps the current snapshot.
func (j *JWT) Refresh(ctx context.Context) error {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	return j.refreshLocked(ctx)
}

func (j *JWT) refreshLocked(ctx context.Context) error {
	started := time.Now()
	var data []byte
	var err error
	if j.cfg.JWKSFile != "" {
		var st fileStamp
		st, err = statFile(j.cfg.JWKSFile)
		if err == nil {
			data, err = os.ReadFile(j.cfg.JWKSFile)
			j.fileStamp = st
		}
		if err != nil {
			err = fmt.Errorf("jwt: reading JWKS file: %w", err)
		}
	} else {
		data, err = fetchJWKS(ctx, j.cfg.HTTPClient, j.cfg.JWKSURL)
		if err != nil {
			err = fmt.Errorf("jwt: %w", err)
		}
	}
	var set *KeySet
	if err == nil {
		set, err = ParseJWKS(data, j.symmetric)
		if err != nil {
			err = fmt.Errorf("jwt: %s: %w", j.source(), err)
		}
	}
	prev := j.status.Load()
	st := &KeyStatus{Source: j.source(), Keys: prev.Keys, KeyIDs: prev.KeyIDs, LoadedAt: prev.LoadedAt, LastAttempt: started, LastError: err}
	if err != nil {
		j.status.Store(st)
		return err
	}
	if cur := j.keys.Load(); cur == nil || cur.digest != set.digest {
		j.keys.Store(set)
		if cur != nil {
			j.log.Info("JWKS keys changed", "source", j.source(), "kids", set.KeyIDs())
		}
		for _, s := range set.Skipped {
			j.log.Warn("JWKS key skipped", "source", j.source(), "reason", s)
		}
	} else {
		set = cur
	}
	st.Keys, st.KeyIDs, st.LoadedAt = set.Len(), set.KeyIDs(), started
	j.status.Store(st)
	return nil
}

// Start keeps the keys fresh in the background until ctx ends: a JWKS URL
// is fetched at once (when no keys are loaded), every RefreshInterval, and
// soon after a token names an unknown kid (no sooner than
// MinRefetchInterval after the previous attempt); failures are retried with
// backoff. A JWKS file is reloaded when its modification time changes.
// Start returns immediately; calling it again does nothing.
func (j *JWT) Start(ctx context.Context) {
	j.startOnce.Do(func() {
		if j.cfg.JWKSFile != "" {
			go j.watchFile(ctx)
		} else {
			go j.refreshLoop(ctx)
		}
	})
}

func (j *JWT) refreshLoop(ctx context.Context) {
	var lastAttempt time.Time
	next := time.Now()
	if j.keys.Load() != nil {
		next = next.Add(j.cfg.RefreshInterval)
	}
	backoff := j.cfg.MinRefetchInterval
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-j.refetch:
			// An unknown kid: the issuer may have rotated its keys.
			soonest := lastAttempt.Add(j.cfg.MinRefetchInterval)
			if soonest.Before(next) {
				next = soonest
				timer.Reset(time.Until(next))
			}
		case <-timer.C:
			lastAttempt = time.Now()
			fetchCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := j.Refresh(fetchCtx)
			cancel()
			if err != nil {
				j.log.Warn("JWKS refresh failed", "source", j.source(), "err", err, "retry_in", backoff)
				next = lastAttempt.Add(backoff)
				backoff = min(2*backoff, j.cfg.RefreshInterval)
			} else {
				next = lastAttempt.Add(j.cfg.RefreshInterval)
				backoff = j.cfg.MinRefetchInterval
			}
			timer.Reset(time.Until(next))
		}
	}
}

func (j *JWT) watchFile(ctx context.Context) {
	interval := min(jwksFileCheckInterval, j.cfg.RefreshInterval)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		j.fetchMu.Lock()
		st, err := statFile(j.cfg.JWKSFile)
		if err == nil && st != j.fileStamp {
			err = j.refreshLocked(ctx)
		}
		j.fetchMu.Unlock()
		if err != nil {
			j.log.Warn("JWKS file reload failed; keeping the previous keys", "file", j.cfg.JWKSFile, "err", err)
		}
	}
}

// signalRefetch asks the background loop for an early fetch without
// blocking: one pending signal is enough.
func (j *JWT) signalRefetch() {
	if j.cfg.JWKSURL == "" {
		return
	}
	select {
	case j.refetch <- struct{}{}:
	default:
	}
}

// Authenticate implements Authenticator. It does no I/O.
func (j *JWT) Authenticate(r *canonical.Request, now time.Time) (*Principal, error) {
	raw, ok := bearer(r.Header)
	if !ok || !looksLikeJWT(raw) {
		return nil, nil
	}
	if repeatedScheme(r.Header, "bearer ") {
		return nil, errTooManyAuthorization
	}
	if len(raw) > maxTokenBytes {
		return nil, fmt.Errorf("%w: bearer token longer than %d bytes", ErrInvalid, maxTokenBytes)
	}
	keys := j.keys.Load()
	if keys == nil {
		j.signalRefetch()
		return nil, fmt.Errorf("%w: no JWKS keys loaded yet from %s", ErrUnavailable, j.source())
	}
	if e, ok := j.cache.get(raw); ok && e.keys == keys && !now.Before(e.notBefore) && !now.After(e.notAfter) {
		return e.principal, nil
	}
	e, err := j.verify(raw, keys, now)
	if err != nil {
		return nil, err
	}
	j.cache.put(raw, e, now)
	return e.principal, nil
}

// verify checks signature and claims of a token and builds its Principal.
// Each refusal names its real cause: the signature is blamed only when no
// candidate key verifies it, and claims are read only after it verified.
func (j *JWT) verify(raw string, keys *KeySet, now time.Time) (cachedToken, error) {
	jws, err := jose.ParseSignedCompact(raw, j.algs)
	if err != nil {
		return cachedToken{}, describeParseError(raw, err)
	}
	if len(jws.Signatures) != 1 {
		return cachedToken{}, fmt.Errorf("%w: token must carry exactly one signature", ErrInvalid)
	}
	hdr := jws.Signatures[0].Protected
	if err := checkHeader(hdr); err != nil {
		return cachedToken{}, err
	}
	candidates, known := keys.candidates(hdr.KeyID, hdr.Algorithm)
	if !known {
		j.signalRefetch()
		return cachedToken{}, fmt.Errorf("%w: unknown key id %s", ErrInvalid, quote(hdr.KeyID))
	}
	if len(candidates) == 0 {
		return cachedToken{}, fmt.Errorf("%w: no key for algorithm %s (key id %s)", ErrInvalid, hdr.Algorithm, quote(hdr.KeyID))
	}
	var payload []byte
	verified := false
	for _, k := range candidates {
		p, err := jws.Verify(k.key)
		if err == nil {
			payload, verified = p, true
			break
		}
		if errors.Is(err, jose.ErrUnsupportedCriticalHeader) {
			return cachedToken{}, fmt.Errorf("%w: critical header extensions are not supported (crit, RFC 7515 4.1.11)", ErrInvalid)
		}
	}
	if !verified {
		return cachedToken{}, fmt.Errorf("%w: signature does not verify", ErrInvalid)
	}
	std, all, err := decodeClaims(payload)
	if err != nil {
		return cachedToken{}, err
	}
	expected := jwt.Expected{Issuer: j.cfg.Issuer, AnyAudience: j.cfg.Audiences, Time: now}
	if err := std.ValidateWithLeeway(expected, j.cfg.Leeway); err != nil {
		switch {
		case errors.Is(err, jwt.ErrExpired):
			return cachedToken{}, fmt.Errorf("%w: token expired", ErrInvalid)
		case errors.Is(err, jwt.ErrNotValidYet):
			return cachedToken{}, fmt.Errorf("%w: token not valid yet", ErrInvalid)
		case errors.Is(err, jwt.ErrIssuedInTheFuture):
			return cachedToken{}, fmt.Errorf("%w: token issued in the future", ErrInvalid)
		case errors.Is(err, jwt.ErrInvalidIssuer):
			return cachedToken{}, fmt.Errorf("%w: wrong issuer %s", ErrInvalid, quote(std.Issuer))
		case errors.Is(err, jwt.ErrInvalidAudience):
			return cachedToken{}, fmt.Errorf("%w: token not meant for this audience", ErrInvalid)
		}
		return cachedToken{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// A token without expiry would stay valid forever once leaked.
	if std.Expiry == nil {
		return cachedToken{}, fmt.Errorf("%w: token has no expiry (exp)", ErrInvalid)
	}
	subClaim, err := claimPath(all, j.subPath)
	if err != nil {
		return cachedToken{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	sub, isString := subClaim.(string)
	if subClaim != nil && !isString {
		return cachedToken{}, fmt.Errorf("%w: subject claim %q must be a string, not %s", ErrInvalid, j.subPath, jsonKind(subClaim))
	}
	if sub == "" {
		return cachedToken{}, fmt.Errorf("%w: token has no subject (%s)", ErrInvalid, j.subPath)
	}
	roles, err := claimPath(all, j.rolesPath)
	if err != nil {
		return cachedToken{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	p := &Principal{ID: sub, Method: "jwt", Roles: claimStrings(roles, false), Claims: all}
	for _, path := range j.scopePaths {
		v, err := claimPath(all, path)
		if err != nil {
			return cachedToken{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if v != nil {
			p.Scopes = claimStrings(v, true)
			break
		}
	}
	e := cachedToken{principal: p, keys: keys, notAfter: std.Expiry.Time().Add(j.cfg.Leeway)}
	if std.NotBefore != nil {
		e.notBefore = std.NotBefore.Time().Add(-j.cfg.Leeway)
	}
	if std.IssuedAt != nil {
		if iat := std.IssuedAt.Time().Add(-j.cfg.Leeway); iat.After(e.notBefore) {
			e.notBefore = iat
		}
	}
	return e, nil
}

// claimStrings turns a claim into a list of strings: a list keeps its
// string members; a string is one value, or space-separated values when
// split is set (the OAuth "scope" form).
func claimStrings(v any, split bool) []string {
	switch v := v.(type) {
	case string:
		if split {
			return strings.Fields(v)
		}
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return slices.Clip(out)
	}
	return nil
}

// cachedToken is a verified token: its Principal (shared by every request
// that presents the token, so it must be treated as read-only), the window
// in which it is valid (leeway included), and the key snapshot it was
// verified against; a new snapshot (rotation) forces a fresh verification,
// so a key removed from the JWKS stops being honoured.
type cachedToken struct {
	principal *Principal
	keys      *KeySet
	notBefore time.Time
	notAfter  time.Time
}

const tokenCacheShards = 16

// tokenCache is a bounded, sharded map from raw token to its verification.
// Reads take a shard's read lock only, so concurrent requests with the same
// token do not contend. When a shard is full, an expired entry (or, failing
// that, an arbitrary one) makes room: an exact LRU would need a write lock
// on every hit.
type tokenCache struct {
	seed     maphash.Seed
	perShard int
	shards   [tokenCacheShards]struct {
		mu sync.RWMutex
		m  map[string]cachedToken
	}
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed(), perShard: max(1, size/tokenCacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cachedToken)
	}
	return c
}

func (c *tokenCache) shard(token string) int {
	return int(maphash.String(c.seed, token) % tokenCacheShards)
}

func (c *tokenCache) get(token string) (cachedToken, bool) {
	s := &c.shards[c.shard(token)]
	s.mu.RLock()
	e, ok := s.m[token]
	s.mu.RUnlock()
	return e, ok
}

func (c *tokenCache) put(token string, e cachedToken, now time.Time) {
	s := &c.shards[c.shard(token)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.m[token]; !exists && len(s.m) >= c.perShard {
		// Map iteration starts at a random place: look at a few entries,
		// drop the first that has expired, else the last one seen.
		var victim string
		seen := 0
		for k, old := range s.m {
			victim = k
			if old.notAfter.Before(now) || seen == 7 {
				break
			}
			seen++
		}
		delete(s.m, victim)
	}
	s.m[token] = e
}

// fileStamp identifies a version of a file cheaply.
type fileStamp struct {
	mtime time.Time
	size  int64
}

func statFile(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mtime: fi.ModTime(), size: fi.Size()}, nil
}
