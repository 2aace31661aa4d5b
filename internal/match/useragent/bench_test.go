package useragent

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// realisticPatterns builds n patterns shaped like real bad-bot lists: mostly
// bot names as substrings, then globs over tool user agents, then regexes
// (a few without any literal, like "suspiciously short user agent" rules).
// It also returns user agents that match a substring in the middle of the
// list, a tool glob, and the last regex.
func realisticPatterns(n int) ([]Pattern, probes) {
	rng := rand.New(rand.NewPCG(42, 4242))
	first := []string{"Ahrefs", "Semrush", "MJ12", "Dot", "Blex", "Petal", "Yandex", "Baidu", "Sogou", "Exa",
		"Seznam", "Megaindex", "Serpstat", "Data", "Link", "Site", "Page", "Net", "Seo", "Crawl", "Scan",
		"Fetch", "Archive", "Index", "Search", "Feed", "Meta", "Info", "Cloud", "Quick", "Deep", "Smart",
		"Open", "Mega", "Ultra", "Hyper", "Zoom", "Turbo", "Alpha", "Beta", "Gamma", "Omni", "Astro",
		"Nova", "Vector", "Pixel", "Orbit", "Rapid", "Swift", "Iron"}
	middle := []string{"", "", "", "Data", "Link", "Seo", "Index", "Search", "Feed", "Scan", "Net", "Info",
		"Stat", "Trend", "Audit", "Rank", "Graph", "Grid", "Wave"}
	last := []string{"Bot", "bot", "Crawler", "Spider", "-crawler", "_spider", "Scanner", "Fetcher",
		"Checker", "Monitor", "Collector", "Harvester", "Indexer", "Robot", "Slurp"}
	seen := map[string]bool{}
	name := func() string {
		for {
			s := first[rng.IntN(len(first))] + middle[rng.IntN(len(middle))] + last[rng.IntN(len(last))]
			if rng.IntN(3) == 0 {
				s += fmt.Sprint(rng.IntN(100))
			}
			if !seen[strings.ToLower(s)] {
				seen[strings.ToLower(s)] = true
				return s
			}
		}
	}
	tools := []string{"python-requests", "Go-http-client", "curl", "Wget", "libwww-perl", "okhttp",
		"Apache-HttpClient", "aiohttp", "axios", "node-fetch", "Java", "Scrapy", "HTTrack", "PHP", "Ruby"}

	nSub, nGlob := n*70/100, n*20/100
	nRegex := n - nSub - nGlob
	patterns := make([]Pattern, 0, n)
	var pr probes
	for i := range nSub {
		nm := name()
		if i == nSub/2 {
			pr.substringUA = "Mozilla/5.0 (compatible; " + nm + "/2.1; +http://example.com/bot.html)"
		}
		patterns = append(patterns, Pattern{Kind: KindSubstring, Value: nm, CaseSensitive: rng.IntN(5) == 0})
	}
	for range nGlob {
		var g string
		switch rng.IntN(5) {
		case 0:
			g = "*" + name() + "*"
		case 1:
			g = name() + "/*"
		case 2:
			g = "Mozilla/5.0 (compatible; " + name() + "/*"
		case 3:
			g = "*" + name() + "/?.?*"
		default:
			tool := tools[rng.IntN(len(tools))] + fmt.Sprint(rng.IntN(1000))
			g = tool + "/*"
			pr.globUA = tool + "/2.31.0"
		}
		patterns = append(patterns, Pattern{Kind: KindGlob, Value: g})
	}
	for i := range nRegex {
		var r string
		switch {
		case i < 5: // no literal at all
			r = []string{`^.{0,4}$`, `^[a-z]{1,3}/\d+$`, `^\W+$`, `^[0-9. ]+$`, `^\S+$`}[i]
		case i == nRegex-1:
			nm := name()
			r = `compatible; ` + regexp.QuoteMeta(nm) + `\b`
			pr.regexUA = "Mozilla/5.0 (compatible; " + nm + " 3.0)"
		default:
			a, b := regexp.QuoteMeta(name()), regexp.QuoteMeta(name())
			switch rng.IntN(5) {
			case 0:
				r = a + `/\d+\.\d+`
			case 1:
				r = `(?:` + a + `|` + b + `)[ -]?v?\d`
			case 2:
				r = `^` + a
			case 3:
				r = `compatible; ` + a + `\b`
			default:
				r = `\b` + a + `(?:/[\d.]+)?`
			}
		}
		patterns = append(patterns, Pattern{Kind: KindRegex, Value: r})
	}
	return patterns, pr
}

type probes struct{ substringUA, globUA, regexUA string }

func BenchmarkMatch10k(b *testing.B) {
	patterns, pr := realisticPatterns(10_000)
	s, err := Compile(patterns)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("10k patterns: %d automaton states, %d input classes, %.1f MB of tables, %d patterns without a literal",
		len(s.ac.dict), s.ac.nclass, float64(s.ac.bytes())/1e6, len(s.anchored.patterns)+len(s.floating.patterns))
	cases := []struct {
		name, ua string
		match    bool
	}{
		{"browser-no-match", chromeUA, false},
		{"firefox-no-match", firefoxUA, false},
		{"bot-substring-match", pr.substringUA, true},
		{"tool-glob-match", pr.globUA, true},
		{"bot-regex-match", pr.regexUA, true},
		{"short-no-literal-match", "abc", true},
	}
	for _, c := range cases {
		if _, ok := s.Match(c.ua); ok != c.match {
			b.Fatalf("%s: Match(%q) = %v, want %v", c.name, c.ua, ok, c.match)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.ua)))
			for b.Loop() {
				s.Match(c.ua)
			}
		})
	}
}

func BenchmarkCompile10k(b *testing.B) {
	patterns, _ := realisticPatterns(10_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(patterns); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRealisticSetAgreesWithNaive runs the 10k benchmark set against the
// naive loop on a few hundred user agents, so the benchmark measures a
// matcher that is right.
func TestRealisticSetAgreesWithNaive(t *testing.T) {
	patterns, pr := realisticPatterns(10_000)
	s := mustCompile(t, patterns)
	n := newNaive(t, patterns)
	uas := []string{chromeUA, firefoxUA, googlebot, curlUA, "abc", "x",
		pr.substringUA, strings.ToUpper(pr.substringUA), pr.globUA, pr.regexUA}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 300 {
		p := patterns[rng.IntN(len(patterns))].Value
		p = strings.NewReplacer(`\d+`, "42", `\.`, ".", `\d`, "7", `(?:`, "", `)[ -]?v?`, " v", `\b`, "", `*`, "x", `?`, "1", `^`, "", `|`, "", `(?:/[\d.]+)?`, "/1.0").Replace(p)
		uas = append(uas, "Mozilla/5.0 (compatible; "+p+")", p, strings.ToLower(p))
	}
	matched := 0
	for _, ua := range uas {
		gi, gok := s.Match(ua)
		wi, wok := n.match(ua)
		if gi != wi || gok != wok {
			t.Errorf("Match(%q) = %d, %v; naive = %d, %v", ua, gi, gok, wi, wok)
		}
		if gok {
			matched++
		}
	}
	if matched < len(uas)/2 {
		t.Errorf("only %d of %d probe user agents matched; the probes are not exercising matches", matched, len(uas))
	}
	if _, ok := s.Match(chromeUA); ok {
		t.Error("a normal browser user agent matched the realistic bot list")
	}
}
