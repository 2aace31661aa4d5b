// Package accesslog writes the access log: one line per finished request,
// allowed or refused, in nginx's combined format (so log analysers, fail2ban
// filters and `warden replay` read it) or as JSON. It is an engine observer:
// every front end's requests pass through it exactly once, so a 404 is one
// line, not an allow and then a conceal.
//
// The decision log says why; the access log says what was sent: status,
// bytes, duration. Both carry the request id.
package accesslog

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
)

// Format is a line format.
type Format uint8

const (
	Combined Format = iota
	JSON
)

// Settings are the access log's config, resolved.
type Settings struct {
	Format Format
	// Path is the file, or "" for Stream.
	Path   string
	Stream io.Writer
	// MaxBytes rotates at this size (0: never); MaxFiles rotated files kept.
	MaxBytes int64
	MaxFiles int
}

// FromConfig resolves the log.access section (nil: no access log).
func FromConfig(cfg *config.Config) *Settings {
	a := cfg.Log.Access
	if a == nil {
		return nil
	}
	s := &Settings{MaxBytes: a.MaxBytes, MaxFiles: a.MaxFiles}
	if a.Format.Value == "json" {
		s.Format = JSON
	}
	if s.MaxFiles == 0 {
		s.MaxFiles = 5
	}
	switch a.File.Value {
	case "", "stderr":
		s.Stream = os.Stderr
	case "stdout":
		s.Stream = os.Stdout
	default:
		s.Path = a.File.Value
		if !filepath.IsAbs(s.Path) {
			s.Path = filepath.Join(filepath.Dir(cfg.Pos.File), s.Path)
		}
	}
	return s
}

// Log is the access log. Configure may be called at any time (a reload);
// Observe is the engine observer.
type Log struct {
	mu   sync.Mutex
	set  Settings
	on   atomic.Bool
	file *os.File
	out  io.Writer
	size int64
	buf  []byte
	// errors counts failed writes (a full disk), for the operator.
	errors atomic.Int64
}

// New makes an access log with no output; Configure turns it on.
func New() *Log { return &Log{} }

// Configure applies settings (nil: off). A file is opened (created with
// 0640, appended to); on failure the previous output stays.
func (l *Log) Configure(s *Settings) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s == nil {
		l.closeLocked()
		l.set, l.out = Settings{}, nil
		l.on.Store(false)
		return nil
	}
	if s.Path != "" && (l.file == nil || l.set.Path != s.Path) {
		f, size, err := openLog(s.Path)
		if err != nil {
			return err
		}
		l.closeLocked()
		l.file, l.size, l.out = f, size, f
	} else if s.Path == "" {
		l.closeLocked()
		l.out = s.Stream
	}
	l.set = *s
	l.on.Store(true)
	return nil
}

func openLog(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, 0, fmt.Errorf("access log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("access log: %w", err)
	}
	return f, st.Size(), nil
}

func (l *Log) closeLocked() {
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
}

// Reopen closes and reopens the file: after logrotate has moved it away,
// new lines go to a new file at the old path (SIGUSR1, as nginx does).
func (l *Log) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.set.Path == "" {
		return nil
	}
	f, size, err := openLog(l.set.Path)
	if err != nil {
		return err
	}
	l.closeLocked()
	l.file, l.size, l.out = f, size, f
	return nil
}

// Close closes the file.
func (l *Log) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeLocked()
	l.out = nil
	l.on.Store(false)
}

// WriteErrors is how many lines could not be written.
func (l *Log) WriteErrors() int64 { return l.errors.Load() }

// Observe writes o's line.
func (l *Log) Observe(o *engine.Outcome) {
	if !l.on.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.out == nil {
		return
	}
	b := l.buf[:0]
	if l.set.Format == JSON {
		b = AppendJSON(b, o)
	} else {
		b = AppendCombined(b, o)
	}
	l.buf = b
	if l.file != nil && l.set.MaxBytes > 0 && l.size > 0 && l.size+int64(len(b)) > l.set.MaxBytes {
		l.rotateLocked()
	}
	n, err := l.out.Write(b)
	l.size += int64(n)
	if err != nil {
		l.errors.Add(1)
	}
}

// rotateLocked moves FILE to FILE.1 (FILE.1 to FILE.2, …, dropping the
// oldest beyond MaxFiles) and opens a new FILE.
func (l *Log) rotateLocked() {
	p := l.set.Path
	for i := l.set.MaxFiles; i >= 1; i-- {
		from := p + "." + strconv.Itoa(i-1)
		if i == 1 {
			from = p
		}
		to := p + "." + strconv.Itoa(i)
		if i == l.set.MaxFiles {
			os.Remove(to)
		}
		_ = os.Rename(from, to)
	}
	f, size, err := openLog(p)
	if err != nil {
		// Keep writing to the renamed file rather than lose lines.
		l.errors.Add(1)
		return
	}
	l.closeLocked()
	l.file, l.size, l.out = f, size, f
}

