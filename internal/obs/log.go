package obs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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
	w   io.Writer
	cur atomic.Pointer[slog.Handler]
}

// NewSwitchHandler starts in JSON on w.
func NewSwitchHandler(w io.Writer) *SwitchHandler {
	s := &SwitchHandler{w: w}
	s.SetFormat("json")
	return s
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
