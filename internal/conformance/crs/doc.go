// Package crs holds only tests: the OWASP Core Rule Set v4.25.0 regression
// suite (go-ftw YAML, embedded in the coraza-coreruleset module, plus the one
// file it leaves out, vendored under testdata/crs-extra) run against
// Coraza's own net/http middleware and against a real warden server in the
// same run, and benchmarks of warden's WAF against that middleware. See
// crs_test.go for how a test is judged, and expectations_test.go for what
// warden does instead of the WAF with the few requests its front end
// answers first, each asserted.
package crs
