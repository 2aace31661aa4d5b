package expr

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"reflect"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// The three variables are CEL struct types backed by Go code rather than
// protobuf messages: the checker learns their fields from wardenProvider,
// and the interpreter reads each field through the FieldType's GetFrom,
// straight from the caller's Activation.
var (
	requestType   = cel.ObjectType("warden.Request")
	clientType    = cel.ObjectType("warden.Client")
	principalType = cel.ObjectType("warden.Principal")

	headersType = cel.MapType(cel.StringType, cel.StringType)
	stringList  = cel.ListType(cel.StringType)

	emptyStringList = types.NewStringList(types.DefaultTypeAdapter, nil)
	emptyClaims     = types.NewStringInterfaceMap(types.DefaultTypeAdapter, map[string]any{})
)

type field struct {
	typ *types.Type
	get func(a *activation) ref.Val
}

// structFields declares, per type, every field an expression may read.
var structFields = map[string]map[string]field{
	requestType.TypeName(): {
		"method": {cel.StringType, func(a *activation) ref.Val { return types.String(a.Request.Method) }},
		"host":   {cel.StringType, func(a *activation) ref.Val { return types.String(a.Request.Host) }},
		"path":   {cel.StringType, func(a *activation) ref.Val { return types.String(a.Request.Path) }},
		"query":  {cel.StringType, func(a *activation) ref.Val { return types.String(a.Request.RawQuery) }},
		"scheme": {cel.StringType, func(a *activation) ref.Val {
			if a.Request.TLS {
				return types.String("https")
			}
			return types.String("http")
		}},
		"headers": {headersType, func(a *activation) ref.Val { return headerMap{a.Request.Header} }},
	},
	clientType.TypeName(): {
		"ip": {cel.StringType, func(a *activation) ref.Val {
			if !a.Client.IP.IsValid() {
				return types.String("")
			}
			return types.String(a.Client.IP.String())
		}},
		"country": {cel.StringType, func(a *activation) ref.Val { return types.String(a.Client.Country) }},
		"asn":     {cel.IntType, func(a *activation) ref.Val { return types.Int(a.Client.ASN) }},
	},
	principalType.TypeName(): {
		"authenticated": {cel.BoolType, func(a *activation) ref.Val { return types.Bool(a.Principal != nil) }},
		"id": {cel.StringType, func(a *activation) ref.Val {
			if a.Principal == nil {
				return types.String("")
			}
			return types.String(a.Principal.ID)
		}},
		"method": {cel.StringType, func(a *activation) ref.Val {
			if a.Principal == nil {
				return types.String("")
			}
			return types.String(a.Principal.Method)
		}},
		"roles": {stringList, func(a *activation) ref.Val {
			if a.Principal == nil || len(a.Principal.Roles) == 0 {
				return emptyStringList
			}
			return types.NewStringList(types.DefaultTypeAdapter, a.Principal.Roles)
		}},
		"scopes": {stringList, func(a *activation) ref.Val {
			if a.Principal == nil || len(a.Principal.Scopes) == 0 {
				return emptyStringList
			}
			return types.NewStringList(types.DefaultTypeAdapter, a.Principal.Scopes)
		}},
		"claims": {cel.MapType(cel.StringType, cel.DynType), func(a *activation) ref.Val {
			if a.Principal == nil || a.Principal.Claims == nil {
				return emptyClaims
			}
			return types.NewStringInterfaceMap(types.DefaultTypeAdapter, a.Principal.Claims)
		}},
	},
}

// wardenTypes installs wardenProvider over the environment's own provider.
func wardenTypes() cel.EnvOption {
	return func(e *cel.Env) (*cel.Env, error) {
		return cel.CustomTypeProvider(&wardenProvider{Provider: e.CELTypeProvider()})(e)
	}
}

// wardenProvider answers for warden's three struct types and delegates
// everything else (well-known types, protobuf) to the base provider.
type wardenProvider struct {
	types.Provider
}

func (p *wardenProvider) FindStructType(name string) (*types.Type, bool) {
	switch name {
	case requestType.TypeName():
		return types.NewTypeTypeWithParam(requestType), true
	case clientType.TypeName():
		return types.NewTypeTypeWithParam(clientType), true
	case principalType.TypeName():
		return types.NewTypeTypeWithParam(principalType), true
	}
	return p.Provider.FindStructType(name)
}

func (p *wardenProvider) FindStructFieldNames(name string) ([]string, bool) {
	fields, ok := structFields[name]
	if !ok {
		return p.Provider.FindStructFieldNames(name)
	}
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, true
}

func (p *wardenProvider) FindStructFieldType(name, fieldName string) (*types.FieldType, bool) {
	fields, ok := structFields[name]
	if !ok {
		return p.Provider.FindStructFieldType(name, fieldName)
	}
	f, ok := fields[fieldName]
	if !ok {
		return nil, false
	}
	return &types.FieldType{
		Type: f.typ,
		// Every field always has a value (zero when unknown), so has()
		// is true; whether a caller is known is principal.authenticated.
		IsSet: func(any) bool { return true },
		GetFrom: func(target any) (any, error) {
			a, err := targetActivation(target)
			if err != nil {
				return nil, err
			}
			return f.get(a), nil
		},
	}, true
}

