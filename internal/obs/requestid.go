// Package obs holds what ties warden's observations together: the request
// id a client sees in X-Request-Id and every refusal body, and that the
// decision log and the upstream carry too; and the decision log's writer.
package obs

import (
	"math/rand/v2"
	"sync"
)

// idsPerBatch request ids are made at once into one string, so that a
// request id costs no allocation of its own (1/64 of one): on the refusal
// path it was the one allocation left in the engine.
const idsPerBatch = 64

type idBatch struct {
	s    string
	next int
}

var idBatches = sync.Pool{New: func() any { return new(idBatch) }}

// NewRequestID returns 16 hex digits from the runtime's per-thread random
// source: unique enough to match a support request to a log line, cheap
// enough for every request, and never derived from anything the client
// sent. Ids are cut from a batch string, which stays alive while any of its
// ids does (1 KiB).
func NewRequestID() string {
	b := idBatches.Get().(*idBatch)
	if b.next == len(b.s) {
		b.s, b.next = fillIDs(), 0
	}
	id := b.s[b.next : b.next+16]
	b.next += 16
	idBatches.Put(b)
	return id
}

func fillIDs() string {
	const hexd = "0123456789abcdef"
	buf := make([]byte, 16*idsPerBatch)
	for i := 0; i < len(buf); i += 16 {
		v := rand.Uint64()
		for j := range 16 {
			buf[i+j] = hexd[v&15]
			v >>= 4
		}
	}
	return string(buf)
}
