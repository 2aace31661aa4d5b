// Package bypass holds warden's authorization-bypass corpus, as tests only:
// request shapes taken from published path-normalization and
// header-spoofing flaws of proxies and frameworks, written as raw bytes to a
// real warden in front of an upstream that reads paths and headers as
// leniently as those frameworks do. A shape that reaches a protected
// resource is a bypass; a benign control that is refused is a false
// refusal. Both must stay at zero: `go test ./internal/bypass`.
package bypass
