package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/demo"
	"github.com/warden-gateway/warden/internal/identity"
)

// cmdSchema prints a JSON Schema (draft 2020-12) of the policy file, made
// by reflection from the structs the decoder fills, so it accepts exactly
// the keys `warden check` accepts. Editors with the YAML language server
// complete and validate a policy with it:
//
//	# yaml-language-server: $schema=./warden.schema.json
func cmdSchema(args []string) int {
	if len(args) != 0 {
		fmt.Fprintln(os.Stderr, "usage: warden schema > warden.schema.json")
		return 2
	}
	s := policySchema()
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		fmt.Fprintf(os.Stderr, "warden schema: %v\n", err)
		return 1
	}
	return 0
}

// cmdDemoPolicy prints the built-in demo's policy, a commented starting
// point for a policy of one's own.
func cmdDemoPolicy(args []string) int {
	if len(args) != 0 {
		fmt.Fprintln(os.Stderr, "usage: warden demo-policy > warden.yaml")
		return 2
	}
	os.Stdout.WriteString(demoTemplate())
	return 0
}

// demoTemplate is the demo policy with its generated parts made into
// things to replace: the keys' hashes are of "replace-me-…" (make real
// ones with `warden hash-key`), the JWKS a file of one's own, the site a
// folder.
func demoTemplate() string {
	r := strings.NewReplacer(
		`"{{ADMIN_KEY_HASH}}"`, `"`+identity.HashKey("replace-me-admin-key")+`"   # warden hash-key YOUR-ADMIN-KEY`,
		`"{{USER_KEY_HASH}}"`, `"`+identity.HashKey("replace-me-user-key")+`"   # warden hash-key YOUR-USER-KEY`,
		`"{{JWKS_FILE}}"`, `jwks.json   # your identity provider's keys (or jwks_url: https://…)`,
		`root: "embed:"`, `root: ./public   # relative paths are from this file's folder`,
	)
	return "# A starting policy: warden's demo. `warden check --config FILE` after each change.\n" +
		"# yaml-language-server: $schema=./warden.schema.json   (warden schema > warden.schema.json)\n" +
		r.Replace(demo.PolicyYAML())
}

var (
	scalarType   = reflect.TypeOf(config.Scalar{})
	durationType = reflect.TypeOf(config.Duration{})
	posType      = reflect.TypeOf(config.Pos{})
)

func policySchema() map[string]any {
	s := schemaOf(reflect.TypeOf(config.Config{}))
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "urn:warden:policy"
	s["title"] = "warden policy"
	return s
}

// schemaOf describes what the decoder (internal/config/decode.go) accepts
// for a value of type t: a list also takes a single value (a list of one),
// a boolean also yes/no/on/off, a struct only its yaml keys.
func schemaOf(t reflect.Type) map[string]any {
	switch t {
	case scalarType:
		return map[string]any{"type": []string{"string", "number", "boolean"}}
	case durationType:
		return map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`, "examples": []string{"5s", "250ms", "1h30m"}}
	case reflect.TypeOf(time.Duration(0)):
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem())
	case reflect.Struct:
		props := map[string]any{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == "" || tag == "-" || f.Type == posType {
				continue
			}
			props[tag] = schemaOf(f.Type)
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	case reflect.Slice:
		item := schemaOf(t.Elem())
		return map[string]any{"anyOf": []any{map[string]any{"type": "array", "items": item}, item}}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Bool:
		return map[string]any{"anyOf": []any{map[string]any{"type": "boolean"}, map[string]any{"enum": []string{"yes", "no", "on", "off", "true", "false"}}}}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	}
	return map[string]any{}
}

// configKeys lists every key path the decoder accepts ("rules[].when.ip"),
// for the docs test.
func configKeys() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			switch t.Kind() {
			case reflect.Slice:
				prefix += "[]"
			case reflect.Map:
				prefix += ".*"
			}
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == scalarType || t == durationType {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == "" || tag == "-" {
				continue
			}
			p := tag
			if prefix != "" {
				p = prefix + "." + tag
			}
			out = append(out, p)
			walk(f.Type, p)
		}
	}
	walk(reflect.TypeOf(config.Config{}), "")
	return out
}
