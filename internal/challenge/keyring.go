package challenge

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KeySize is the length of a clearance key's secret. HMAC-SHA256 gains
// nothing from a longer key (RFC 2104 §3: keys longer than the block are
// hashed first), and a shorter one would weaken the MAC below 256 bits.
const KeySize = 32

// Key is one HMAC-SHA256 key with its id. The id is derived from the secret,
// so every replica that was given the same secret names it the same way and
// accepts the tokens of the others.
type Key struct {
	ID uint32
	// ipad and opad are the secret XORed with the HMAC pads (RFC 2104 §2),
	// computed once so that signing and verifying need no allocation: the
	// standard library's hmac.New allocates two hash states per call.
	ipad, opad [sha256.BlockSize]byte
}

// NewKey makes a key from a secret of exactly KeySize bytes.
func NewKey(secret []byte) (Key, error) {
	if len(secret) != KeySize {
		return Key{}, fmt.Errorf("challenge key: %d bytes, want %d (32 random bytes, base64)", len(secret), KeySize)
	}
	var k Key
	for i := range k.ipad {
		k.ipad[i] = 0x36
		k.opad[i] = 0x5c
	}
	for i, b := range secret {
		k.ipad[i] ^= b
		k.opad[i] ^= b
	}
	id := sha256.Sum256(append([]byte("warden challenge key id\x00"), secret...))
	k.ID = uint32(id[0])<<24 | uint32(id[1])<<16 | uint32(id[2])<<8 | uint32(id[3])
	return k, nil
}

// ParseKey reads a key written as base64 (standard or URL alphabet, padded
// or not) of KeySize bytes: the form GenerateKeyFile writes and the form an
// operator puts in the config.
func ParseKey(text string) (Key, error) {
	text = strings.TrimSpace(text)
	text = strings.TrimRight(text, "=")
	var secret []byte
	var err error
	if strings.ContainsAny(text, "-_") {
		secret, err = base64.RawURLEncoding.DecodeString(text)
	} else {
		secret, err = base64.RawStdEncoding.DecodeString(text)
	}
	if err != nil {
		return Key{}, fmt.Errorf("challenge key: not base64: %v", err)
	}
	return NewKey(secret)
}

// mac computes HMAC-SHA256(key, msg) into out without allocating; msg must
// be at most maxMACInput bytes (the largest token payload).
func (k *Key) mac(msg []byte, out *[sha256.Size]byte) {
	var inner [sha256.BlockSize + maxMACInput]byte
	copy(inner[:], k.ipad[:])
	n := copy(inner[sha256.BlockSize:], msg)
	sum := sha256.Sum256(inner[:sha256.BlockSize+n])
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], k.opad[:])
	copy(outer[sha256.BlockSize:], sum[:])
	*out = sha256.Sum256(outer[:])
}

// Keyring holds the key new tokens are signed with and the previous keys
// whose tokens are still accepted, so a key can be rotated without logging
// every visitor out: add the new key as current, keep the old one as
// previous for at least the clearance lifetime, then drop it.
type Keyring struct {
	current  Key
	previous []Key
}

// NewKeyring returns a keyring. Two keys with the same id (the same secret,
// or a 32-bit collision) are refused: a token must name exactly one key.
func NewKeyring(current Key, previous ...Key) (*Keyring, error) {
	seen := map[uint32]bool{current.ID: true}
	for _, k := range previous {
		if seen[k.ID] {
			return nil, fmt.Errorf("challenge keys: two keys with id %08x (the same secret listed twice?)", k.ID)
		}
		seen[k.ID] = true
	}
	return &Keyring{current: current, previous: append([]Key(nil), previous...)}, nil
}

// Current is the signing key.
func (kr *Keyring) Current() Key { return kr.current }

// lookup finds the key with the given id.
func (kr *Keyring) lookup(id uint32) (*Key, bool) {
	if kr.current.ID == id {
		return &kr.current, true
	}
	for i := range kr.previous {
		if kr.previous[i].ID == id {
			return &kr.previous[i], true
		}
	}
	return nil, false
}

// LoadOrCreateKeyFile reads the key in path, or, when the file does not
// exist, generates a random key and writes it there with mode 0600. Replicas
// that share the file (a volume, a secret mount) share the key; when two
// start at once, O_EXCL makes one of them the writer and the other reads
// what it wrote. A key file that group or others can read is refused, as
// ssh refuses such a private key: whoever reads it can mint clearances.
func LoadOrCreateKeyFile(path string) (Key, error) {
	k, err := readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	secret := make([]byte, KeySize)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("challenge key %s: %v", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readKeyFile(path)
	}
	if err != nil {
		return Key{}, fmt.Errorf("challenge key %s: %v", path, err)
	}
	_, werr := f.WriteString(base64.RawURLEncoding.EncodeToString(secret) + "\n")
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(path) // a half-written key would be read back as a different key
		return Key{}, fmt.Errorf("challenge key %s: write: %v", path, errors.Join(werr, cerr))
	}
	return NewKey(secret)
}

func readKeyFile(path string) (Key, error) {
	info, err := os.Stat(path)
	if err != nil {
		return Key{}, fmt.Errorf("challenge key %s: %w", path, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return Key{}, fmt.Errorf("challenge key %s: mode %04o lets others read it (chmod 600 %s)", path, info.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("challenge key %s: %w", path, err)
	}
	k, err := ParseKey(string(data))
	if err != nil {
		return Key{}, fmt.Errorf("%s: %v", path, err)
	}
	return k, nil
}
