package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/core"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/token"
	"github.com/lading-dev/lading/internal/webhook"
)

// The adapters here are the whole contact between the registry and
// Harbor's layer: gate answers the registry's questions from identity,
// access and projects; events tell the artifact view of pulls; hooks keep
// quotas, the artifact view and the audit log in the metadata store's
// transactions; content lets the artifact view change the registry's
// content.

// gate implements registry.Gate: identity and access here, the content
// checks in its Policies (see policies).
type gate struct {
	registry.Policies
	core     *core.Core
	realm    string
	scanning scanapi.Registry // nil until scanning is plugged in
}

// policies are the checks pushes, pulls and deletions pass, in order:
// read-only mode, the storage quota, then those the caller adds
// (Options.Policies: immutable tags, vulnerability and signature
// policies).
func policies(c *core.Core, more []registry.Policy) registry.Policies {
	return append(registry.Policies{readOnly{c}, quota{core: c}}, more...)
}

var _ registry.Gate = (*gate)(nil)

func (g *gate) Basic(ctx context.Context, user, password, address string) (registry.Subject, error) {
	who, err := g.core.Identity.Login(ctx, user, password, address, false)
	if err != nil {
		return registry.Subject{}, err
	}
	return registry.Subject{Name: who.Name, Identity: who}, nil
}

func (g *gate) Bearer(_ context.Context, tok string) (registry.Subject, error) {
	cl, err := g.core.Tokens.Verify(tok)
	if err != nil {
		return registry.Subject{}, errdefs.Unauthorized(err)
	}
	s := registry.Subject{Name: cl.Subject, Token: true}
	for _, a := range cl.Access {
		s.Access = append(s.Access, registry.Scope{Type: a.Type, Name: a.Name, Actions: a.Actions})
	}
	return s, nil
}

func (g *gate) Challenge(r *http.Request) (string, string) {
	realm := g.realm
	if realm == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		realm = scheme + "://" + r.Host + token.Path
	}
	return realm, g.core.Tokens.Service()
}

// subject is the access subject behind a registry subject: the one the
// Gate authenticated, or, for a token, its subject as it is now.
func (g *gate) subject(ctx context.Context, s registry.Subject) (access.Subject, error) {
	if who, ok := s.Identity.(access.Subject); ok {
		return who, nil
	}
	if s.Name == "" {
		return access.Subject{}, nil
	}
	who, err := g.core.Identity.SubjectByName(ctx, s.Name)
	if errdefs.IsUnauthorized(err) {
		return access.Subject{}, nil
	}
	return who, err
}

func (g *gate) Allowed(ctx context.Context, s registry.Subject, repo string, want []string) ([]string, error) {
	name, _, ok := strings.Cut(repo, "/")
	if !ok {
		return nil, errdefs.InvalidArgument(fmt.Errorf("repository %s is not in a project: name it PROJECT/%s", repo, repo))
	}
	if _, err := g.core.Projects.Resolve(ctx, project.Ref{Name: name}); errdefs.IsNotFound(err) {
		return nil, errdefs.NotFound(fmt.Errorf("project %s not found", name))
	} else if err != nil {
		return nil, err
	}
	who, err := g.subject(ctx, s)
	if err != nil {
		return nil, err
	}
	acts, err := g.core.Access.RepositoryActions(ctx, who, repo)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range acts {
		if slices.Contains(want, string(a)) {
			out = append(out, string(a))
		}
	}
	return out, nil
}

func (g *gate) Catalog(ctx context.Context, s registry.Subject) (bool, error) {
	who, err := g.subject(ctx, s)
	if err != nil {
		return false, err
	}
	return g.core.Access.Can(ctx, who, access.Read, access.Catalog, 0)
}

// readOnly refuses changes while the read_only setting is on.
type readOnly struct{ core *core.Core }

func (p readOnly) check(ctx context.Context) error {
	st, err := p.core.Settings.Get(ctx)
	if err != nil {
		return err
	}
	if st.ReadOnly {
		return errdefs.Denied(errors.New("the system is in read only mode; changes are refused"))
	}
	return nil
}

func (p readOnly) CheckBlob(ctx context.Context, _ registry.Subject, _ string, _ int64) error {
	return p.check(ctx)
}

func (p readOnly) CheckPush(ctx context.Context, _ registry.Subject, _ registry.PushCheck) error {
	return p.check(ctx)
}

func (readOnly) CheckPull(context.Context, registry.Subject, string, string, string) error {
	return nil
}

func (p readOnly) CheckDelete(ctx context.Context, _ registry.Subject, _, _, _ string) error {
	return p.check(ctx)
}

// quota refuses a blob early when the project's quota cannot hold it (the
// exact accounting is in hooks, in the metadata store's transaction).
type quota struct {
	registry.AllowAll
	core *core.Core
}

func (p quota) CheckBlob(ctx context.Context, s registry.Subject, repo string, size int64) error {
	err := p.core.Projects.QuotaAllows(ctx, repo, size)
	quotaExceeded(ctx, p.core, repo, s.Name, err, false)
	return err
}

// scanPolicy is scanning's vulnerability prevention policy (package
// scanning, plugged in with Server.SetScanning; until then it lets every
// pull through). A pull with a token that grants scanner-pull on the
// repository (an external scanner's) is exempt.
type scanPolicy struct {
	registry.AllowAll
	g *gate
}