// Entry is the JSON form of a line; its names are the JSON format's keys.
type Entry struct {
	Time      string  `json:"time"`
	RequestID string  `json:"request_id"`
	ClientIP  string  `json:"client_ip"`
	Peer      string  `json:"peer,omitempty"`
	Method    string  `json:"method"`
	Host      string  `json:"host,omitempty"`
	Target    string  `json:"target"`
	Path      string  `json:"path,omitempty"`
	Query     string  `json:"query,omitempty"`
	Proto     string  `json:"proto,omitempty"`
	Status    int     `json:"status"`
	Bytes     int64   `json:"bytes"`
	Duration  float64 `json:"duration"`
	UserAgent string  `json:"user_agent,omitempty"`
	Referer   string  `json:"referer,omitempty"`
	Principal string  `json:"principal,omitempty"`
	Action    string  `json:"action"`
	Code      string  `json:"code,omitempty"`
	Rule      string  `json:"rule,omitempty"`
}

// status is what was sent: the front end's count, else the refusal's
// status, else 200 for an allow nobody counted.
func status(o *engine.Outcome) int {
	if o.Status != 0 {
		return o.Status
	}
	if o.Refused() {
		if o.Decision.Status != 0 {
			return o.Decision.Status
		}
		return o.Decision.Code.Status()
	}
	return 200
}

func clientIP(o *engine.Outcome) string {
	if o.HasRequest && o.Request.ClientIP.IsValid() {
		return o.Request.ClientIP.String()
	}
	if o.Wire != nil && o.Wire.RemoteAddr != "" {
		if host, _, err := net.SplitHostPort(o.Wire.RemoteAddr); err == nil {
			return host
		}
		return o.Wire.RemoteAddr
	}
	return "-"
}

func principal(o *engine.Outcome) string {
	if o.Caller != nil {
		return o.Caller.ID
	}
	if o.Decision.Caller != nil {
		return o.Decision.Caller.ID
	}
	return ""
}

// AppendJSON appends o's JSON line.
func AppendJSON(b []byte, o *engine.Outcome) []byte {
	e := Entry{
		Time: o.Now.UTC().Format(time.RFC3339Nano), RequestID: o.ID, ClientIP: clientIP(o),
		Status: status(o), Bytes: o.Bytes, Duration: o.Duration.Seconds(), Principal: principal(o),
		Action: o.Decision.Action.String(), Code: string(o.Decision.Code), Rule: o.Decision.Rule,
	}
	if w := o.Wire; w != nil {
		e.Peer, e.Method, e.Host, e.Target, e.Proto = w.RemoteAddr, w.Method, w.Host, w.Target, w.Proto
		e.UserAgent, e.Referer = w.Header.Get("User-Agent"), w.Header.Get("Referer")
	}
	if o.HasRequest {
		e.Path, e.Query = o.Request.Path, o.Request.RawQuery
	}
	j, err := json.Marshal(&e)
	if err != nil {
		return b
	}
	b = append(b, j...)
	return append(b, '\n')
}

// AppendCombined appends o's line in nginx's combined format:
//
//	$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
//
// followed by the request id and the duration in seconds (as nginx's
// $request_id and $request_time are commonly appended): parsers of combined
// read the fields from the start and ignore what follows. Strings are
// escaped as nginx does (" and \ and bytes outside printable ASCII as \xHH),
// so a client cannot forge a field or a line.
func AppendCombined(b []byte, o *engine.Outcome) []byte {
	b = appendEscaped(b, clientIP(o), true)
	b = append(b, " - "...)
	if p := principal(o); p != "" {
		b = appendEscaped(b, p, true)
	} else {
		b = append(b, '-')
	}
	b = append(b, " ["...)
	b = o.Now.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	method, target, proto, ref, ua := "", "", "", "", ""
	if w := o.Wire; w != nil {
		method, target, proto = w.Method, w.Target, w.Proto
		ref, ua = w.Header.Get("Referer"), w.Header.Get("User-Agent")
	}
	if proto == "" {
		proto = "HTTP/1.1"
	}
	b = appendEscaped(b, method, false)
	b = append(b, ' ')
	b = appendEscaped(b, target, false)
	b = append(b, ' ')
	b = appendEscaped(b, proto, false)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status(o)), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, o.Bytes, 10)
	b = append(b, " \""...)
	b = appendOrDash(b, ref)
	b = append(b, "\" \""...)
	b = appendOrDash(b, ua)
	b = append(b, "\" "...)
	b = append(b, o.ID...)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, o.Duration.Seconds(), 'f', 3, 64)
	return append(b, '\n')
}

func appendOrDash(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendEscaped(b, s, false)
}

// appendEscaped escapes like nginx's log escaping: '"', '\\' and bytes
// below 0x20 or at/above 0x7f become \xHH; spaces too when noSpace (the
// user field is space-delimited).
func appendEscaped(b []byte, s string, noSpace bool) []byte {
	const hexd = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c >= 0x7f || noSpace && c == ' ' {
			b = append(b, '\\', 'x', hexd[c>>4], hexd[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}
