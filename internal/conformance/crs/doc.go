// Package crs holds only tests: the OWASP Core Rule Set v4.25.0 regression
// suite (go-ftw YAML, embedded in the coraza-coreruleset module, plus the one
// file it leaves out, vendored under testdata/crs-extra)
// run against a real warden server, and benchmarks of warden's WAF against
// Coraza's own net/http middleware. See crs_test.go for how a test is judged
// and which tests are excluded, and why.
package crs