// NewValue refuses to build warden structs (Compile already refuses such
// literals): they describe the request and are never made by a rule.
func (p *wardenProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := structFields[name]; ok {
		return types.NewErr("%s values cannot be created in an expression", name)
	}
	return p.Provider.NewValue(name, fields)
}

func targetActivation(target any) (*activation, error) {
	switch v := target.(type) {
	case *requestVal:
		return (*activation)(v), nil
	case *clientVal:
		return (*activation)(v), nil
	case *principalVal:
		return (*activation)(v), nil
	}
	return nil, fmt.Errorf("no such field on %T", target)
}

// requestVal, clientVal and principalVal are the values of the three
// variables: the same Activation seen through a different type, so that
// resolving a variable allocates nothing.
type (
	requestVal   activation
	clientVal    activation
	principalVal activation
)

func (v *requestVal) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("warden.Request cannot be converted")
}
func (v *requestVal) ConvertToType(t ref.Type) ref.Val { return convertObject(v, requestType, t) }
func (v *requestVal) Equal(o ref.Val) ref.Val          { return types.Bool(o == ref.Val(v)) }
func (v *requestVal) Type() ref.Type                   { return requestType }
func (v *requestVal) Value() any                       { return v }

func (v *clientVal) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("warden.Client cannot be converted")
}
func (v *clientVal) ConvertToType(t ref.Type) ref.Val { return convertObject(v, clientType, t) }
func (v *clientVal) Equal(o ref.Val) ref.Val          { return types.Bool(o == ref.Val(v)) }
func (v *clientVal) Type() ref.Type                   { return clientType }
func (v *clientVal) Value() any                       { return v }

func (v *principalVal) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("warden.Principal cannot be converted")
}
func (v *principalVal) ConvertToType(t ref.Type) ref.Val { return convertObject(v, principalType, t) }
func (v *principalVal) Equal(o ref.Val) ref.Val          { return types.Bool(o == ref.Val(v)) }
func (v *principalVal) Type() ref.Type                   { return principalType }
func (v *principalVal) Value() any                       { return v }

func convertObject(v ref.Val, own *types.Type, t ref.Type) ref.Val {
	switch t.TypeName() {
	case own.TypeName():
		return v
	case types.TypeType.TypeName():
		return own
	}
	return types.NewErr("type conversion error from %s to %s", own.TypeName(), t.TypeName())
}

// headerMap shows http.Header to expressions as map(string, string) with
// lower-case keys, without copying it. Repeated fields are joined with ", "
// as HTTP allows.
type headerMap struct{ h http.Header }

var (
	_ traits.Mapper = headerMap{}
)

func (m headerMap) lookup(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(key), false
	}
	vs := m.h[textproto.CanonicalMIMEHeaderKey(string(k))]
	switch len(vs) {
	case 0:
		return nil, false
	case 1:
		return types.String(vs[0]), true
	}
	return types.String(strings.Join(vs, ", ")), true
}

func (m headerMap) Find(key ref.Val) (ref.Val, bool) {
	v, found := m.lookup(key)
	if !found && v != nil {
		return v, false
	}
	return v, found
}

func (m headerMap) Get(key ref.Val) ref.Val {
	v, found := m.lookup(key)
	if found {
		return v
	}
	if v != nil {
		return v
	}
	return types.NewErr("no such key: %v", key)
}

func (m headerMap) Contains(key ref.Val) ref.Val {
	v, found := m.lookup(key)
	if !found && v != nil {
		return v
	}
	return types.Bool(found)
}

func (m headerMap) Size() ref.Val { return types.Int(len(m.h)) }

func (m headerMap) flatten() map[string]string {
	out := make(map[string]string, len(m.h))
	for k, vs := range m.h {
		out[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	return out
}

func (m headerMap) Iterator() traits.Iterator {
	keys := make([]string, 0, len(m.h))
	for k := range m.h {
		keys = append(keys, strings.ToLower(k))
	}
	sort.Strings(keys)
	return types.NewStringList(types.DefaultTypeAdapter, keys).(traits.Iterable).Iterator()
}

func (m headerMap) ConvertToNative(t reflect.Type) (any, error) {
	return types.NewStringStringMap(types.DefaultTypeAdapter, m.flatten()).ConvertToNative(t)
}

func (m headerMap) ConvertToType(t ref.Type) ref.Val {
	switch t.TypeName() {
	case types.MapType.TypeName():
		return m
	case types.TypeType.TypeName():
		return headersType
	}
	return types.NewErr("type conversion error from map to %s", t.TypeName())
}

func (m headerMap) Equal(o ref.Val) ref.Val {
	return types.NewStringStringMap(types.DefaultTypeAdapter, m.flatten()).Equal(o)
}

func (m headerMap) Type() ref.Type { return types.MapType }
func (m headerMap) Value() any     { return m.h }
