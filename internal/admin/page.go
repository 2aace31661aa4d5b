package admin

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/engine"
)

//go:embed page.html
var pageSource string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"json": func(v any) string {
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	},
	"ago": func(t time.Time) string { return t.UTC().Format("15:04:05") },
}).Parse(pageSource))

// pageData is what the page shows.
type pageData struct {
	Generation int
	Rules      int
	Chart      template.HTML
	Total      int
	TopRules   []Count
	TopAddrs   []Count
	TopPaths   []Count
	TopCodes   []Count
	Recent     []Entry
	Bans       []Ban
	// Search is the id searched for, Found the record.
	Search   string
	Found    *Entry
	NotFound bool
	// Explain is the explain form's input and answer.
	Explain       explainForm
	ExplainResult *engine.Record
	ExplainError  string
}

type explainForm struct {
	Method  string
	URL     string
	IP      string
	Headers string
}

func (s *Server) data(r *http.Request) pageData {
	now := s.Now()
	entries := s.Recent.Entries()
	d := pageData{
		Generation: s.Metrics.Generation(),
		Chart:      template.HTML(renderChart(s.Recent.Series(now))),
		TopRules:   Top(entries, 10, func(r *engine.Record) string { return r.Rule }),
		TopAddrs:   Top(entries, 10, func(r *engine.Record) string { return r.ClientIP }),
		TopPaths:   Top(entries, 10, func(r *engine.Record) string { return r.Path }),
		TopCodes:   Top(entries, 10, func(r *engine.Record) string { return r.Code }),
		Explain:    explainForm{Method: "GET", URL: "http://localhost/", IP: "127.0.0.1"},
	}
	if rt := s.Engine.Runtime(); rt != nil {
		d.Rules = rt.Policy.RuleCount()
	}
	for _, e := range entries {
		if e.Record.Action != "allow" {
			d.Total++
		}
	}
	if len(entries) > 50 {
		entries = entries[:50]
	}
	d.Recent = entries
	if s.Bans != nil {
		d.Bans = s.Bans()
	}
	if id := strings.TrimSpace(r.URL.Query().Get("id")); id != "" {
		d.Search = id
		if e, ok := s.Recent.Find(id); ok {
			d.Found = &e
		} else {
			d.NotFound = true
		}
	}
	return d
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	s.render(w, s.data(r))
}

func (s *Server) render(w http.ResponseWriter, d pageData) {
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		http.Error(w, "rendering the admin page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) chart(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "image/svg+xml")
	fmt.Fprint(w, renderChart(s.Recent.Series(s.Now())))
}

// request sends the browser to the page's search for the id.
func (s *Server) request(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/?id="+url.QueryEscape(r.PathValue("id")), http.StatusSeeOther)
}

// requestJSON is the kept record of one request, as the decision log has it.
func (s *Server) requestJSON(w http.ResponseWriter, r *http.Request) {
	e, ok := s.Recent.Find(r.PathValue("id"))
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintln(w, `{"error":"no recent request with that id"}`)
		return
	}
	_ = json.NewEncoder(w).Encode(e.Record)
}

// explain runs the form's request through eng.Explain: the decision the
// gateway would make now, with the trace, serving nothing.
func (s *Server) explain(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	d := s.data(r)
	d.Explain = explainForm{
		Method:  r.PostFormValue("method"),
		URL:     r.PostFormValue("url"),
		IP:      r.PostFormValue("ip"),
		Headers: r.PostFormValue("headers"),
	}
	wire, err := explainWire(d.Explain)
	switch {
	case err != nil:
		d.ExplainError = err.Error()
	case s.Engine.Runtime() == nil:
		d.ExplainError = "no policy loaded"
	default:
		o := &engine.Outcome{Front: "admin explain"}
		s.Engine.Explain(&wire, o)
		rec := o.Record()
		if rec.Status == 0 && !o.Refused() {
			rec.Status = http.StatusOK
		}
		d.ExplainResult = &rec
	}
	s.render(w, d)
}

