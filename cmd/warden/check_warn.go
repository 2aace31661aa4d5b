package main

import (
	"fmt"
	"sort"

	"github.com/warden-gateway/warden/internal/config"
)

// policyWarnings are things `warden check` points out in a policy that
// compiles, without failing it: likely mistakes that are still valid.
func policyWarnings(cfg *config.Config) []*config.Error {
	var out []*config.Error
	out = append(out, ungrantedRoles(cfg)...)
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		for _, s := range r.When.RefererNotIn {
			if s.Value == "server_names" && len(cfg.ServerNames) == 0 {
				out = append(out, &config.Error{Pos: s.Pos,
					Msg:  fmt.Sprintf("rule %q: referer_not_in lists server_names, but the policy has no server_names: no Referer of this site counts as valid", r.Name.Value),
					Hint: "add server_names: [www.example.com] at the top level"})
			}
		}
		for _, s := range r.When.OriginNotIn {
			if s.Value == "server_names" && len(cfg.ServerNames) == 0 {
				out = append(out, &config.Error{Pos: s.Pos,
					Msg:  fmt.Sprintf("rule %q: origin_not_in lists server_names, but the policy has no server_names", r.Name.Value),
					Hint: "add server_names: [www.example.com] at the top level"})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pos.Line < out[j].Pos.Line })
	return out
}

// ungrantedRoles finds roles a rule requires that no authenticator can
// grant. Only static grants can be known: with jwt (roles from token
// claims), headers (groups from a proxy) or an api_keys file (read at
// start), any role may be granted, and nothing is said.
func ungrantedRoles(cfg *config.Config) []*config.Error {
	id := &cfg.Identity
	if id.JWT != nil || id.Headers != nil || id.APIKeys != nil && id.APIKeys.File.Value != "" {
		return nil
	}
	granted := map[string]bool{}
	if k := id.APIKeys; k != nil {
		for _, key := range k.Keys {
			for _, r := range key.Roles {
				granted[r.Value] = true
			}
		}
	}
	if h := id.Htpasswd; h != nil {
		for _, rs := range h.Roles {
			for _, r := range rs {
				granted[r.Value] = true
			}
		}
	}
	var out []*config.Error
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		if r.Require == nil {
			continue
		}
		for _, l := range [][]config.Scalar{r.Require.RolesAny, r.Require.RolesAll} {
			for _, s := range l {
				if !granted[s.Value] {
					out = append(out, &config.Error{Pos: s.Pos,
						Msg:  fmt.Sprintf("rule %q requires role %q, which no API key or htpasswd user has: nobody can pass it", r.Name.Value, s.Value),
						Hint: "grant it (api_keys keys[].roles, htpasswd roles) or fix the name"})
				}
			}
		}
	}
	return out
}
