package bot

import (
	"context"
	"net/http"
	"net/netip"
	"time"
)

// Kind is how a bot proved itself.
type Kind uint8

const (
	KindNone       Kind = iota // not a verified bot
	KindCrawler                // forward-confirmed reverse DNS
	KindWebBotAuth             // a Web Bot Auth signature
)

func (k Kind) String() string {
	switch k {
	case KindCrawler:
		return "crawler"
	case KindWebBotAuth:
		return "web-bot-auth"
	}
	return "none"
}

// Identity is a request's verified-bot identity, for the policy (a rule that
// exempts verified bots from a challenge), explain and the decision log.
type Identity struct {
	Kind Kind
	// Name is the crawler's name or the agent's URL.
	Name string
	// Detail says why a claim failed: a crawler Outcome or a WBAReason
	// ("" when verified or when nothing was claimed).
	Detail string
}

// Verified reports whether the request comes from a verified bot.
func (id Identity) Verified() bool { return id.Kind != KindNone }

// Identifier checks both kinds of proof. Either may be nil.
type Identifier struct {
	Crawlers *Verifier
	Signed   *WebBotAuth
}

// Identify returns the request's verified-bot identity. A Web Bot Auth
// signature is tried first: it costs no network round trip, and an agent
// that signs is better identified by its key than by its address.
func (b *Identifier) Identify(ctx context.Context, r *http.Request, clientIP netip.Addr, now time.Time) Identity {
	var detail string
	if b.Signed != nil && len(r.Header.Values("Signature-Input")) > 0 {
		a, err := b.Signed.Verify(r, now)
		if err == nil {
			return Identity{Kind: KindWebBotAuth, Name: a.URL}
		}
		detail = err.Error()
	}
	if b.Crawlers != nil {
		res := b.Crawlers.Verify(ctx, r.UserAgent(), clientIP, now)
		if res.Verified() {
			return Identity{Kind: KindCrawler, Name: res.Crawler}
		}
		if res.Outcome != NotClaimed {
			detail = res.Crawler + ": " + res.Outcome.String()
		}
	}
	return Identity{Detail: detail}
}

// AgentKeys names an agent and the JWKS file of its keys, as the operator
// configures them.
type AgentKeys struct {
	Agent    string // https origin, e.g. https://agent.example
	JWKSFile string
}

// LoadDirectory builds a Directory from configured agents.
func LoadDirectory(agents []AgentKeys) (*Directory, error) {
	d := NewDirectory()
	for _, a := range agents {
		if err := d.LoadJWKSFile(a.Agent, a.JWKSFile); err != nil {
			return nil, err
		}
	}
	return d, nil
}