// explainWire builds the request the form describes, as `warden explain`
// does: the URL's path and query exactly as written.
func explainWire(f explainForm) (engine.Wire, error) {
	u, err := url.Parse(f.URL)
	if err != nil {
		return engine.Wire{}, fmt.Errorf("URL: %w", err)
	}
	if u.Host == "" {
		return engine.Wire{}, fmt.Errorf("URL %q needs a scheme and host, like http://example.com/path", f.URL)
	}
	target := f.URL[strings.Index(f.URL, u.Host)+len(u.Host):]
	if target == "" {
		target = "/"
	}
	ip := strings.TrimSpace(f.IP)
	if ip == "" {
		ip = "127.0.0.1"
	}
	if net.ParseIP(ip) == nil {
		return engine.Wire{}, fmt.Errorf("client address %q is not an IP address", ip)
	}
	method := strings.ToUpper(strings.TrimSpace(f.Method))
	if method == "" {
		method = http.MethodGet
	}
	wire := engine.Wire{
		Method: method, Target: target, Proto: "HTTP/1.1", Host: u.Host,
		RemoteAddr: net.JoinHostPort(ip, "40000"), Header: http.Header{}, TLS: u.Scheme == "https",
	}
	for _, line := range strings.Split(f.Headers, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return engine.Wire{}, fmt.Errorf("header %q: want 'Name: value'", line)
		}
		wire.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return wire, nil
}

// codeColors give each code a stable colour in the chart.
var codeColors = []string{"#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

func colorFor(codes []string, code string) string {
	for i, c := range codes {
		if c == code {
			return codeColors[i%len(codeColors)]
		}
	}
	return "#000"
}

// renderChart draws refusals per minute by code as stacked bars, in SVG
// rendered here: no script, no library, nothing fetched.
func renderChart(s Series) string {
	const w, h, left, bottom, top = 720, 220, 40, 30, 10
	plotH := h - bottom - top
	barW := float64(w-left-10) / Minutes
	peak := 0
	for i := 0; i < Minutes; i++ {
		sum := 0
		for _, c := range s.Codes {
			sum += s.Counts[c][i]
		}
		peak = max(peak, sum)
	}
	scale := 1
	for scale*4 < peak {
		scale *= 2
	}
	ymax := max(scale*4, 4)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="refusals-chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="refusals per minute by code, last %d minutes">`, w, h+20*((len(s.Codes)+3)/4), w, h+20*((len(s.Codes)+3)/4), Minutes)
	for i := 0; i <= 4; i++ {
		y := top + plotH - plotH*i/4
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/><text x="%d" y="%d" font-size="10" text-anchor="end">%d</text>`, left, y, w-10, y, left-4, y+3, ymax*i/4)
	}
	for i := 0; i < Minutes; i++ {
		x := float64(left) + float64(i)*barW
		y := float64(top + plotH)
		for _, c := range s.Codes {
			n := s.Counts[c][i]
			if n == 0 {
				continue
			}
			bh := float64(plotH) * float64(n) / float64(ymax)
			y -= bh
			fmt.Fprintf(&b, `<rect class="bar" data-code="%s" data-count="%d" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %d at %s</title></rect>`,
				template.HTMLEscapeString(c), n, x+0.5, y, barW-1, bh, colorFor(s.Codes, c),
				template.HTMLEscapeString(c), n, s.Start.Add(time.Duration(i)*time.Minute).Format("15:04"))
		}
	}
	for i := 0; i < Minutes; i += 10 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10">%s</text>`, float64(left)+float64(i)*barW, h-bottom+14, s.Start.Add(time.Duration(i)*time.Minute).Format("15:04"))
	}
	for i, c := range s.Codes {
		x, y := left+(i%4)*170, h+(i/4)*20
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text class="legend" x="%d" y="%d" font-size="12">%s</text>`, x, y-9, colorFor(s.Codes, c), x+14, y, template.HTMLEscapeString(c))
	}
	b.WriteString(`</svg>`)
	return b.String()
}
