package identity

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"hash"
	"strconv"
	"strings"
)

// The hash kinds that nginx (through the system's crypt(3), on Debian
// libxcrypt, plus its own {PLAIN}, {SHA} and {SSHA}) and Apache (through
// apr_password_validate: bcrypt, $apr1$, {SHA}, and crypt(3) for the rest)
// read from a user file, so that a file they accept keeps working behind
// warden. SHA-crypt is a salted, iterated hash (5000 rounds by default) and
// is accepted like bcrypt; the others are accepted only with
// allow_weak_hashes.

// Scheme names, as hashScheme returns them.
const (
	schemeBcrypt    = "bcrypt"
	schemeSHA256    = "SHA-256-crypt ($5$)"
	schemeSHA512    = "SHA-512-crypt ($6$)"
	schemeMD5Crypt  = "MD5-crypt ($1$)"
	schemeAPR1      = "$apr1$"
	schemeSHA       = "{SHA}"
	schemeSSHA      = "{SSHA}"
	schemePlain     = "{PLAIN}"
	schemeDES       = "DES crypt"
	schemeUnknown   = "a plain-text password or an unknown hash"
	shaCryptDefault = 5000
	shaCryptMin     = 1000
	shaCryptMax     = 999999999
)

// strongScheme reports the schemes accepted without allow_weak_hashes.
func strongScheme(s string) bool {
	return s == schemeBcrypt || s == schemeSHA256 || s == schemeSHA512
}

// checkHashSyntax reports whether hash is well-formed for its scheme (so
// that a malformed entry is an error at load time, not a user who silently
// cannot sign in).
func checkHashSyntax(scheme, hash string) error {
	switch scheme {
	case schemeSHA256, schemeSHA512:
		_, _, _, _, err := splitSHACrypt(hash)
		return err
	case schemeMD5Crypt:
		_, _, err := splitMD5Crypt(hash, "$1$")
		return err
	case schemeAPR1:
		_, _, err := splitAPR1(hash)
		return err
	case schemeSHA:
		if b, err := base64.StdEncoding.DecodeString(hash[5:]); err != nil || len(b) != sha1.Size {
			return errors.New("malformed {SHA} hash")
		}
	case schemeSSHA:
		if b, err := base64.StdEncoding.DecodeString(hash[6:]); err != nil || len(b) <= sha1.Size {
			return errors.New("malformed {SSHA} hash")
		}
	case schemeDES:
		for i := 0; i < len(hash); i++ {
			if strings.IndexByte(cryptAlphabet, hash[i]) < 0 {
				return errors.New("malformed DES crypt hash")
			}
		}
	}
	return nil
}

// verifyCryptFamily checks password against a hash of the schemes added for
// nginx and Apache compatibility (bcrypt, $apr1$ and {SHA} are checked by
// checkPassword itself). Comparisons are constant-time.
func verifyCryptFamily(scheme, hash, password string) bool {
	var want string
	switch scheme {
	case schemeSHA256, schemeSHA512:
		got, err := shaCrypt(password, hash)
		if err != nil {
			return false
		}
		want = got
	case schemeMD5Crypt:
		salt, _, err := splitMD5Crypt(hash, "$1$")
		if err != nil {
			return false
		}
		want = md5Crypt(password, "$1$", salt)
	case schemeSSHA:
		raw, err := base64.StdEncoding.DecodeString(hash[6:])
		if err != nil || len(raw) <= sha1.Size {
			return false
		}
		sum := sha1.Sum(append([]byte(password), raw[sha1.Size:]...))
		return subtle.ConstantTimeCompare(sum[:], raw[:sha1.Size]) == 1
	case schemePlain:
		return subtle.ConstantTimeCompare([]byte(hash[7:]), []byte(password)) == 1
	case schemeDES:
		want = desCrypt(password, hash[:2])
	default:
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hash), []byte(want)) == 1
}

// splitSHACrypt reads "$5$[rounds=N$]salt$sum" (or $6$): the salt is at
// most 16 characters, rounds are clamped to [1000, 999999999] as the
// specification says (https://www.akkadia.org/drepper/SHA-crypt.txt).
func splitSHACrypt(hash string) (prefix string, rounds int, explicit bool, salt string, err error) {
	var sumLen int
	switch {
	case strings.HasPrefix(hash, "$5$"):
		prefix, sumLen = "$5$", 43
	case strings.HasPrefix(hash, "$6$"):
		prefix, sumLen = "$6$", 86
	default:
		return "", 0, false, "", errors.New("not a SHA-crypt hash")
	}
	rest := hash[3:]
	rounds = shaCryptDefault
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		num, after, found := strings.Cut(r, "$")
		n, perr := strconv.ParseUint(num, 10, 64)
		if !found || perr != nil || num == "" {
			return "", 0, false, "", errors.New("malformed rounds= in SHA-crypt hash")
		}
		rounds = int(min(max(n, shaCryptMin), shaCryptMax))
		explicit = true
		rest = after
	}
	salt, sum, ok := strings.Cut(rest, "$")
	if !ok || len(salt) > 16 || len(sum) != sumLen {
		return "", 0, false, "", errors.New("malformed SHA-crypt hash")
	}
	return prefix, rounds, explicit, salt, nil
}

