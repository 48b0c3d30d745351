// Package actor carries who is acting, and in which request, through a
// context, so that what records a change (the audit log, events, logs)
// can name them whichever way the change came: the registry protocol, the
// HTTP API, the web UI or a background job.
//
// It is a leaf: every layer may import it; it imports nothing of lading.
package actor

import "context"

// Actor is who acts.
type Actor struct {
	// Name is the user's or robot's name; "" for anonymous callers and
	// for lading itself (Kind "system").
	Name string
	// Kind is "user", "robot", "anonymous" or "system".
	Kind string
	// ID is the user's or robot's id.
	ID int64
	// Address is the client's address.
	Address string
	// RequestID is the request's id (X-Request-Id).
	RequestID string
}

type key struct{}

// With returns ctx carrying a.
func With(ctx context.Context, a Actor) context.Context { return context.WithValue(ctx, key{}, a) }

// From returns the actor ctx carries; the zero Actor when none.
func From(ctx context.Context) Actor {
	a, _ := ctx.Value(key{}).(Actor)
	return a
}

// System returns ctx acting as lading itself (first start, garbage
// collection, purges), keeping the request id if any.
func System(ctx context.Context, what string) context.Context {
	a := From(ctx)
	return With(ctx, Actor{Name: what, Kind: "system", RequestID: a.RequestID})
}
