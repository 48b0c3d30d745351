package registry

import (
	"context"
	"net/http"
)

// The registry speaks the distribution protocol and nothing else: who a
// caller is, what they may do, which policies a push or a pull must pass,
// and what happens after, belong to the services (identity, access,
// projects, policies) that the server composes. The registry asks them
// through Gate and tells them through Events; it never imports them.

// Subject is who a request comes from, as the Gate identified them.
type Subject struct {
	// Name is the user's or robot's name; "" for anonymous callers.
	Name string
	// Token is set when the request carried a bearer token: Access is then
	// exactly what the token grants, whatever the subject might do now.
	Token  bool
	Access []Scope
	// Identity is the Gate's own record of the subject, opaque to the
	// registry, handed back to the Gate's checks.
	Identity any
}

// Anonymous reports whether the subject presented no credentials.
func (s Subject) Anonymous() bool { return s.Name == "" }

// Gate is what the registry asks before it acts.
type Gate interface {
	Authenticator
	Authorizer
	Policy
}

// Authenticator identifies callers.
type Authenticator interface {
	// Basic checks basic credentials (users, robots) presented from
	// address. Wrong credentials are errdefs.ErrUnauthorized; too many
	// failures errdefs.ErrThrottled.
	Basic(ctx context.Context, user, password, address string) (Subject, error)
	// Bearer verifies a token of the token service.
	Bearer(ctx context.Context, token string) (Subject, error)
	// Challenge returns the token service's URL and name for the
	// WWW-Authenticate challenge of a request.
	Challenge(r *http.Request) (realm, service string)
}

// Authorizer decides access.
type Authorizer interface {
	// Allowed returns which of want ("pull", "push", "delete") s may do
	// on repo. A repository outside any project is
	// errdefs.ErrInvalidArgument and one whose project does not exist
	// errdefs.ErrNotFound, both naming what is wrong, so the registry can
	// tell the client.
	Allowed(ctx context.Context, s Subject, repo string, want []string) ([]string, error)
	// Catalog reports whether s may list every repository (the catalog
	// is then filtered by pull access all the same).
	Catalog(ctx context.Context, s Subject) (bool, error)
}

// Policy holds the checks content must pass beyond access: a storage quota
// on what is about to be written (the exact accounting happens in the
// metadata store's transaction, see meta.Hooks; this is the early
// refusal), and, as they come, immutable tags, vulnerability and
// signature policies. Each check returns nil to let the action proceed,
// or an error whose class (errdefs.ErrDenied, ...) the registry answers.
type Policy interface {
	// CheckBlob is asked before size bytes are received into repo
	// (size < 0 when unknown).
	CheckBlob(ctx context.Context, s Subject, repo string, size int64) error
	// CheckPush is asked before a manifest is stored.
	CheckPush(ctx context.Context, s Subject, m PushCheck) error
	// CheckPull is asked before a manifest is served.
	CheckPull(ctx context.Context, s Subject, repo, dgst, mediaType string) error
	// CheckDelete is asked before a manifest (tag empty) or a tag is
	// deleted.
	CheckDelete(ctx context.Context, s Subject, repo, dgst, tag string) error
}

// Policies are checks run in order; the first refusal wins. The server
// composes the gate's policy this way, so a new check (immutable tags,
// vulnerability or signature policies) is one more element.
type Policies []Policy

func (ps Policies) CheckBlob(ctx context.Context, s Subject, repo string, size int64) error {
	for _, p := range ps {
		if err := p.CheckBlob(ctx, s, repo, size); err != nil {
			return err
		}
	}
	return nil
}

func (ps Policies) CheckPush(ctx context.Context, s Subject, m PushCheck) error {
	for _, p := range ps {
		if err := p.CheckPush(ctx, s, m); err != nil {
			return err
		}
	}
	return nil
}

func (ps Policies) CheckPull(ctx context.Context, s Subject, repo, dgst, mediaType string) error {
	for _, p := range ps {
		if err := p.CheckPull(ctx, s, repo, dgst, mediaType); err != nil {
			return err
		}
	}
	return nil
}

func (ps Policies) CheckDelete(ctx context.Context, s Subject, repo, dgst, tag string) error {
	for _, p := range ps {
		if err := p.CheckDelete(ctx, s, repo, dgst, tag); err != nil {
			return err
		}
	}
	return nil
}

// AllowAll lets everything through; embed it in a check that cares about
// some actions only, and override those.
type AllowAll struct{}

func (AllowAll) CheckBlob(context.Context, Subject, string, int64) error          { return nil }
func (AllowAll) CheckPush(context.Context, Subject, PushCheck) error              { return nil }
func (AllowAll) CheckPull(context.Context, Subject, string, string, string) error { return nil }
func (AllowAll) CheckDelete(context.Context, Subject, string, string, string) error {
	return nil
}

// PushCheck describes a manifest about to be stored.
type PushCheck struct {
	Repository string
	Digest     string
	MediaType  string
	Size       int64
	Tags       []string
	// Subject is the digest of the manifest it refers to (referrers).
	Subject string
}

// Events are told what happened, after it is committed. They must only
// queue work (a scan, a webhook, a replication, a pull record), never do
// it inline: the client waits.
type Events interface {
	Pushed(ctx context.Context, e Event)
	Pulled(ctx context.Context, e Event)
	Deleted(ctx context.Context, e Event)
}

// Event describes a manifest pushed, pulled or deleted (Tags: the tags
// pushed, the tag pulled by, the tag deleted).
type Event struct {
	Repository string
	Digest     string
	MediaType  string
	Size       int64
	Tags       []string
	// Subject is the digest of the manifest it refers to, for referrers.
	Subject string
	// User is the caller's name, "" when anonymous.
	User string
}

type noEvents struct{}

func (noEvents) Pushed(context.Context, Event)  {}
func (noEvents) Pulled(context.Context, Event)  {}
func (noEvents) Deleted(context.Context, Event) {}
