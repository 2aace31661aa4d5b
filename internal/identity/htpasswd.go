package identity

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/warden-gateway/warden/internal/canonical"
)

// DefaultHtpasswdCheckInterval is how often Start looks at the file's mtime.
const DefaultHtpasswdCheckInterval = 2 * time.Second

// maxBasicHeader bounds the Authorization header Basic auth decodes.
const maxBasicHeader = 4096

// verifiedCacheSize bounds the remembered (user, password) successes.
const verifiedCacheSize = 4096

// HtpasswdOptions configures the htpasswd authenticator.
type HtpasswdOptions struct {
	// AllowWeakHashes accepts the hashes nginx or Apache read that are weak:
	// {SHA} (htpasswd -s), $apr1$ (htpasswd -m), MD5-crypt $1$, {SSHA},
	// {PLAIN} and DES crypt (htpasswd -d); it also skips an entry no server
	// could read instead of refusing the file. Without it weak entries make
	// loading fail with file:line. bcrypt and SHA-crypt ($5$, $6$) are
	// always accepted.
	AllowWeakHashes bool
	// Roles maps a user name to its roles.
	Roles map[string][]string
	// CheckInterval is how often Start checks the file for changes
	// (default 2s).
	CheckInterval time.Duration
	// Realm goes into the WWW-Authenticate challenge (default "warden").
	Realm  string
	Logger *slog.Logger
}

// Htpasswd authenticates HTTP Basic credentials against an Apache htpasswd
// file. bcrypt is the accepted scheme; weaker ones only when allowed.
//
// A bcrypt check costs milliseconds by design, and Basic clients send the
// password on every request, so successes are remembered under an HMAC
// (keyed with a per-process random key) of user, stored hash and password:
// the password itself is never kept, and a changed entry in the file no
// longer matches.
type Htpasswd struct {
	path      string
	opts      HtpasswdOptions
	users     atomic.Pointer[htpasswdUsers]
	reloadMu  sync.Mutex
	startOnce sync.Once
	lastErr   atomic.Pointer[error]
	log       *slog.Logger

	macKey   [32]byte
	verified sync.Map // [32]byte → struct{}
	nVerif   atomic.Int64

	// guard bounds the CPU password checks may take (hashguard.go).
	guard *hashGuard
}

type htpasswdUsers struct {
	stamp  fileStamp
	hashes map[string]string
}