func (p scanPolicy) CheckPull(ctx context.Context, s registry.Subject, repo, dgst, _ string) error {
	sc := p.g.scanning
	if sc == nil {
		return nil
	}
	scannerPull := false
	for _, a := range s.Access {
		if s.Token && a.Type == "repository" && a.Name == repo && slices.Contains(a.Actions, string(access.ScannerPull)) {
			scannerPull = true
		}
	}
	who, err := p.g.subject(ctx, s)
	if err != nil {
		return err
	}
	return sc.CheckPull(ctx, who, scannerPull, repo, dgst)
}

// events implements registry.Events.
type events struct {
	core *core.Core
	also registry.Events
	host string // how clients name the registry, for webhook payloads
}

func (e events) Pushed(ctx context.Context, ev registry.Event) {
	e.notify(ctx, webhook.PushArtifact, ev)
	e.quotaWarning(ctx, ev)
	e.replicate(ctx, ev, false)
	if e.also != nil {
		e.also.Pushed(ctx, ev)
	}
}

func (e events) Pulled(ctx context.Context, ev registry.Event) {
	tag := ""
	if len(ev.Tags) > 0 {
		tag = ev.Tags[0]
	}
	e.core.Artifacts.Pulled(ctx, ev.Repository, ev.Digest, tag)
	e.notify(ctx, webhook.PullArtifact, ev)
	if e.also != nil {
		e.also.Pulled(ctx, ev)
	}
}

func (e events) Deleted(ctx context.Context, ev registry.Event) {
	e.notify(ctx, webhook.DeleteArtifact, ev)
	e.replicate(ctx, ev, true)
	if e.also != nil {
		e.also.Deleted(ctx, ev)
	}
}

// hooks implements meta.Hooks.
type hooks struct {
	core     *core.Core
	scanning scanapi.Registry // nil without scanning
}

var _ meta.Hooks = (*hooks)(nil)

func (h *hooks) BlobLinked(ctx context.Context, tx *sqldb.Tx, repo, dgst string, size int64) error {
	err := h.core.Projects.Linked(ctx, tx, repo, dgst, size)
	quotaExceeded(ctx, h.core, repo, actor.From(ctx).Name, err, true)
	return err
}

func (h *hooks) BlobUnlinked(ctx context.Context, tx *sqldb.Tx, repo, dgst string) error {
	return h.core.Projects.Unlinked(ctx, tx, repo, dgst)
}

func (h *hooks) ManifestPut(ctx context.Context, tx *sqldb.Tx, repo string, m meta.Manifest, tags []string) error {
	if trustChanged(m, tags) {
		if err := h.core.Trust.Changed(ctx, tx, repo); err != nil {
			return err
		}
	}
	if m.Content == nil {
		return nil
	}
	if err := h.core.Artifacts.ManifestPut(ctx, tx, artifact.Pushed{Repo: repo, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, Content: m.Content, Tags: tags}); err != nil {
		return err
	}
	if h.scanning != nil {
		return h.scanning.ManifestPut(ctx, tx, repo, m.Digest, m.MediaType, m.Content)
	}
	return nil
}

func (h *hooks) ManifestDeleted(ctx context.Context, tx *sqldb.Tx, repo, dgst string) error {
	if err := h.core.Trust.Changed(ctx, tx, repo); err != nil {
		return err
	}
	return h.core.Artifacts.ManifestDeleted(ctx, tx, repo, dgst)
}

func (h *hooks) TagPut(ctx context.Context, tx *sqldb.Tx, repo, tag, dgst string) error {
	if artifact.LegacySubject(tag) != "" {
		if err := h.core.Trust.Changed(ctx, tx, repo); err != nil {
			return err
		}
	}
	return h.core.Artifacts.TagPut(ctx, tx, repo, tag, dgst)
}

func (h *hooks) TagDeleted(ctx context.Context, tx *sqldb.Tx, repo, tag string) error {
	if artifact.LegacySubject(tag) != "" {
		if err := h.core.Trust.Changed(ctx, tx, repo); err != nil {
			return err
		}
	}
	return h.core.Artifacts.TagDeleted(ctx, tx, repo, tag)
}

func (h *hooks) RepositoryDeleted(ctx context.Context, tx *sqldb.Tx, repo string) error {
	if err := h.core.Trust.Changed(ctx, tx, repo); err != nil {
		return err
	}
	return h.core.Artifacts.RepositoryDeleted(ctx, tx, repo)
}

// content implements artifact.Registry over the metadata store and the
// registry.
type content struct {
	meta   *meta.SQL
	reg    *registry.Registry
	events registry.Events
}

var _ artifact.Registry = content{}

func (c content) DeleteManifest(ctx context.Context, repo, dgst string) error {
	return c.meta.DeleteManifest(ctx, repo, dgst)
}

func (c content) PutTag(ctx context.Context, repo, tag, dgst string) error {
	return c.meta.PutTag(ctx, repo, tag, dgst)
}

func (c content) DeleteTag(ctx context.Context, repo, tag string) error {
	return c.meta.DeleteTag(ctx, repo, tag)
}

func (c content) Deleted(ctx context.Context, repo, dgst, mediaType, tag, user string) {
	ev := registry.Event{Repository: repo, Digest: dgst, MediaType: mediaType, User: user}
	if tag != "" {
		ev.Tags = []string{tag}
	}
	c.events.Deleted(ctx, ev)
}

func (c content) DeleteRepository(ctx context.Context, repo string) error {
	return c.meta.DeleteRepository(ctx, repo)
}

func (c content) Copy(ctx context.Context, src, ref, dst string) (string, error) {
	return c.reg.Copy(ctx, src, ref, dst)
}

func (c content) Forget(ctx context.Context, tx *sqldb.Tx, prefix string) error {
	return c.meta.Forget(ctx, tx, prefix)
}
