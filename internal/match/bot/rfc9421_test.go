package bot

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"net/http/httptest"
	"testing"
)

// The signature base is checked against RFC 9421's own example: Appendix
// B.2.6, "Signing a Request Using ed25519", with the RFC's test key
// (test-key-ed25519, Appendix B.1.4) and the signature printed there. A base
// that differs in one byte does not verify.
func TestRFC9421AppendixB26(t *testing.T) {
	der, _ := base64.StdEncoding.DecodeString("MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=")
	pk, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "http://example.com/foo?param=Value&Pet=dog", nil)
	r.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Length", "18")
	d, err := parseDictionary(`sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`)
	if err != nil {
		t.Fatal(err)
	}
	base, err := signatureBase(r, d[0])
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.StdEncoding.DecodeString("wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==")
	if !ed25519.Verify(pk.(ed25519.PublicKey), []byte(base), sig) {
		t.Fatalf("the RFC's signature does not verify over our base:\n%s", base)
	}
}