// NewHtpasswd loads the file. Errors name the file and line.
func NewHtpasswd(path string, opts HtpasswdOptions) (*Htpasswd, error) {
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = DefaultHtpasswdCheckInterval
	}
	if opts.Realm == "" {
		opts.Realm = "warden"
	}
	h := &Htpasswd{path: path, opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if _, err := rand.Read(h.macKey[:]); err != nil {
		return nil, fmt.Errorf("htpasswd: random key: %w", err)
	}
	guard, err := newHashGuard(hashGuardOptions{})
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	h.guard = guard
	if err := h.Reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// Name implements Authenticator.
func (h *Htpasswd) Name() string { return "htpasswd" }

// Challenge implements Authenticator (RFC 7617).
func (h *Htpasswd) Challenge(bool) string {
	return fmt.Sprintf(`Basic realm=%q, charset="UTF-8"`, h.opts.Realm)
}

// Users returns the number of users loaded.
func (h *Htpasswd) Users() int { return len(h.users.Load().hashes) }

// LastError returns the error of the last reload, nil if it succeeded.
func (h *Htpasswd) LastError() error {
	if p := h.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Reload reads the file now. On error the users loaded before stay in force.
func (h *Htpasswd) Reload() error {
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	err := h.reloadLocked()
	h.lastErr.Store(&err)
	return err
}

func (h *Htpasswd) reloadLocked() error {
	stamp, err := statFile(h.path)
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	data, err := os.ReadFile(h.path)
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	hashes, err := ParseHtpasswd(h.path, data, h.opts.AllowWeakHashes)
	if err != nil {
		return err
	}
	h.users.Store(&htpasswdUsers{stamp: stamp, hashes: hashes})
	return nil
}

// Start reloads the file in the background, when its modification time or
// size changes and then stays put for one CheckInterval, until ctx ends. A file that fails to load is logged and the
// previous users stay in force. Start returns immediately.
func (h *Htpasswd) Start(ctx context.Context) {
	h.startOnce.Do(func() { go h.watch(ctx) })
}

func (h *Htpasswd) watch(ctx context.Context) {
	ticker := time.NewTicker(h.opts.CheckInterval)
	defer ticker.Stop()
	var failedStamp, pending fileStamp
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		st, err := statFile(h.path)
		if err != nil || st == h.users.Load().stamp || st == failedStamp {
			pending = fileStamp{}
			continue
		}
		// htpasswd rewrites the file in place (truncate, then write): a
		// read in between would load a valid but shorter user list. Load
		// a version only once it has stayed the same for a whole interval.
		if st != pending {
			pending = st
			continue
		}
		if err := h.Reload(); err != nil {
			failedStamp = st // log a broken version once, not every tick
			h.log.Warn("htpasswd reload failed; keeping the previous users", "file", h.path, "err", err)
		} else {
			h.log.Info("htpasswd reloaded", "file", h.path, "users", h.Users())
		}
	}
}

// ParseHtpasswd reads htpasswd content ("user:hash" lines; blank lines and
// lines starting with # are skipped). name is used in errors, which have the
// form "name:line: message".
func ParseHtpasswd(name string, data []byte, allowWeak bool) (map[string]string, error) {
	hashes := make(map[string]string)
	firstLine := make(map[string]int)
	sc := bufio.NewScanner(bytes.NewReader(data))
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("%s:%d: want \"user:hash\"", name, lineNo)
		}
		if prev, dup := firstLine[user]; dup {
			return nil, fmt.Errorf("%s:%d: user %q already defined on line %d", name, lineNo, user, prev)
		}
		scheme := hashScheme(hash)
		if scheme == schemeBcrypt {
			if _, err := bcrypt.Cost([]byte(hash)); err != nil {
				return nil, fmt.Errorf("%s:%d: user %q: malformed bcrypt hash: %v", name, lineNo, user, err)
			}
		} else if err := checkHashSyntax(scheme, hash); err != nil {
			if allowWeak {
				// Neither nginx nor Apache can sign this user in either;
				// with the compatibility switch on, the user is left out
				// rather than the whole file refused (warden import warns).
				continue
			}
			return nil, fmt.Errorf("%s:%d: user %q: %v", name, lineNo, user, err)
		}
		switch {
		case strongScheme(scheme):
		case scheme == schemeUnknown:
			if allowWeak {
				continue // as above: no server reads it
			}
			return nil, fmt.Errorf("%s:%d: user %q uses %s, which no server reads as a hash; re-create it with htpasswd -B", name, lineNo, user, scheme)
		case !allowWeak:
			return nil, fmt.Errorf("%s:%d: user %q uses a weak hash (%s); re-create it with htpasswd -B or set allow_weak_hashes", name, lineNo, user, scheme)
		}
		hashes[user] = hash
		firstLine[user] = lineNo
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return hashes, nil
}

// hashScheme names the scheme of an htpasswd hash, as nginx and Apache
// tell them apart: a {NAME} prefix, else a $id$ prefix of crypt(3), else a
// 13-character DES crypt.
func hashScheme(hash string) string {
	switch {
	case strings.HasPrefix(hash, "$2y$"), strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"):
		return schemeBcrypt
	case strings.HasPrefix(hash, "$apr1$"):
		return schemeAPR1
	case strings.HasPrefix(hash, "{SHA}"):
		return schemeSHA
	case strings.HasPrefix(hash, "{SSHA}"):
		return schemeSSHA
	case strings.HasPrefix(hash, "{PLAIN}"):
		return schemePlain
	case strings.HasPrefix(hash, "$5$"):
		return schemeSHA256
	case strings.HasPrefix(hash, "$6$"):
		return schemeSHA512
	case strings.HasPrefix(hash, "$1$"):
		return schemeMD5Crypt
	case len(hash) == 13 && !strings.ContainsAny(hash, ":$"):
		return schemeDES
	}
	return schemeUnknown
}

