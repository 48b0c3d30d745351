package scanning

import (
	"context"
	"io"

	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/registry/server"
)

// Attach builds registry-side scanning over an opened lading serve (its
// database, services, registry content and storage) as its configuration
// says, and plugs it in (server.SetScanning). Call it before srv.Serve;
// close the service after srv.Close.
func Attach(ctx context.Context, srv *server.Server, o Options) (*Service, error) {
	c := srv.Core
	cfg := srv.Config.Scan
	if o.Log == nil {
		o.Log = c.Log()
	}
	if o.DBFile == "" {
		o.DBFile = cfg.DB
	}
	if o.Source.Repository == "" && len(o.Source.Feeds) == 0 {
		src := cfg.DBSource
		o.Source = Source{Repository: src.Repository, Feeds: src.Feeds, Schedule: src.Schedule, Offline: src.Offline, Insecure: src.Insecure}
	}
	o.MaxLayerSize = orInt(o.MaxLayerSize, cfg.MaxLayerSize)
	o.Parallel = orInt(o.Parallel, cfg.Parallel)
	o.Concurrency = orInt(o.Concurrency, cfg.Concurrency)
	o.Timeout = orInt(o.Timeout, cfg.Timeout)
	o.CacheSize = orInt(o.CacheSize, cfg.CacheSize)
	if o.AdapterAuth == "" {
		o.AdapterAuth, o.AdapterCredential = cfg.Adapter.Auth, cfg.Adapter.Credential
	}
	if o.RegistryURL == "" {
		o.RegistryURL = srv.ExternalURL()
	}
	d := Deps{
		DB: srv.DB, Access: c.Access, Projects: c.Projects, Artifacts: c.Artifacts, Identity: c.Identity, Audit: c.Audit,
		Jobs: c.Jobs, Tasks: c.Tasks, Webhooks: c.Webhooks, Tokens: c.Tokens,
		Content: registryContent{reg: srv.Registry, meta: srv.Meta}, Storage: srv.Driver, Outbound: srv.Outbound,
	}
	s, err := New(ctx, d, o)
	if err != nil {
		return nil, err
	}
	srv.SetScanning(s)
	return s, nil
}

func orInt[T ~int | ~int64](v, def T) T {
	if v != 0 {
		return v
	}
	return def
}

// registryContent is Content over the registry's in-process access.
type registryContent struct {
	reg  *registry.Registry
	meta *meta.SQL
}

func (c registryContent) Manifest(ctx context.Context, repo, ref string) (Manifest, error) {
	m, body, err := c.reg.Manifest(ctx, repo, ref)
	if err != nil {
		return Manifest{}, err
	}
	return Manifest{Digest: m.Digest, MediaType: m.MediaType, Body: body}, nil
}

func (c registryContent) OpenBlob(ctx context.Context, repo, dgst string) (io.ReadCloser, int64, error) {
	return c.reg.OpenBlob(ctx, repo, dgst)
}

func (c registryContent) PushBlob(ctx context.Context, repo, dgst string, size int64, r io.Reader) error {
	return c.reg.PushBlob(ctx, repo, dgst, size, r)
}

func (c registryContent) PushManifest(ctx context.Context, repo, mediaType string, body []byte, user string) (string, error) {
	return c.reg.PushManifest(ctx, repo, mediaType, body, nil, user)
}

func (c registryContent) DeleteManifest(ctx context.Context, repo, dgst string) error {
	return c.meta.DeleteManifest(ctx, repo, dgst)
}
