// Package obs holds what ties warden's observations together: the request
// id a client sees in X-Request-Id and every refusal body, and that the
// decision log and the upstream carry too.
package obs

import "math/rand/v2"

// NewRequestID returns 16 hex digits from the runtime's per-thread random
// source: unique enough to match a support request to a log line, cheap
// enough for every request, and never derived from anything the client
// sent.
func NewRequestID() string {
	const hexd = "0123456789abcdef"
	var b [16]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = hexd[v&15]
		v >>= 4
	}
	return string(b[:])
}
