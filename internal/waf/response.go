package waf

import (
	"bytes"
	"errors"
	"net/http"
	"strings"

	"github.com/warden-gateway/warden/internal/decision"
)

// ResponseVerdict is the WAF's judgement of a response (phases 3 and 4),
// together with the logging phase that ends the transaction.
type ResponseVerdict struct {
	// Blocked: in block mode the response was refused before any of it
	// reached the client; the caller must send the refusal instead.
	Blocked bool
	// WouldBlock: the outbound anomaly score reached the threshold (or a
	// response rule interrupted). True in both modes; when the response had
	// already been streamed it could no longer be stopped.
	WouldBlock bool
	// Status is the status the interrupting rule asked for (0 when none).
	Status int
	// Score is the outbound (blocking) anomaly score.
	Score int
	// Matches are the rules matched in phases 3, 4 and 5.
	Matches []Match
	// Streamed: the body went to the client as it came, so phase 4 saw
	// none of it (a type outside SecResponseBodyMimeType) or only its first
	// ResponseBodyLimit bytes.
	Streamed bool
}

// Refusal is warden's decision for a blocked response.
func (rv *ResponseVerdict) Refusal() (decision.Decision, bool) {
	if !rv.Blocked {
		return decision.Decision{}, false
	}
	d := decision.Refuse(decision.WAFBlocked, "the response was judged unsafe")
	d.Rule = "waf"
	var b strings.Builder
	b.WriteString("waf response")
	writeMatches(&b, rv.Matches)
	d.Detail = b.String()
	return d, true
}

// WrapResponse returns the writer the handler should serve into. When
// response inspection is pending it holds the status, headers and body
// (inspectable types, up to ResponseBodyLimit) until phases 3 and 4 have
// judged them; Finish then sends them or reports them blocked. Otherwise it
// returns w itself.
func (v *Verdict) WrapResponse(w http.ResponseWriter) http.ResponseWriter {
	if v.open == nil || v.open.closed {
		return w
	}
	if v.open.rw == nil {
		v.open.rw = &heldResponse{ot: v.open, w: w, header: http.Header{}}
	}
	return v.open.rw
}

// Finish ends the WAF transaction: it judges the held response, sends it
// unless it is blocked, runs the logging phase and releases the transaction.
// It must be called once after Inspect whenever response inspection is on
// and the request was not refused, also when nothing was served (then only
// the logging phase runs). Without a pending transaction it does nothing.
// The error is the client's: writing the held response failed.
func (v *Verdict) Finish() (ResponseVerdict, error) {
	ot := v.open
	if ot == nil || ot.closed {
		return ResponseVerdict{}, nil
	}
	var rv ResponseVerdict
	var err error
	if rw := ot.rw; rw != nil {
		if !rw.wroteHeader {
			rw.WriteHeader(http.StatusOK)
		}
		if rw.state == holdingBody {
			rw.judgeBody()
			if !rw.blocked {
				rw.commit()
			}
		}
		if rw.state == streaming && !rw.judged {
			rw.judgeBody() // phase 4 on no body: outbound score evaluation
		}
		rv.Blocked = rw.blocked
		rv.Streamed = rw.streamedUnseen
		err = rw.err
	}
	tx := ot.tx
	rv.Score = txInt(tx, "blocking_outbound_anomaly_score")
	threshold := txInt(tx, "outbound_anomaly_score_threshold")
	if it := tx.Interruption(); it != nil && ot.rw != nil && ot.rw.interruptedHere {
		rv.WouldBlock = true
		rv.Status = interruptionStatus(it)
	}
	if threshold > 0 && rv.Score >= threshold {
		rv.WouldBlock = true
	}
	rv.Matches = append(ot.newMatches(), ot.close()...)
	return rv, err
}

type responseState uint8

const (
	beforeHeader responseState = iota
	holdingBody                // inspectable: body kept until phase 4
	streaming                  // committed to the client
	refused                    // blocked; everything discarded
)

