// Package engine is the one request pipeline every front end runs: the
// gateway, the Go middleware, `warden explain` and `warden replay`, and the
// decision services (forward-auth, ext_authz). A front end translates what
// it was handed into a Wire (a request as parts), asks Judge, and renders
// the Outcome its own way; none of them repeats a step of the judgement.
//
// Judge runs, in order: the checks that hold before any rule (framing,
// header names, override headers, body size), the canonical request, the
// pure policy decision with its trail, and the WAF. Build compiles a config
// into the Runtime those steps read, validating every section in one place.
// Log writes the one decision Record per request that replay and the
// operator read.
package engine
