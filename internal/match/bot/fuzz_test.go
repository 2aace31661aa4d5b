package bot

import (
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzWebBotAuth: no header content panics the parser or the verifier.
func FuzzWebBotAuth(f *testing.F) {
	f.Add(`sig1=("@authority" "signature-agent";key="sig1");created=1;expires=2;keyid="k";tag="web-bot-auth"`, `sig1=:AAAA:`, `sig1="https://a.example"`)
	f.Add(`a=(`, `b=:`, `"`)
	dir := NewDirectory()
	v := &WebBotAuth{Dir: dir}
	f.Fuzz(func(t *testing.T, input, sig, agent string) {
		parseDictionary(input)
		r := httptest.NewRequest("GET", "http://x.example/", nil)
		r.Header.Set("Signature-Input", input)
		r.Header.Set("Signature", sig)
		r.Header.Set("Signature-Agent", agent)
		if _, err := v.Verify(r, time.Unix(1, 0)); err == nil {
			t.Fatal("verified with an empty directory")
		}
	})
}