// heldResponse is the ResponseWriter between the handler and the client
// while the response is judged.
type heldResponse struct {
	ot          *openTransaction
	w           http.ResponseWriter
	header      http.Header
	status      int
	wroteHeader bool
	state       responseState
	body        bytes.Buffer
	judged      bool
	blocked     bool
	// interruptedHere: the interruption (if any) came from a response phase.
	interruptedHere bool
	streamedUnseen  bool
	err             error
}

func (h *heldResponse) Header() http.Header { return h.header }

// Unwrap lets http.ResponseController reach the connection (for example to
// hijack it for a protocol upgrade, which the WAF does not inspect).
func (h *heldResponse) Unwrap() http.ResponseWriter { return h.w }

func (h *heldResponse) WriteHeader(status int) {
	if h.wroteHeader {
		return
	}
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		return // informational responses are not passed through a held response
	}
	h.wroteHeader = true
	h.status = status
	tx := h.ot.tx
	for name, values := range h.header {
		for _, value := range values {
			tx.AddResponseHeader(name, value)
		}
	}
	if tx.ProcessResponseHeaders(status, h.ot.proto) != nil {
		h.refuse()
		return
	}
	if status != http.StatusSwitchingProtocols && tx.IsResponseBodyAccessible() && tx.IsResponseBodyProcessable() {
		h.state = holdingBody
		return
	}
	h.streamedUnseen = true
	h.commit()
}

func (h *heldResponse) Write(b []byte) (int, error) {
	if !h.wroteHeader {
		if h.header.Get("Content-Type") == "" && h.header.Get("Content-Encoding") == "" && len(b) > 0 {
			// What net/http would send; it decides whether the body is inspectable.
			h.header.Set("Content-Type", http.DetectContentType(b))
		}
		h.WriteHeader(http.StatusOK)
	}
	switch h.state {
	case refused:
		return len(b), nil
	case streaming:
		n, err := h.w.Write(b)
		if err != nil && h.err == nil {
			h.err = err
		}
		return n, err
	case holdingBody:
		room := ResponseBodyLimit - h.body.Len()
		if len(b) <= room {
			return h.body.Write(b)
		}
		h.body.Write(b[:room])
		h.judgeBody()
		if h.blocked {
			return len(b), nil
		}
		h.streamedUnseen = true
		h.commit()
		n, err := h.w.Write(b[room:])
		if err != nil && h.err == nil {
			h.err = err
		}
		return room + n, err
	}
	return 0, errors.New("waf: response written before its status")
}

// Flush passes through once the response is committed; a held body cannot
// be flushed before it is judged.
func (h *heldResponse) Flush() {
	if !h.wroteHeader {
		h.WriteHeader(http.StatusOK)
	}
	if h.state == streaming {
		_ = http.NewResponseController(h.w).Flush()
	}
}

// judgeBody runs phase 4 on the held body (possibly none).
func (h *heldResponse) judgeBody() {
	if h.judged {
		return
	}
	h.judged = true
	tx := h.ot.tx
	if h.body.Len() > 0 {
		if it, _, err := tx.WriteResponseBody(h.body.Bytes()); it != nil {
			h.refuse()
			return
		} else if err != nil && h.err == nil {
			h.err = err
		}
	}
	it, err := tx.ProcessResponseBody()
	if err != nil && h.err == nil {
		h.err = err
	}
	if it != nil {
		h.interruptedHere = true
		if h.state != streaming {
			h.refuse()
		}
	}
}

func (h *heldResponse) refuse() {
	h.blocked = true
	h.interruptedHere = true
	h.state = refused
	h.body.Reset()
}

// commit sends the held status, headers and body to the client.
func (h *heldResponse) commit() {
	dst := h.w.Header()
	for name, values := range h.header {
		dst[name] = values
	}
	h.w.WriteHeader(h.status)
	h.state = streaming
	if h.body.Len() > 0 {
		if _, err := h.w.Write(h.body.Bytes()); err != nil && h.err == nil {
			h.err = err
		}
		h.body.Reset()
	}
}
