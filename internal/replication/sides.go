package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/project"
)

// maxManifest bounds a manifest read from a remote registry (the size
// lading accepts from clients by default).
const maxManifest = 4 << 20

// side is one end of a replication: lading itself or a remote registry.
// Manifests read from a side are verified against the digest they are
// asked by; blobs are verified as they are read.
type side interface {
	String() string
	repositories(ctx context.Context) ([]string, error)
	artifacts(ctx context.Context, repo string) ([]endpoint.Artifact, error)
	tags(ctx context.Context, repo string) ([]string, error)
	// head returns the digest ref names (errdefs.ErrNotFound: none).
	head(ctx context.Context, repo, ref string) (string, error)
	manifest(ctx context.Context, repo, ref string) ([]byte, v1.Descriptor, error)
	referrers(ctx context.Context, repo, dgst string) ([]v1.Descriptor, error)
	openBlob(ctx context.Context, repo, dgst string) (io.ReadCloser, int64, error)
	// haveBlob reports whether repo has the blob (a local side links it
	// when it holds it elsewhere).
	haveBlob(ctx context.Context, repo, dgst string) (bool, error)
	// putBlob sends a blob unless a mount from mountFrom gives it; it
	// reports whether content was sent.
	putBlob(ctx context.Context, repo string, b endpoint.Blob, mountFrom string, open func() (io.ReadCloser, error)) (bool, error)
	// putManifest stores a manifest under each tag (none: its digest).
	putManifest(ctx context.Context, repo string, tags []string, body []byte, desc v1.Descriptor) error
	delete(ctx context.Context, repo, ref string) error
	// ensureNamespace creates what a push into repo needs (a project).
	ensureNamespace(ctx context.Context, repo string) error
}

// side returns registry id's side (0: lading).
func (s *Service) side(ctx context.Context, id int64) (side, error) {
	if id == 0 {
		if s.local == nil {
			return nil, errdefs.Unavailable(fmt.Errorf("lading's registry is not wired to replication"))
		}
		return &localSide{l: s.local, projects: s.projects}, nil
	}
	r, err := s.registry(ctx, id)
	if err != nil {
		return nil, err
	}
	c, err := s.client(r.Endpoint, false)
	if err != nil {
		return nil, err
	}
	return &remoteSide{c: c, name: r.Name}, nil
}

// localSide is lading's registry.
type localSide struct {
	l        Local
	projects *project.Service
}

func (l *localSide) String() string { return "lading" }

func (l *localSide) repositories(ctx context.Context) ([]string, error) { return l.l.Repositories(ctx) }

func (l *localSide) artifacts(ctx context.Context, repo string) ([]endpoint.Artifact, error) {
	return l.l.Artifacts(ctx, repo)
}

func (l *localSide) tags(ctx context.Context, repo string) ([]string, error) {
	return l.l.Tags(ctx, repo)
}