// Authenticate implements Authenticator. It does no I/O.
func (h *Htpasswd) Authenticate(r *canonical.Request, now time.Time) (*Principal, error) {
	if repeatedScheme(r.Header, "basic ") {
		return nil, errTooManyAuthorization
	}
	v := r.Header.Get("Authorization")
	if len(v) < 6 || !strings.EqualFold(v[:6], "basic ") {
		return nil, nil
	}
	if len(v) > maxBasicHeader {
		return nil, fmt.Errorf("%w: Basic credentials too long", ErrInvalid)
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v[6:]))
	if err != nil {
		return nil, fmt.Errorf("%w: Basic credentials are not base64", ErrInvalid)
	}
	user, password, ok := strings.Cut(string(dec), ":")
	if !ok || user == "" {
		return nil, fmt.Errorf("%w: Basic credentials need \"user:password\"", ErrInvalid)
	}
	hash, known := h.users.Load().hashes[user]
	// Every check, of a known user or not, goes through the guard: bounded
	// CPU, remembered verdicts, the excess refused (hashguard.go).
	ok, err = h.guard.verify(user, hash, password, now, func() bool {
		if !known {
			// Spend the time a real check would, so response time does
			// not tell which user names exist.
			_ = bcrypt.CompareHashAndPassword(dummyBcrypt(), []byte(password))
			return false
		}
		return h.checkPassword(user, hash, password)
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: unknown user or wrong password", ErrInvalid)
	}
	return &Principal{ID: user, Method: "basic", Roles: h.opts.Roles[user]}, nil
}

// dummyBcrypt is a bcrypt hash at htpasswd's default cost (5), made once,
// for timing.
var dummyBcrypt = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte("warden-timing-equaliser"), 5)
	if err != nil {
		return nil
	}
	return h
})

func (h *Htpasswd) checkPassword(user, hash, password string) bool {
	mac := hmac.New(sha256.New, h.macKey[:])
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(hash))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var key [32]byte
	mac.Sum(key[:0])
	if _, ok := h.verified.Load(key); ok {
		return true
	}
	var ok bool
	switch scheme := hashScheme(hash); scheme {
	case schemeBcrypt:
		ok = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	case schemeSHA:
		sum := sha1.Sum([]byte(password))
		ok = subtle.ConstantTimeCompare([]byte(hash[5:]), []byte(base64.StdEncoding.EncodeToString(sum[:]))) == 1
	case schemeAPR1:
		want, err := apr1Crypt(password, hash)
		ok = err == nil && subtle.ConstantTimeCompare([]byte(hash), []byte(want)) == 1
	default:
		ok = verifyCryptFamily(scheme, hash, password)
	}
	if ok {
		// A crude bound: when full, start over. Entries are cheap to
		// recompute and this keeps the read path lock-free.
		if h.nVerif.Add(1) > verifiedCacheSize {
			h.verified.Clear()
			h.nVerif.Store(1)
		}
		h.verified.Store(key, struct{}{})
	}
	return ok
}

// splitAPR1 returns the salt and checksum of "$apr1$salt$checksum".
func splitAPR1(hash string) (salt, sum string, err error) {
	rest, ok := strings.CutPrefix(hash, "$apr1$")
	if !ok {
		return "", "", errors.New("not an $apr1$ hash")
	}
	salt, sum, ok = strings.Cut(rest, "$")
	if !ok || len(salt) == 0 || len(salt) > 8 || len(sum) != 22 {
		return "", "", errors.New("malformed $apr1$ hash")
	}
	return salt, sum, nil
}

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// apr1Crypt computes Apache's MD5-crypt ("$apr1$"): md5crypt with
// Apache's magic string, using the salt of hash. It exists only for files
// loaded with allow_weak_hashes.
func apr1Crypt(password, hash string) (string, error) {
	salt, _, err := splitAPR1(hash)
	if err != nil {
		return "", err
	}
	return md5Crypt(password, "$apr1$", salt), nil
}
