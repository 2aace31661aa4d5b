// Package benchopa measures OPA's REST API on the policy warden's
// decision-service benchmark judges, beside a plain net/http server and
// warden's forward-auth in the same run. It is a module of its own so that
// warden's go.mod does not carry OPA:
//
//	cd internal/authz/benchopa && go test -run '^$' -bench . -benchtime 20000x
package benchopa
