package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzFramer feeds arbitrary client bytes to the framing check that guards
// against request smuggling. Properties:
//   - how the bytes are split across reads does not change a verdict;
//   - wherever net/http reads a sequence of requests from the same bytes,
//     the framer saw the same requests in the same order, up to the first
//     one it refuses: the two never disagree about where a request ends
//     without warden refusing it.
func FuzzFramer(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.0\nHost: x\n\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		whole := framer{maxBlock: DefaultMaxHeaderBytes + 4096, first: true}
		whole.scan(data)
		split := framer{maxBlock: DefaultMaxHeaderBytes + 4096, first: true}
		n := int(step%31) + 1
		for i := 0; i < len(data); i += n {
			split.scan(data[i:min(i+n, len(data))])
		}
		if len(whole.verdicts) != len(split.verdicts) || whole.stopped != split.stopped {
			t.Fatalf("reads of %d bytes changed the outcome: %v %q vs %v %q", n, whole.verdicts, whole.stopped, split.verdicts, split.stopped)
		}
		for i := range whole.verdicts {
			if whole.verdicts[i] != split.verdicts[i] {
				t.Fatalf("verdict %d: %v vs %v", i, whole.verdicts[i], split.verdicts[i])
			}
		}
		if len(whole.verdicts) > bytes.Count(data, []byte("\n")) {
			t.Fatalf("%d verdicts from %d lines", len(whole.verdicts), bytes.Count(data, []byte("\n")))
		}
		br := bufio.NewReader(bytes.NewReader(data))
		for i := 0; ; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if i >= len(whole.verdicts) {
				if whole.stopped != "" {
					return // refused: warden closes the connection
				}
				t.Fatalf("net/http read request %d (%s %s) that the framer did not see", i, req.Method, req.RequestURI)
			}
			v := whole.verdicts[i]
			if v.why != "" {
				return
			}
			if v.key != requestKey(req.Method, req.RequestURI) {
				t.Fatalf("request %d: net/http read %s %s, the framer another", i, req.Method, req.RequestURI)
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
		}
	})
}

// TestFramerDoesNotAllocate: following a keep-alive connection costs no
// allocation per request once its buffers have grown.
func TestFramerDoesNotAllocate(t *testing.T) {
	req := []byte("POST /api/v1/items/0123456789abcdef0123456789abcdef?with=a&long=query HTTP/1.1\r\nHost: example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\nContent-Length: 5\r\nAccept: */*\r\n\r\nhello")
	f := framer{maxBlock: DefaultMaxHeaderBytes + 4096, first: true}
	method, target := "POST", "/api/v1/items/0123456789abcdef0123456789abcdef?with=a&long=query"
	run := func() {
		f.scan(req)
		if why := f.pop(requestKey(method, target)); why != "" {
			t.Fatal(why)
		}
	}
	run()
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Errorf("%v allocations per request", n)
	}
}
