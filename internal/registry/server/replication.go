package server

import (
	"context"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/core"
	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/proxycache"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/replication"
	"github.com/lading-dev/lading/internal/verify"
)

// The adapters between the registry and replication and proxy caches:
// local is lading's registry as replication reads and writes it;
// upstreams tell the registry which repositories are pull-through caches;
// the PROXY_CACHE job completes what a cache served from its upstream.
// Writes are made in the name of a system subject, through the Gate's
// policies and Events like a client's push.

// replicator is who replication and proxy caches act as in the
// registry: Gate checks see a system administrator of that name.
func replicator(name string) registry.Subject {
	return registry.Subject{Name: name, Identity: access.Subject{Kind: access.KindUser, Name: name, SysAdmin: true}}
}

// local implements replication.Local.
type local struct {
	reg  *registry.Registry
	meta *meta.SQL
	core *core.Core
}

var _ replication.Local = local{}

func (l local) who() registry.Subject { return replicator("replication") }

func (l local) ctx(ctx context.Context) context.Context { return actor.System(ctx, "replication") }

func (l local) Repositories(ctx context.Context) ([]string, error) { return l.reg.Repositories(ctx) }

func (l local) Tags(ctx context.Context, repo string) ([]string, error) { return l.reg.Tags(ctx, repo) }

// Artifacts lists the artifacts of the artifact view that stand on their
// own: not an index's children, not referrers.
func (l local) Artifacts(ctx context.Context, repo string) ([]endpoint.Artifact, error) {
	name, rest, ok := strings.Cut(repo, "/")
	if !ok {
		return nil, nil
	}
	var all []endpoint.Artifact
	children := map[string]bool{}
	for page := int64(1); ; page++ {
		list, total, err := l.core.Artifacts.Artifacts(ctx, system, project.Ref{Name: name}, rest, query.Query{}, query.Page{Number: page, Size: 100}, true)
		if err != nil {
			return nil, err
		}
		for _, a := range list {
			for _, r := range a.References {
				children[r.ChildDigest] = true
			}
			x := endpoint.Artifact{Digest: a.Digest, MediaType: a.ManifestMediaType, Type: a.Type}
			for _, t := range a.Tags {
				x.Tags = append(x.Tags, t.Name)
			}
			all = append(all, x)
		}
		if int64(len(list)) < 100 || page*100 >= total {
			break
		}
	}
	out := all[:0]
	for _, a := range all {
		if children[a.Digest] && len(a.Tags) == 0 {
			continue
		}
		if m, err := l.meta.Manifest(ctx, repo, a.Digest); err == nil && m.Subject != "" {
			continue // follows its subject
		}
		out = append(out, a)
	}
	return out, nil
}

func (l local) Manifest(ctx context.Context, repo, ref string) ([]byte, v1.Descriptor, error) {
	m, body, err := l.reg.ReadManifest(ctx, repo, ref)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	h, err := verify.ParseDigest(m.Digest)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	return body, v1.Descriptor{MediaType: types.MediaType(m.MediaType), Digest: h, Size: m.Size, ArtifactType: m.ArtifactType}, nil
}

func (l local) Referrers(ctx context.Context, repo, dgst string) ([]v1.Descriptor, error) {
	list, err := l.reg.Referrers(ctx, repo, dgst)
	if err != nil {
		return nil, err
	}
	out := make([]v1.Descriptor, 0, len(list))
	for _, d := range list {
		h, err := verify.ParseDigest(d.Digest)
		if err != nil {
			continue
		}
		out = append(out, v1.Descriptor{MediaType: types.MediaType(d.MediaType), Digest: h, Size: d.Size, ArtifactType: d.ArtifactType, Annotations: d.Annotations})
	}
	return out, nil
}

func (l local) OpenBlob(ctx context.Context, repo, dgst string) (io.ReadCloser, int64, error) {
	return l.reg.OpenBlob(ctx, repo, dgst)
}

func (l local) BlobRepositories(ctx context.Context, dgst string, limit int) ([]string, error) {
	return l.meta.BlobRepositories(ctx, dgst, limit)
}

func (l local) HaveBlob(ctx context.Context, repo, dgst string) (bool, error) {
	return l.reg.HaveBlob(l.ctx(ctx), repo, dgst)
}

func (l local) WriteBlob(ctx context.Context, repo, dgst string, size int64, r io.Reader) error {
	return l.reg.WriteBlob(l.ctx(ctx), l.who(), repo, dgst, size, r)
}

func (l local) WriteManifest(ctx context.Context, repo string, body []byte, mediaType string, tags []string) (string, error) {
	return l.reg.WriteManifest(l.ctx(ctx), l.who(), repo, body, mediaType, tags)
}

func (l local) Delete(ctx context.Context, repo, ref string) error {
	return l.reg.Delete(l.ctx(ctx), l.who(), repo, ref)
}

// upstreams implements registry.Upstreams over the proxy-cache service.
type upstreams struct{ p *proxycache.Service }

func (u upstreams) Upstream(ctx context.Context, repo string) (registry.Upstream, error) {
	r, err := u.p.Upstream(ctx, repo)
	if r == nil || err != nil {
		return nil, err
	}
	return r, nil
}

// completeCache is the PROXY_CACHE job.
func completeCache(reg *registry.Registry) func(context.Context, *jobs.Job, proxycache.Args) error {
	return func(ctx context.Context, j *jobs.Job, a proxycache.Args) error {
		ctx = actor.System(ctx, "proxy-cache")
		err := reg.CompleteCache(ctx, replicator("proxy-cache"), a.Repository, a.Digest, a.Tags)
		if err != nil {
			j.Log.Warn("caching a manifest served from the upstream failed", "repository", a.Repository, "digest", a.Digest, "error", err.Error())
			return err
		}
		j.Log.Info("cached", "repository", a.Repository, "digest", a.Digest, "tags", strings.Join(a.Tags, ","))
		return nil
	}
}

// replicate tells replication of a change (event-based policies); a
// failure is logged, never the client's problem.
func (e events) replicate(ctx context.Context, ev registry.Event, deleted bool) {
	ch := replication.Change{Repository: ev.Repository, Digest: ev.Digest, MediaType: ev.MediaType, Tags: ev.Tags, Subject: ev.Subject, Deleted: deleted, Operator: ev.User}
	if err := e.core.Replication.Changed(ctx, ch); err != nil && ctx.Err() == nil {
		e.core.Log().Warn("starting event-based replication", "repository", ev.Repository, "digest", ev.Digest, "error", err)
	}
}
