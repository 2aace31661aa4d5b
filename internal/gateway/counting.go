package gateway

import "net/http"

// countingWriter notes what was sent (status and body bytes), for the
// access log and metrics: the file server and the proxy write responses
// the engine never sees. Unwrap lets http.ResponseController reach the
// connection's Flush and Hijack (streaming, upgrades) through it.
type countingWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 || c.status < 200 && code >= 200 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.bytes += int64(n)
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
