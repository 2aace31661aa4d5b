package challenge

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"strconv"
	"time"
)

// Puzzle is what a valid challenge says.
type Puzzle struct {
	KeyID      uint32
	Nonce      [nonceSize]byte
	Difficulty int
	Expires    time.Time
}

// IssueChallenge signs a proof-of-work challenge. It is stateless: the
// random nonce, the difficulty, the expiry, the client's network and
// User-Agent and the interrupted request (method and URL) are all inside the
// token, under the MAC, so any replica can check a solution and no field can
// be changed by the client (lowering the difficulty makes it a forgery).
// The caller passes a fresh random nonce; the function itself is pure.
func (kr *Keyring) IssueChallenge(clientIP netip.Addr, userAgent, method, url string, difficulty int, expires time.Time, nonce [nonceSize]byte) string {
	var buf [challengeSize]byte
	k := &kr.current
	buf[offType] = typeChallenge
	binary.BigEndian.PutUint32(buf[offKeyID:], k.ID)
	binary.BigEndian.PutUint64(buf[offExpires:], uint64(expires.Unix()))
	buf[offDifficulty] = byte(clampDifficulty(difficulty))
	ipb := ipBinding(clientIP)
	copy(buf[offIP:], ipb[:])
	uah := uaHash(userAgent)
	copy(buf[offUA:], uah[:])
	th := targetHash(method, url)
	copy(buf[offTarget:], th[:])
	copy(buf[offNonce:], nonce[:])
	var mac [sha256.Size]byte
	k.mac(buf[:challengePayload], &mac)
	copy(buf[challengePayload:], mac[:])
	return base64.RawURLEncoding.EncodeToString(buf[:])
}

// maxCounterDigits bounds the counter a client may post: a uint64 in decimal.
const maxCounterDigits = 20

// CheckSolution checks a posted solution: the challenge is one of ours,
// unchanged, unexpired, issued to this client's network and User-Agent and
// for this method and URL; and SHA-256(challenge || counter) has at least
// the challenge's difficulty in leading zero bits. The server does the hash
// itself: nothing the client claims about its work is believed. Whether the
// challenge was already redeemed is the caller's to check (the handler keeps
// the spent set), since this function is pure.
func (kr *Keyring) CheckSolution(challenge, counter string, clientIP netip.Addr, userAgent, method, url string, now time.Time) (Puzzle, error) {
	if len(challenge) != ChallengeLen || len(counter) == 0 || len(counter) > maxCounterDigits {
		return Puzzle{}, ReasonMalformed
	}
	for i := 0; i < len(counter); i++ {
		if counter[i] < '0' || counter[i] > '9' {
			return Puzzle{}, ReasonMalformed
		}
	}
	var buf [challengeSize]byte
	id, exp, err := kr.open(buf[:], challengePayload, typeChallenge, challenge, clientIP, userAgent, now)
	if err != nil {
		return Puzzle{}, err
	}
	if [targetSize]byte(buf[offTarget:offTarget+targetSize]) != targetHash(method, url) {
		return Puzzle{}, ReasonWrongTarget
	}
	d := int(buf[offDifficulty])
	if LeadingZeroBits(WorkHash(challenge, counter)) < d {
		return Puzzle{}, ReasonInsufficientWork
	}
	p := Puzzle{KeyID: id, Difficulty: d, Expires: time.Unix(exp, 0)}
	copy(p.Nonce[:], buf[offNonce:])
	return p, nil
}

// WorkHash is SHA-256 over the challenge's text followed by the counter's
// decimal digits: what the page's worker computes.
func WorkHash(challenge, counter string) [sha256.Size]byte {
	var in [256]byte
	n := copy(in[:], challenge)
	n += copy(in[n:], counter)
	return sha256.Sum256(in[:n])
}

// LeadingZeroBits counts the leading zero bits of a hash.
func LeadingZeroBits(sum [sha256.Size]byte) int {
	n := 0
	for i := 0; i < len(sum); i += 8 {
		w := binary.BigEndian.Uint64(sum[i:])
		if w != 0 {
			return n + bits.LeadingZeros64(w)
		}
		n += 64
	}
	return n
}

// Solve finds the smallest counter that meets difficulty, as a browser's
// worker would (for tests, benchmarks and command-line clients). It gives up
// after maxTries counters.
func Solve(challenge string, difficulty int, maxTries uint64) (string, bool) {
	var buf [24]byte
	for c := uint64(0); c < maxTries; c++ {
		s := strconv.AppendUint(buf[:0], c, 10)
		if LeadingZeroBits(WorkHash(challenge, string(s))) >= difficulty {
			return string(s), true
		}
	}
	return "", false
}