func (l *localSide) head(ctx context.Context, repo, ref string) (string, error) {
	_, d, err := l.l.Manifest(ctx, repo, ref)
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

func (l *localSide) manifest(ctx context.Context, repo, ref string) ([]byte, v1.Descriptor, error) {
	return l.l.Manifest(ctx, repo, ref)
}

func (l *localSide) referrers(ctx context.Context, repo, dgst string) ([]v1.Descriptor, error) {
	return l.l.Referrers(ctx, repo, dgst)
}

func (l *localSide) openBlob(ctx context.Context, repo, dgst string) (io.ReadCloser, int64, error) {
	return l.l.OpenBlob(ctx, repo, dgst)
}

func (l *localSide) haveBlob(ctx context.Context, repo, dgst string) (bool, error) {
	return l.l.HaveBlob(ctx, repo, dgst)
}

func (l *localSide) putBlob(ctx context.Context, repo string, b endpoint.Blob, _ string, open func() (io.ReadCloser, error)) (bool, error) {
	rc, err := open()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	return true, l.l.WriteBlob(ctx, repo, b.Digest, b.Size, rc)
}

func (l *localSide) putManifest(ctx context.Context, repo string, tags []string, body []byte, desc v1.Descriptor) error {
	got, err := l.l.WriteManifest(ctx, repo, body, string(desc.MediaType), tags)
	if err != nil {
		return err
	}
	if got != desc.Digest.String() {
		return errdefs.Unsupported(fmt.Errorf("manifest %s was stored as %s: lading names manifests by sha256", desc.Digest, got))
	}
	return nil
}

func (l *localSide) delete(ctx context.Context, repo, ref string) error {
	return l.l.Delete(ctx, repo, ref)
}

// replicator creates the projects a pull-based replication needs; they
// belong to the first administrator, as Harbor's do.
var replicator = access.Subject{Kind: access.KindUser, ID: identity.AdminID, Name: "replication", SysAdmin: true}

func (l *localSide) ensureNamespace(ctx context.Context, repo string) error {
	name, _, ok := strings.Cut(repo, "/")
	if !ok {
		return errdefs.InvalidArgument(fmt.Errorf("repository %s is not in a project", repo))
	}
	if _, err := l.projects.Resolve(ctx, project.Ref{Name: name}); !errdefs.IsNotFound(err) {
		return err
	}
	_, err := l.projects.Create(ctx, replicator, project.Create{Name: name})
	if errors.Is(err, errdefs.ErrConflict) {
		return nil // created meanwhile
	}
	return err
}

// remoteSide is a registry endpoint.
type remoteSide struct {
	c    *endpoint.Client
	name string
}

func (r *remoteSide) String() string { return fmt.Sprintf("%s (%s)", r.name, r.c) }

func (r *remoteSide) repositories(ctx context.Context) ([]string, error) {
	return r.c.Repositories(ctx)
}

func (r *remoteSide) artifacts(ctx context.Context, repo string) ([]endpoint.Artifact, error) {
	return r.c.Artifacts(ctx, repo)
}

func (r *remoteSide) tags(ctx context.Context, repo string) ([]string, error) {
	return r.c.Tags(ctx, repo)
}

func (r *remoteSide) head(ctx context.Context, repo, ref string) (string, error) {
	d, err := r.c.Head(ctx, repo, ref)
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

func (r *remoteSide) manifest(ctx context.Context, repo, ref string) ([]byte, v1.Descriptor, error) {
	return r.c.Manifest(ctx, repo, ref, maxManifest)
}

func (r *remoteSide) referrers(ctx context.Context, repo, dgst string) ([]v1.Descriptor, error) {
	return r.c.Referrers(ctx, repo, dgst)
}

func (r *remoteSide) openBlob(ctx context.Context, repo, dgst string) (io.ReadCloser, int64, error) {
	return r.c.Blob(ctx, repo, dgst)
}

func (r *remoteSide) haveBlob(ctx context.Context, repo, dgst string) (bool, error) {
	return r.c.BlobExists(ctx, repo, dgst)
}

func (r *remoteSide) putBlob(ctx context.Context, repo string, b endpoint.Blob, mountFrom string, open func() (io.ReadCloser, error)) (bool, error) {
	return r.c.Upload(ctx, repo, b, mountFrom, open)
}

func (r *remoteSide) putManifest(ctx context.Context, repo string, tags []string, body []byte, desc v1.Descriptor) error {
	if len(tags) == 0 {
		return r.c.PutManifest(ctx, repo, desc.Digest.String(), body, string(desc.MediaType))
	}
	for _, t := range tags {
		if err := r.c.PutManifest(ctx, repo, t, body, string(desc.MediaType)); err != nil {
			return err
		}
	}
	return nil
}

func (r *remoteSide) delete(ctx context.Context, repo, ref string) error {
	return r.c.Delete(ctx, repo, ref)
}

func (r *remoteSide) ensureNamespace(ctx context.Context, repo string) error {
	ns, _, ok := strings.Cut(repo, "/")
	if !ok {
		return nil
	}
	return r.c.EnsureNamespace(ctx, ns)
}
