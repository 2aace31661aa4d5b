package challenge

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"time"
	"unsafe"
)

// Reason says why a clearance or a solution was refused. It is an error, and
// a comparable one, so callers can switch on it or use errors.Is; being a
// small integer it is returned without allocating.
type Reason uint8

const (
	// ReasonMalformed: not a token of the expected length, alphabet or type.
	ReasonMalformed Reason = iota + 1
	// ReasonUnknownKey: signed with a key this keyring does not hold (rotated
	// out, or another deployment's).
	ReasonUnknownKey
	// ReasonForged: the MAC does not match; the token was made or changed by
	// someone without the key (a tampered difficulty lands here too).
	ReasonForged
	// ReasonExpired: past its expiry.
	ReasonExpired
	// ReasonWrongIP: issued to another network (/24 for IPv4, /64 for IPv6).
	ReasonWrongIP
	// ReasonWrongUserAgent: issued to another User-Agent.
	ReasonWrongUserAgent
	// ReasonDifficultyTooLow: earned at a lower difficulty than the rule now asks.
	ReasonDifficultyTooLow
	// ReasonInsufficientWork: the solution's hash lacks the leading zero bits.
	ReasonInsufficientWork
	// ReasonWrongTarget: the solution was posted for another method or URL
	// than the challenge was issued for.
	ReasonWrongTarget
	// ReasonReplayed: this challenge was already redeemed.
	ReasonReplayed
)

var reasonText = [...]string{
	ReasonMalformed:        "malformed",
	ReasonUnknownKey:       "unknown key",
	ReasonForged:           "forged",
	ReasonExpired:          "expired",
	ReasonWrongIP:          "issued to another network",
	ReasonWrongUserAgent:   "issued to another user agent",
	ReasonDifficultyTooLow: "difficulty too low",
	ReasonInsufficientWork: "proof of work does not meet the difficulty",
	ReasonWrongTarget:      "issued for another request",
	ReasonReplayed:         "already redeemed",
}

var reasonCode = [...]string{
	ReasonMalformed:        "malformed",
	ReasonUnknownKey:       "unknown_key",
	ReasonForged:           "forged",
	ReasonExpired:          "expired",
	ReasonWrongIP:          "wrong_ip",
	ReasonWrongUserAgent:   "wrong_user_agent",
	ReasonDifficultyTooLow: "difficulty_too_low",
	ReasonInsufficientWork: "insufficient_work",
	ReasonWrongTarget:      "wrong_target",
	ReasonReplayed:         "replayed",
}

func (r Reason) Error() string {
	if int(r) < len(reasonText) && reasonText[r] != "" {
		return "challenge: " + reasonText[r]
	}
	return "challenge: refused"
}

// Text is the reason as a phrase for people ("expired", "already redeemed").
func (r Reason) Text() string {
	if int(r) < len(reasonText) && reasonText[r] != "" {
		return reasonText[r]
	}
	return "refused"
}

// Code is a stable snake_case name for logs and explain output.
func (r Reason) Code() string {
	if int(r) < len(reasonCode) && reasonCode[r] != "" {
		return reasonCode[r]
	}
	return "unknown"
}

// Token layouts. Fixed-size binary, so that checking one is a decode into a
// stack array, one HMAC and a few comparisons: no JSON, no allocation.
//
//	clearance: type(1) keyid(4) expires(8) difficulty(1) ip(9) ua(16) | mac(32)
//	challenge: type(1) keyid(4) expires(8) difficulty(1) ip(9) ua(16) target(16) nonce(16) | mac(32)
//
// The type byte is MACed, so a challenge can never be presented as a
// clearance or the other way round (their lengths differ as well).
const (
	typeClearance = 0xC1
	typeChallenge = 0xC2

	offType       = 0
	offKeyID      = 1
	offExpires    = 5
	offDifficulty = 13
	offIP         = 14
	offUA         = 23
	offTarget     = 39 // challenge only
	offNonce      = 55 // challenge only

	ipBindingSize = 9
	uaHashSize    = 16
	targetSize    = 16
	nonceSize     = 16

	clearancePayload = 39
	challengePayload = 71
	clearanceSize    = clearancePayload + sha256.Size
	challengeSize    = challengePayload + sha256.Size

	maxMACInput = challengePayload
)

var (
	// ClearanceLen is the length of an encoded clearance (base64url, no padding).
	ClearanceLen = base64.RawURLEncoding.EncodedLen(clearanceSize)
	// ChallengeLen is the length of an encoded challenge.
	ChallengeLen = base64.RawURLEncoding.EncodedLen(challengeSize)
)

// MaxDifficulty bounds a challenge's difficulty: beyond 32 leading zero bits
// a browser would work for hours, which is a misconfiguration, not a policy.
const MaxDifficulty = 32

// Clearance is what a valid clearance token says.
type Clearance struct {
	KeyID      uint32
	Expires    time.Time
	Difficulty int
}

// ipBinding is the client's network as the token binds it: the /24 of an
// IPv4 address, the /64 of an IPv6 one. A prefix rather than the address,
// because a visitor's address moves within its network (CGNAT pools, IPv6
// privacy addresses) and a cleared visitor should not be challenged again
// for that; a token copied to another network is refused.
func ipBinding(ip netip.Addr) (b [ipBindingSize]byte) {
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		a := ip.As4()
		b[0] = 4
		copy(b[1:], a[:3])
	case ip.Is6():
		a := ip.As16()
		b[0] = 6
		copy(b[1:], a[:8])
	}
	return b
}

