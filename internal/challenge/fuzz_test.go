package challenge

import (
	"testing"
	"time"
)

// FuzzVerify: no input panics, and nothing but the issued token verifies
// (a MAC forgery by mutation would be found here first).
func FuzzVerify(f *testing.F) {
	kr := testRing(f)
	tok := kr.IssueClearance(ipA, uaFF, 8, t0.Add(time.Hour))
	f.Add(tok)
	f.Add(tok[:ClearanceLen-1] + "A")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		_, err := kr.Verify(s, ipA, uaFF, t0, 0)
		if err == nil && s != tok {
			t.Fatalf("%q verified", s)
		}
		kr.CheckSolution(s, "1", ipA, uaFF, "GET", "/", t0)
	})
}