// shaCrypt computes SHA-256-crypt or SHA-512-crypt of password with the
// parameters of hash, following Ulrich Drepper's specification step by step.
func shaCrypt(password, stored string) (string, error) {
	prefix, rounds, explicit, salt, err := splitSHACrypt(stored)
	if err != nil {
		return "", err
	}
	newHash := sha256.New
	if prefix == "$6$" {
		newHash = sha512.New
	}
	pw, s := []byte(password), []byte(salt)
	sum := func(parts ...[]byte) []byte {
		h := newHash()
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum(nil)
	}
	size := newHash().Size()
	// Steps 4-8: digest B of password, salt, password.
	b := sum(pw, s, pw)
	// Steps 1-3, 9-12: digest A.
	a := newHash()
	a.Write(pw)
	a.Write(s)
	for n := len(pw); n > 0; n -= size {
		a.Write(b[:min(n, size)])
	}
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(b)
		} else {
			a.Write(pw)
		}
	}
	digestA := a.Sum(nil)
	// Steps 13-16: P, the password hashed len(password) times.
	dp := newHash()
	for range len(pw) {
		dp.Write(pw)
	}
	p := repeatTo(dp.Sum(nil), len(pw))
	// Steps 17-20: S, the salt hashed 16+A[0] times.
	ds := newHash()
	for range 16 + int(digestA[0]) {
		ds.Write(s)
	}
	sBytes := repeatTo(ds.Sum(nil), len(s))
	// Step 21: the rounds.
	c := digestA
	var h hash.Hash = newHash()
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sBytes)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}
	var out strings.Builder
	out.WriteString(prefix)
	if explicit {
		out.WriteString("rounds=" + strconv.Itoa(rounds) + "$")
	}
	out.WriteString(salt + "$")
	enc := func(b2, b1, b0 byte, n int) {
		v := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for ; n > 0; n-- {
			out.WriteByte(cryptAlphabet[v&0x3f])
			v >>= 6
		}
	}
	if prefix == "$5$" {
		for i := range 10 {
			// (0,10,20), (21,1,11), (12,22,2), ...: each group starts 10
			// bytes on, modulo 30, rotated.
			x, y, z := (i*21)%30, (i*21+10)%30, (i*21+20)%30
			enc(c[x], c[y], c[z], 4)
		}
		enc(0, c[31], c[30], 3)
	} else {
		for i := range 21 {
			x, y, z := (i*22)%63, (i*22+21)%63, (i*22+42)%63
			enc(c[x], c[y], c[z], 4)
		}
		enc(0, 0, c[63], 2)
	}
	return out.String(), nil
}

func repeatTo(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}

// splitMD5Crypt returns the salt and checksum of "<magic>salt$checksum".
func splitMD5Crypt(hash, magic string) (salt, sum string, err error) {
	rest, ok := strings.CutPrefix(hash, magic)
	if !ok {
		return "", "", errors.New("not an MD5-crypt hash")
	}
	salt, sum, ok = strings.Cut(rest, "$")
	if !ok || len(salt) > 8 || len(sum) != 22 {
		return "", "", errors.New("malformed MD5-crypt hash")
	}
	return salt, sum, nil
}

// md5Crypt is Poul-Henning Kamp's md5crypt ("$1$"); Apache's $apr1$ is the
// same algorithm with another magic string.
func md5Crypt(password, magic, salt string) string {
	pw := []byte(password)
	alt := md5.Sum([]byte(password + salt + password))
	ctx := md5.New()
	ctx.Write(pw)
	ctx.Write([]byte(magic))
	ctx.Write([]byte(salt))
	for i := len(pw); i > 0; i -= 16 {
		ctx.Write(alt[:min(i, 16)])
	}
	for i := len(pw); i > 0; i >>= 1 {
		if i&1 != 0 {
			ctx.Write([]byte{0})
		} else {
			ctx.Write(pw[:1])
		}
	}
	sum := ctx.Sum(nil)
	for i := range 1000 {
		round := md5.New()
		if i&1 != 0 {
			round.Write(pw)
		} else {
			round.Write(sum)
		}
		if i%3 != 0 {
			round.Write([]byte(salt))
		}
		if i%7 != 0 {
			round.Write(pw)
		}
		if i&1 != 0 {
			round.Write(sum)
		} else {
			round.Write(pw)
		}
		sum = round.Sum(sum[:0])
	}
	var out strings.Builder
	out.WriteString(magic + salt + "$")
	enc := func(a, b, c byte, n int) {
		v := uint(a)<<16 | uint(b)<<8 | uint(c)
		for ; n > 0; n-- {
			out.WriteByte(cryptAlphabet[v&0x3f])
			v >>= 6
		}
	}
	enc(sum[0], sum[6], sum[12], 4)
	enc(sum[1], sum[7], sum[13], 4)
	enc(sum[2], sum[8], sum[14], 4)
	enc(sum[3], sum[9], sum[15], 4)
	enc(sum[4], sum[10], sum[5], 4)
	enc(0, 0, sum[11], 2)
	return out.String()
}

