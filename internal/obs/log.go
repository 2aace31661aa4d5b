package obs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/warden-gateway/warden/internal/config"
)

// ValidateLog checks the log: section's values other than decisions (which
// the engine checks next to its use), with positions: a format that would
// be silently ignored is an error.
func ValidateLog(l *config.Log) config.Errors {
	var errs config.Errors
	switch l.Format.Value {
	case "", "json", "text":
	default:
		errs = append(errs, &config.Error{Pos: l.Format.Pos, Msg: fmt.Sprintf("log.format must be json or text, not %q", l.Format.Value)})
	}
	if a := l.Access; a != nil {
		switch a.Format.Value {
		case "", "combined", "json":
		default:
			errs = append(errs, &config.Error{Pos: a.Format.Pos, Msg: fmt.Sprintf("log.access.format must be combined or json, not %q", a.Format.Value)})
		}
		if a.File.Value == "" && a.File.Pos.Line > 0 {
			errs = append(errs, &config.Error{Pos: a.File.Pos, Msg: "log.access.file is empty (a path, stderr or stdout)"})
		}
		if a.MaxBytes < 0 {
			errs = append(errs, &config.Error{Pos: a.Pos, Msg: "log.access.max_bytes must not be negative"})
		}
		if a.MaxFiles < 0 {
			errs = append(errs, &config.Error{Pos: a.Pos, Msg: "log.access.max_files must not be negative"})
		}
		if a.MaxBytes > 0 && (a.File.Value == "" || a.File.Value == "stderr" || a.File.Value == "stdout") {
			errs = append(errs, &config.Error{Pos: a.Pos, Msg: "log.access.max_bytes needs a file to rotate (log.access.file)"})
		}
	}
	return errs
}

// SwitchHandler is a slog.Handler whose format can change while it is in
// use: `warden serve` makes its logger before the config is read, and a
// reload may change log.format.
type SwitchHandler struct {
	w    io.Writer
	cur  atomic.Pointer[slog.Handler]
	json atomic.Bool
}

// NewSwitchHandler starts in JSON on w. Writes to w are serialized unless
// w is a *LogWriter or an *os.File, which take concurrent writes already:
// the engine writes decision lines to it directly (JSONLines) while slog
// writes everything else.
func NewSwitchHandler(w io.Writer) *SwitchHandler {
	switch w.(type) {
	case *LogWriter, *os.File:
	default:
		w = &lockedWriter{w: w}
	}
	s := &SwitchHandler{w: w}
	s.SetFormat("json")
	return s
}

// JSONLines is the writer JSON lines go to, or nil when the format is
// text: with it the engine writes its decision records itself, the bytes
// slog's JSONHandler would write (engine.JSONLineHandler).
func (s *SwitchHandler) JSONLines() io.Writer {
	if s.json.Load() {
		return s.w
	}
	return nil
}

// lockedWriter makes one writer safe for the two that write to it.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// SetFormat switches to "json" (also for "") or "text".
func (s *SwitchHandler) SetFormat(format string) {
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(s.w, nil)
	} else {
		h = slog.NewJSONHandler(s.w, nil)
	}
	s.cur.Store(&h)
	s.json.Store(format != "text")
}

func (s *SwitchHandler) load() slog.Handler { return *s.cur.Load() }

func (s *SwitchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return s.load().Enabled(ctx, l)
}

func (s *SwitchHandler) Handle(ctx context.Context, r slog.Record) error {
	return s.load().Handle(ctx, r)
}

// WithAttrs and WithGroup fix the format at the time they are called:
// loggers derived with them are not switched.
func (s *SwitchHandler) WithAttrs(a []slog.Attr) slog.Handler { return s.load().WithAttrs(a) }
func (s *SwitchHandler) WithGroup(n string) slog.Handler      { return s.load().WithGroup(n) }
