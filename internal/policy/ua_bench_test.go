package policy

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
)

// uaPolicy is a policy whose one deny rule carries n user-agent patterns:
// 70% substrings, 20% globs, 10% regexes, as block lists of bots look.
func uaPolicy(tb testing.TB, n int) *Policy {
	tb.Helper()
	var b strings.Builder
	b.WriteString("rules:\n  - name: bad-bots\n    when:\n      user_agent:\n")
	var subs, globs, res []string
	for i := 0; i < n; i++ {
		switch {
		case i%10 < 7:
			subs = append(subs, fmt.Sprintf("crawler%05dbot", i))
		case i%10 < 9:
			globs = append(globs, fmt.Sprintf("scan%05d/*", i))
		default:
			res = append(res, fmt.Sprintf(`^fetch%05d/[0-9]+\.[0-9]+`, i))
		}
	}
	list := func(key string, vals []string) {
		b.WriteString("        " + key + ":\n")
		for _, v := range vals {
			b.WriteString("          - '" + v + "'\n")
		}
	}
	list("substring", subs)
	list("glob", globs)
	list("regex", res)
	b.WriteString("    action: deny\n")
	cfg, err := config.Parse("ua.yaml", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := Compile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func uaRequest(ua string) *canonical.Request {
	return &canonical.Request{Method: "GET", Host: "example.com", Path: "/index.html", LowerPath: "/index.html",
		EscapedPath: "/index.html", ClientIP: netip.MustParseAddr("198.51.100.7"), Header: http.Header{"User-Agent": {ua}}}
}

func TestUserAgentRuleOf10kPatterns(t *testing.T) {
	p := uaPolicy(t, 10000)
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		ua   string
		want decision.Action
	}{
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36", decision.Allow},
		{"Mozilla/5.0 (compatible; crawler00042bot/2.1)", decision.Deny},
		{"scan00008/1.0", decision.Deny},
		{"fetch00009/3.14 (+https://example.net)", decision.Deny},
		{"fetch00009/x", decision.Allow},
	}
	for _, c := range cases {
		d := p.Decide(uaRequest(c.ua), now, nil)
		if d.Action != c.want {
			t.Errorf("%q: %v, want %v", c.ua, d.Action, c.want)
		}
		if c.want == decision.Deny && d.Code != decision.UserAgentBlocked {
			t.Errorf("%q: code %s, want user_agent_blocked", c.ua, d.Code)
		}
	}
}

// BenchmarkDecideUserAgent10k is a request judged against 10,000 user-agent
// patterns (issue target: under 2 µs).
func BenchmarkDecideUserAgent10k(b *testing.B) {
	p := uaPolicy(b, 10000)
	now := time.Unix(1_800_000_000, 0)
	for _, bc := range []struct{ name, ua string }{
		{"browser-allowed", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"},
		{"bot-denied", "Mozilla/5.0 (compatible; crawler06999bot/2.1)"},
	} {
		req := uaRequest(bc.ua)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				p.Decide(req, now, nil)
			}
		})
	}
}