// --- traditional DES crypt (crypt(3) with a two-character salt) ---

var (
	desIP = [64]byte{58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
		62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
		57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
		61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7}
	desFP = [64]byte{40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31,
		38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29,
		36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
		34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25}
	desE = [48]byte{32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9,
		8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
		16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25,
		24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1}
	desP = [32]byte{16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
		2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25}
	desPC1 = [56]byte{57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
		10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
		63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
		14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4}
	desPC2 = [48]byte{14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
		23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
		41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
		44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32}
	desShifts = [16]byte{1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1}
	desS      = [8][64]byte{
		{14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
			0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
			4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
			15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13},
		{15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
			3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
			0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
			13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9},
		{10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
			13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
			13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
			1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12},
		{7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
			13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
			10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
			3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14},
		{2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
			14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
			4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
			11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3},
		{12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
			10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
			9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
			4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13},
		{4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
			13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
			1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
			6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12},
		{13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
			1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
			7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
			2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11},
	}
)

// desSaltValue reads a salt character as crypt(3) does (libxcrypt's
// ascii_to_bin): the crypt alphabet, other bytes mapped as glibc did.
func desSaltValue(c byte) uint32 {
	if i := strings.IndexByte(cryptAlphabet, c); i >= 0 {
		return uint32(i)
	}
	return 0
}

// desCrypt is the traditional Unix crypt: the first 8 characters of the
// password (7 bits each) are the DES key, 25 encryptions of a zero block
// with the E expansion perturbed by the 12 salt bits.
func desCrypt(password, salt string) string {
	if len(salt) < 2 {
		return ""
	}
	saltBits := desSaltValue(salt[0]) | desSaltValue(salt[1])<<6
	var key [64]byte
	for i := 0; i < 8 && i < len(password); i++ {
		c := password[i]
		for j := range 7 {
			key[i*8+j] = (c >> (6 - j)) & 1
		}
	}
	// Key schedule.
	var cd [56]byte
	for i := range 56 {
		cd[i] = key[desPC1[i]-1]
	}
	var subkeys [16][48]byte
	for r := range 16 {
		for range desShifts[r] {
			c0, d0 := cd[0], cd[28]
			copy(cd[0:27], cd[1:28])
			cd[27] = c0
			copy(cd[28:55], cd[29:56])
			cd[55] = d0
		}
		for i := range 48 {
			subkeys[r][i] = cd[desPC2[i]-1]
		}
	}
	// The salted expansion: salt bit i swaps E outputs i and i+24.
	var e [48]byte
	copy(e[:], desE[:])
	for i := range 12 {
		if saltBits>>i&1 != 0 {
			e[i], e[i+24] = e[i+24], e[i]
		}
	}
	var block [64]byte
	for range 25 {
		var lr [64]byte
		for i := range 64 {
			lr[i] = block[desIP[i]-1]
		}
		l, r := lr[:32], lr[32:]
		for round := range 16 {
			var f [32]byte
			var x [48]byte
			for i := range 48 {
				x[i] = r[e[i]-1] ^ subkeys[round][i]
			}
			var sOut [32]byte
			for s := range 8 {
				b := x[s*6 : s*6+6]
				row := b[0]<<1 | b[5]
				col := b[1]<<3 | b[2]<<2 | b[3]<<1 | b[4]
				v := desS[s][row*16+col]
				for j := range 4 {
					sOut[s*4+j] = (v >> (3 - j)) & 1
				}
			}
			for i := range 32 {
				f[i] = sOut[desP[i]-1]
			}
			var newR [32]byte
			for i := range 32 {
				newR[i] = l[i] ^ f[i]
			}
			copy(l, r)
			copy(r, newR[:])
		}
		// The halves are swapped after the last round.
		var pre [64]byte
		copy(pre[:32], r)
		copy(pre[32:], l)
		for i := range 64 {
			block[i] = pre[desFP[i]-1]
		}
	}
	var out strings.Builder
	out.WriteString(salt[:2])
	for i := 0; i < 66; i += 6 {
		var v byte
		for j := range 6 {
			v <<= 1
			if i+j < 64 {
				v |= block[i+j]
			}
		}
		out.WriteByte(cryptAlphabet[v])
	}
	return out.String()
}

// ClassifyHash names the scheme of a user-file hash and says whether warden
// accepts it without allow_weak_hashes; err is set when no server could
// read it (unknown scheme or malformed), so that tools such as warden
// import can tell which users would be left out.
func ClassifyHash(hash string) (scheme string, strong bool, err error) {
	scheme = hashScheme(hash)
	switch scheme {
	case schemeUnknown:
		return scheme, false, errors.New("not a hash nginx or Apache reads")
	case schemeBcrypt:
		if len(hash) != 60 {
			return scheme, true, errors.New("malformed bcrypt hash")
		}
		return scheme, true, nil
	}
	return scheme, strongScheme(scheme), checkHashSyntax(scheme, hash)
}
