package server

import (
	"context"
	"log/slog"

	"github.com/lading-dev/lading/internal/actor"
)

// requestIDs adds the request id the context carries (actor.Actor's) to
// records that lack one, so that a line logged while serving a request
// names it: Harbor's log collector joins a request's access, application
// and audit lines by it.
type requestIDs struct{ slog.Handler }

func (h requestIDs) Handle(ctx context.Context, r slog.Record) error {
	id := actor.From(ctx).RequestID
	if id == "" {
		return h.Handler.Handle(ctx, r)
	}
	has := false
	r.Attrs(func(a slog.Attr) bool {
		has = a.Key == "request_id"
		return !has
	})
	if !has {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDs) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDs{h.Handler.WithAttrs(as)}
}

func (h requestIDs) WithGroup(name string) slog.Handler {
	return requestIDs{h.Handler.WithGroup(name)}
}
