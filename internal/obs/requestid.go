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
	// vals are the batch's ids, each one a header value of its own:
	// vals[i:i+1:i+1] is handed out once and never written again.
	vals [idsPerBatch]string
	next int
}

var idBatches = sync.Pool{New: func() any { return &idBatch{next: idsPerBatch} }}

// NewRequestID returns 16 hex digits from the runtime's per-thread random
// source: unique enough to match a support request to a log line, cheap
// enough for every request, and never derived from anything the client
// sent. Ids are cut from a batch string, which stays alive while any of its
// ids does (1 KiB).
func NewRequestID() string { return NewRequestIDValue()[0] }

// NewRequestIDValue is a new request id as a header value, []string{id},
// ready for w.Header()["X-Request-Id"]: cut from a batch too, so that
// setting the header costs no allocation of its own either (issue 17: it
// was the last one on the refusal path). The slice has capacity 1, so an
// append to it copies; nothing writes into it.
func NewRequestIDValue() []string {
	b := idBatches.Get().(*idBatch)
	if b.next == idsPerBatch {
		// A fresh array: the previous one's slices are still in use.
		nb := &idBatch{}
		s := fillIDs()
		for i := range nb.vals {
			nb.vals[i] = s[16*i : 16*i+16]
		}
		b = nb
	}
	v := b.vals[b.next : b.next+1 : b.next+1]
	b.next++
	idBatches.Put(b)
	return v
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