// IPPrefix is the network a token issued to ip is bound to.
func IPPrefix(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	if ip.Is4() {
		p, _ := ip.Prefix(24)
		return p
	}
	p, _ := ip.Prefix(64)
	return p
}

// uaHash is the first 16 bytes of SHA-256 of the User-Agent. The binding
// does not need collision resistance against the visitor (who can simply
// send the same User-Agent again); it makes a token lifted into another
// client's requests fail unless that client copies the User-Agent too.
func uaHash(ua string) (h [uaHashSize]byte) {
	sum := sha256.Sum256(bytesOf(ua))
	copy(h[:], sum[:])
	return h
}

// targetHash binds a challenge to the request it interrupted.
func targetHash(method, url string) (h [targetSize]byte) {
	var d = sha256.New()
	d.Write(bytesOf(method))
	d.Write([]byte{0})
	d.Write(bytesOf(url))
	var sum [sha256.Size]byte
	d.Sum(sum[:0])
	copy(h[:], sum[:])
	return h
}

// bytesOf views a string's bytes without copying. Only for callees that read
// and do not keep their argument (hashing, decoding): a []byte(s) conversion
// of a User-Agent or cookie, longer than 32 bytes, would allocate on every
// request.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// IssueClearance signs a clearance for the client, earned at difficulty,
// valid until expires.
func (kr *Keyring) IssueClearance(clientIP netip.Addr, userAgent string, difficulty int, expires time.Time) string {
	var buf [clearanceSize]byte
	k := &kr.current
	buf[offType] = typeClearance
	binary.BigEndian.PutUint32(buf[offKeyID:], k.ID)
	binary.BigEndian.PutUint64(buf[offExpires:], uint64(expires.Unix()))
	buf[offDifficulty] = byte(clampDifficulty(difficulty))
	ipb := ipBinding(clientIP)
	copy(buf[offIP:], ipb[:])
	uah := uaHash(userAgent)
	copy(buf[offUA:], uah[:])
	var mac [sha256.Size]byte
	k.mac(buf[:clearancePayload], &mac)
	copy(buf[clearancePayload:], mac[:])
	return base64.RawURLEncoding.EncodeToString(buf[:])
}

func clampDifficulty(d int) int {
	if d < 0 {
		return 0
	}
	if d > MaxDifficulty {
		return MaxDifficulty
	}
	return d
}

// Verify checks a clearance token: well-formed, signed by a key of this
// keyring, not expired at now, issued to clientIP's network and to
// userAgent, and earned at minDifficulty or more (so raising a rule's
// difficulty re-challenges visitors cleared at the old one). The first
// failing check is the reason. It allocates nothing.
func (kr *Keyring) Verify(cookie string, clientIP netip.Addr, userAgent string, now time.Time, minDifficulty int) (Clearance, error) {
	if len(cookie) != ClearanceLen {
		return Clearance{}, ReasonMalformed
	}
	var buf [clearanceSize]byte
	id, exp, err := kr.open(buf[:], clearancePayload, typeClearance, cookie, clientIP, userAgent, now)
	if err != nil {
		return Clearance{}, err
	}
	d := int(buf[offDifficulty])
	if d < minDifficulty {
		return Clearance{}, ReasonDifficultyTooLow
	}
	return Clearance{KeyID: id, Expires: time.Unix(exp, 0), Difficulty: d}, nil
}

// open decodes a challenge or clearance (encoded) into buf and runs the
// checks both share, in the order that names the first failure: shape and
// type, a key of this keyring, the MAC (before anything else in the payload
// is believed), expiry at now, and the binding to clientIP's network and
// userAgent. It returns the key id and expiry; buf holds the payload.
func (kr *Keyring) open(buf []byte, payload int, typ byte, encoded string, clientIP netip.Addr, userAgent string, now time.Time) (id uint32, exp int64, err error) {
	if n, err := base64.RawURLEncoding.Decode(buf, bytesOf(encoded)); err != nil || n != len(buf) {
		return 0, 0, ReasonMalformed
	}
	if buf[offType] != typ {
		return 0, 0, ReasonMalformed
	}
	id = binary.BigEndian.Uint32(buf[offKeyID:])
	k, ok := kr.lookup(id)
	if !ok {
		return 0, 0, ReasonUnknownKey
	}
	var mac [sha256.Size]byte
	k.mac(buf[:payload], &mac)
	if subtle.ConstantTimeCompare(mac[:], buf[payload:]) != 1 {
		return 0, 0, ReasonForged
	}
	exp = int64(binary.BigEndian.Uint64(buf[offExpires:]))
	if now.Unix() >= exp {
		return 0, 0, ReasonExpired
	}
	ipb := ipBinding(clientIP)
	if ipb[0] == 0 || [ipBindingSize]byte(buf[offIP:offIP+ipBindingSize]) != ipb {
		return 0, 0, ReasonWrongIP
	}
	if [uaHashSize]byte(buf[offUA:offUA+uaHashSize]) != uaHash(userAgent) {
		return 0, 0, ReasonWrongUserAgent
	}
	return id, exp, nil
}
