package syslog

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
)

// Handler is a slog.Handler that writes each record as JSON to the
// Writer target returns (none: the record is not forwarded), with the
// record's level as the syslog severity. Combine it with the stderr
// handler through Tee.
type Handler struct {
	target func() *Writer
	msgid  string
	level  slog.Leveler
	mu     *sync.Mutex
	buf    *bytes.Buffer
	json   slog.Handler
}

// NewHandler returns a handler sending records at level or above to the
// writer target returns at the time, tagged msgid ("app", "access").
func NewHandler(target func() *Writer, msgid string, level slog.Leveler) *Handler {
	buf := &bytes.Buffer{}
	return &Handler{target: target, msgid: msgid, level: level, mu: &sync.Mutex{}, buf: buf, json: slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level})}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	min := slog.LevelInfo
	if h.level != nil {
		min = h.level.Level()
	}
	return l >= min
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	w := h.target()
	if w == nil {
		return nil
	}
	h.mu.Lock()
	h.buf.Reset()
	err := h.json.Handle(ctx, r)
	msg := string(bytes.TrimRight(h.buf.Bytes(), "\n"))
	h.mu.Unlock()
	if err != nil {
		return err
	}
	sev := SeverityInfo
	switch {
	case r.Level >= slog.LevelError:
		sev = SeverityError
	case r.Level >= slog.LevelWarn:
		sev = SeverityWarning
	case r.Level < slog.LevelInfo:
		sev = SeverityDebug
	}
	w.Send(FacilityLocal0, sev, r.Time, h.msgid, msg)
	return nil
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.json = h.json.WithAttrs(as)
	return &c
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	c := *h
	c.json = h.json.WithGroup(name)
	return &c
}

// Tee is a slog.Handler that hands each record to several handlers.
type Tee []slog.Handler

// Enabled implements slog.Handler.
func (t Tee) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

// Handle implements slog.Handler.
func (t Tee) Handle(ctx context.Context, r slog.Record) error {
	var first error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// WithAttrs implements slog.Handler.
func (t Tee) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(Tee, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

// WithGroup implements slog.Handler.
func (t Tee) WithGroup(name string) slog.Handler {
	out := make(Tee, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}

// Switch keeps one Writer for the current collector address: asked for
// another address, it closes the old writer and dials the new one.
type Switch struct {
	mu  sync.Mutex
	w   *Writer
	app string
	log *slog.Logger
}

// NewSwitch returns a switch whose writers tag messages with app and log
// their own troubles to log (which must not forward to them).
func NewSwitch(app string, log *slog.Logger) *Switch { return &Switch{app: app, log: log} }

// Writer returns the writer to addr ("" : none).
func (s *Switch) Writer(addr string) *Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil && s.w.Addr() != addr {
		go s.w.Close()
		s.w = nil
	}
	if addr == "" {
		return nil
	}
	if s.w == nil {
		s.w = Dial(addr, s.app, s.log)
	}
	return s.w
}

// Close closes the current writer.
func (s *Switch) Close() {
	s.mu.Lock()
	w := s.w
	s.w = nil
	s.mu.Unlock()
	if w != nil {
		w.Close()
	}
}
