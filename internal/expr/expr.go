// Package expr compiles and evaluates expression rules written in CEL, for
// what plain matchers cannot say:
//
//	request.method == "GET" && "admin" in principal.roles
//	client.country in ["FR", "DE"] || request.headers["x-team"] == "ops"
//
// Expressions are parsed and type-checked once, at load time, against three
// variables (request, client, principal) whose fields are declared as typed
// structs, so a misspelt field or a comparison of a string with a number is
// a load error with line and column, not a surprise at request time.
// Evaluation reads the caller's Activation in place: no map is built per
// request.
package expr

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/identity"
)

// maxSourceBytes bounds an expression: rules are short, and the CEL parser
// should never be handed a megabyte.
const maxSourceBytes = 16 << 10

// Client holds what is known of the client beyond the request itself.
type Client struct {
	IP netip.Addr
	// Country is the ISO 3166-1 alpha-2 code, "" when unknown.
	Country string
	// ASN is the autonomous system number, 0 when unknown.
	ASN uint32
}

// Activation is what one evaluation reads. The caller fills it per request
// (it may live on the stack or in a pooled per-request struct); Eval reads
// the fields lazily, only those the expression uses. Principal is nil for
// an anonymous caller.
type Activation struct {
	Request   *canonical.Request
	Client    Client
	Principal *identity.Principal
}

// Program is a compiled, type-checked expression that yields a bool. It is
// safe for concurrent use.
type Program struct {
	src           string
	prg           cel.Program
	usesPrincipal bool
	usesClient    bool
}

// Issue is one problem found in an expression. Line and Column are 1-based
// positions inside the expression source.
type Issue struct {
	Line, Column int
	Message      string
}

// CompileError reports why an expression does not compile.
type CompileError struct {
	Issues []Issue
	// Detail is CEL's rendering, with the offending line and a caret.
	Detail string
}

// Error returns "line:col: message" for each issue, joined by "; ".
func (e *CompileError) Error() string {
	parts := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		parts[i] = fmt.Sprintf("%d:%d: %s", is.Line, is.Column, is.Message)
	}
	return strings.Join(parts, "; ")
}

// env is built once per Compile: cel.Env construction is cheap next to
// checking, and keeping it local avoids package-level mutable state.
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		// Options that register types need the base registry, so they
		// come before wardenTypes wraps it.
		cel.OptionalTypes(),
		ext.Strings(),
		wardenTypes(),
		cel.Variable("request", requestType),
		cel.Variable("client", clientType),
		cel.Variable("principal", principalType),
	)
}

// Compile parses and type-checks src. The result must be a bool: an
// expression of another type (or of a type only known at run time, such as
// a claim) is refused, with a hint to compare it explicitly.
func Compile(src string) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &CompileError{Issues: []Issue{{Line: 1, Column: 1, Message: "empty expression"}}}
	}
	if len(src) > maxSourceBytes {
		return nil, &CompileError{Issues: []Issue{{Line: 1, Column: 1, Message: fmt.Sprintf("expression longer than %d bytes", maxSourceBytes)}}}
	}
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("expression environment: %w", err)
	}
	checked, iss := env.Compile(src)
	if iss.Err() != nil {
		ce := &CompileError{Detail: iss.String()}
		for _, e := range iss.Errors() {
			ce.Issues = append(ce.Issues, Issue{Line: e.Location.Line(), Column: e.Location.Column() + 1, Message: e.Message})
		}
		return nil, ce
	}
	if out := checked.OutputType(); !out.IsExactType(types.BoolType) {
		msg := fmt.Sprintf("expression must yield a bool, but yields %s", out)
		if out.Kind() == types.DynKind {
			msg += ` (a claim's type is known only at run time: compare it, e.g. principal.claims.admin == true)`
		}
		return nil, &CompileError{Issues: []Issue{{Line: 1, Column: 1, Message: msg}}}
	}
	native := checked.NativeRep()
	if err := checkShape(native); err != nil {
		return nil, err
	}
	prg, err := env.Program(checked, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", src, err)
	}
	p := &Program{src: src, prg: prg}
	for _, ref := range native.ReferenceMap() {
		switch ref.Name {
		case "principal":
			p.usesPrincipal = true
		case "client":
			p.usesClient = true
		}
	}
	return p, nil
}

// Source returns the expression as written.
func (p *Program) Source() string { return p.src }

// UsesPrincipal reports whether the expression reads the principal, so the
// policy resolves identity only for rules that need it.
func (p *Program) UsesPrincipal() bool { return p.usesPrincipal }

// UsesClient reports whether the expression reads the client (country and
// ASN lookups can be skipped otherwise).
func (p *Program) UsesClient() bool { return p.usesClient }

// Eval runs the expression over a. An error (a missing map key, a failed
// conversion) is returned as such; the caller decides whether the rule
// fails closed.
func (p *Program) Eval(a *Activation) (bool, error) {
	if a == nil || a.Request == nil {
		return false, errors.New("expression evaluated without a request")
	}
	out, _, err := p.prg.Eval((*activation)(a))
	if err != nil {
		return false, fmt.Errorf("expression %q: %w", p.src, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("expression %q yielded %s, not a bool", p.src, out.Type().TypeName())
	}
	return bool(b), nil
}

// activation adapts Activation to CEL's interpreter.Activation. Each
// variable resolves to a pointer conversion of the same struct, which costs
// no allocation.
type activation Activation

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "request":
		return (*requestVal)(a), true
	case "client":
		return (*clientVal)(a), true
	case "principal":
		return (*principalVal)(a), true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// checkShape refuses what type-checks but makes no sense in a rule: a
// macro variable named like a top-level variable (it would hide it, and
// confuse readers and UsesPrincipal), and a literal of warden's own types.
func checkShape(native *ast.AST) error {
	issue := func(id int64, msg string) error {
		loc := native.SourceInfo().GetStartLocation(id)
		return &CompileError{Issues: []Issue{{Line: max(loc.Line(), 1), Column: loc.Column() + 1, Message: msg}}}
	}
	for _, e := range ast.MatchDescendants(ast.NavigateAST(native), ast.AllMatcher()) {
		switch e.Kind() {
		case ast.ComprehensionKind:
			c := e.AsComprehension()
			for _, v := range []string{c.IterVar(), c.IterVar2()} {
				if v == "request" || v == "client" || v == "principal" {
					return issue(e.ID(), fmt.Sprintf("variable name %q hides the top-level %s; pick another name", v, v))
				}
			}
		case ast.StructKind:
			if name := e.AsStruct().TypeName(); strings.HasPrefix(name, "warden.") {
				return issue(e.ID(), fmt.Sprintf("%s values cannot be created in an expression", name))
			}
		}
	}
	return nil
}
