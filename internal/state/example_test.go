package state_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/warden-gateway/warden/internal/state"
)

// The engine's part, as the policy is meant to drive it: the pure decision
// core names the charges (which key, which limit, which ban policy), and the
// engine applies them to a Store with the request's time, in this order:
//
//  1. before any costly stage (password hashing, the WAF): is the client
//     banned? (and, in the same Apply, charge the rate limits of the rule
//     that matched: one Redis round trip for both);
//  2. a refused charge answers 429 rate_limited with RateLimit headers and
//     Retry-After; a ban answers 403 banned with Retry-After;
//  3. after the decision, a refusal whose code a ban policy counts is a
//     strike against the client.
func Example() {
	store := state.NewMemory(state.MemoryOptions{})
	ctx := context.Background()
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	client := state.IPKey(netip.MustParseAddr("203.0.113.9"))

	spec, _ := state.ParseKeySpec("ip")
	limit := state.Limit{Rate: 100, Per: time.Minute, Burst: 2}
	ban := state.BanPolicy{Name: "brute-force", After: 3, Within: time.Minute, BanFor: 10 * time.Minute, Factor: 2, MaxBan: 24 * time.Hour}

	for i := 1; i <= 4; i++ {
		ops := []state.Op{
			{Kind: state.OpBanned, Key: client},
			{Kind: state.OpAllow, Key: state.RuleKey("api-rate", spec.Key(state.KeyInput{IP: netip.MustParseAddr("203.0.113.9")})), Limit: limit},
		}
		out := make([]state.Outcome, len(ops))
		err := store.Apply(ctx, ops, out, now)
		if _, refuse := state.FailClosed.Resolve(err); refuse != nil {
			fmt.Println(i, "503 unavailable")
			continue
		}
		h := http.Header{}
		switch {
		case out[0].Banned:
			h.Set("Retry-After", state.RetryAfterValue(out[0].Until.Sub(now)))
			fmt.Println(i, "403 banned, Retry-After:", h.Get("Retry-After"))
		case !out[1].Result.Allowed:
			state.SetRateLimitHeaders(h, "api-rate", limit, out[1].Result)
			fmt.Println(i, "429 rate_limited, Retry-After:", h.Get("Retry-After"), "RateLimit:", h.Get("RateLimit"))
		default:
			state.SetRateLimitHeaders(h, "api-rate", limit, out[1].Result)
			// The caller got as far as the password check, and failed it:
			// an invalid_credentials strike.
			if banned, until, _ := store.Strike(ctx, client, ban, now); banned {
				fmt.Println(i, "401 invalid_credentials, and now banned for", until.Sub(now))
			} else {
				fmt.Println(i, "401 invalid_credentials, RateLimit:", h.Get("RateLimit"))
			}
		}
		now = now.Add(time.Second)
	}
	// Output:
	// 1 401 invalid_credentials, RateLimit: "api-rate";r=1;t=1
	// 2 401 invalid_credentials, RateLimit: "api-rate";r=1;t=1
	// 3 401 invalid_credentials, and now banned for 10m0s
	// 4 403 banned, Retry-After: 599
}
