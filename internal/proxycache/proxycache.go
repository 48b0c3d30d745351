// Package proxycache makes proxy-cache projects work: a project created
// with a registry_id is a pull-through cache of that registry endpoint.
// The registry (package registry, proxy.go) does the caching: it asks
// Upstream which repositories are caches and reads the upstream through
// the Remote returned; this package answers from the project's settings
// and the endpoint (package replication keeps endpoints and their sealed
// credentials), and queues the completion of what the registry served
// from upstream (a PROXY_CACHE job, run by the wiring through the
// registry's CompleteCache).
//
// A repository PROJECT/REST of a proxy-cache project is REST upstream;
// for a Docker Hub endpoint a one-component REST is library/REST
// (PROJECT/nginx pulls library/nginx), as Docker's clients mean it.
//
// The freshness check (a HEAD of the tag upstream) answers within
// Options.FreshnessTimeout or not at all, and is not retried: the cached
// copy is served instead, and the registry's log says so. Fetches from
// the upstream are read at the project's proxy_speed_kb.
package proxycache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/ctxio"
	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/outbound"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/replication"
)

// Kind is the job that completes a manifest served from upstream.
const Kind = "PROXY_CACHE"

// Args are a PROXY_CACHE job's arguments.
type Args struct {
	Repository string   `json:"repository"`
	Digest     string   `json:"digest"`
	Tags       []string `json:"tags,omitempty"`
}

// Options configure the service.
type Options struct {
	Log      *slog.Logger
	Outbound *outbound.Policy
	// FreshnessTimeout bounds the freshness check; default 3s.
	FreshnessTimeout time.Duration
	// Timeout bounds the wait for the upstream's answer to a fetch;
	// default 30s.
	Timeout time.Duration
	// CompleteAfter delays the completion of a manifest served from
	// upstream, so that the pulling client's own blob requests fill the
	// cache first; default 2s.
	CompleteAfter time.Duration
	UserAgent     string
}

// Service answers the registry's questions about proxy caches.
type Service struct {
	projects *project.Store
	regs     *replication.Service
	jobs     *jobs.Queue
	opt      Options

	mu       sync.Mutex
	settings map[string]cached[project.Proxy] // by project name
	clients  map[int64]cached[*endpoint.Client]
}

type cached[T any] struct {
	v  T
	at time.Time
	rt replication.Registry // without its secret
	// secret is the hash of the credential's secret the client was made
	// with: a client is kept, with its tokens and connections, while the
	// endpoint and its credentials are unchanged.
	secret [sha256.Size]byte
}

// ttl is how long a project's proxy settings and an endpoint's client are
// reused (a registry's changed credentials take effect within it).
const ttl = 5 * time.Second

// New returns the service.
func New(projects *project.Store, regs *replication.Service, q *jobs.Queue, o Options) *Service {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.FreshnessTimeout <= 0 {
		o.FreshnessTimeout = 3 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.CompleteAfter <= 0 {
		o.CompleteAfter = 2 * time.Second
	}
	return &Service{projects: projects, regs: regs, jobs: q, opt: o, settings: map[string]cached[project.Proxy]{}, clients: map[int64]cached[*endpoint.Client]{}}
}

// Upstream returns the upstream of repo, or nil when repo is not in a
// proxy-cache project.
func (s *Service) Upstream(ctx context.Context, repo string) (*Remote, error) {
	name, rest, ok := strings.Cut(repo, "/")
	if !ok || rest == "" {
		return nil, nil
	}
	px, err := s.proxyOf(ctx, name)
	if err != nil || px.RegistryID == 0 {
		return nil, err
	}
	c, reg, err := s.client(ctx, px.RegistryID)
	if err != nil {
		return nil, fmt.Errorf("the upstream of proxy cache project %s: %w", name, err)
	}
	return &Remote{s: s, c: c, name: reg.Name, repo: repo, upstream: upstreamRepository(reg.Type, rest), speed: px.SpeedKB * 1024}, nil
}

// upstreamRepository is the upstream's name of a proxy-cache project's
// repository rest: Docker Hub's official images live under library/.
func upstreamRepository(typ, rest string) string {
	if typ == endpoint.TypeDockerHub && !strings.Contains(rest, "/") {
		return "library/" + rest
	}
	return rest
}

func (s *Service) proxyOf(ctx context.Context, name string) (project.Proxy, error) {
	s.mu.Lock()
	e, ok := s.settings[name]
	s.mu.Unlock()
	if ok && time.Since(e.at) < ttl {
		return e.v, nil
	}
	px, err := s.projects.ProxyOf(ctx, name)
	if err != nil {
		return px, err
	}
	s.mu.Lock()
	if len(s.settings) > 10000 {
		clear(s.settings)
	}
	s.settings[name] = cached[project.Proxy]{v: px, at: time.Now()}
	s.mu.Unlock()
	return px, nil
}

func (s *Service) client(ctx context.Context, id int64) (*endpoint.Client, replication.Registry, error) {
	s.mu.Lock()
	e, ok := s.clients[id]
	s.mu.Unlock()
	if ok && time.Since(e.at) < ttl {
		return e.v, e.rt, nil
	}
	r, err := s.regs.Endpoint(ctx, id)
	if err != nil {
		return nil, replication.Registry{}, err
	}
	secret := sha256.Sum256([]byte(r.Credential.AccessSecret))
	kept := r
	kept.Credential.AccessSecret = ""
	var c *endpoint.Client
	if ok && e.rt.Updated.Equal(r.Updated) && e.rt.Endpoint == kept.Endpoint && e.secret == secret {
		c = e.v // unchanged: keep its tokens and connections
	} else if c, err = endpoint.New(r.Endpoint, endpoint.Options{Outbound: s.opt.Outbound, Timeout: s.opt.Timeout, UserAgent: s.opt.UserAgent, NoRetry: true}); err != nil {
		return nil, replication.Registry{}, err
	}
	s.mu.Lock()
	s.clients[id] = cached[*endpoint.Client]{v: c, at: time.Now(), rt: kept, secret: secret}
	s.mu.Unlock()
	return c, kept, nil
}

// Remote is one cache repository's upstream.
type Remote struct {
	s        *Service
	c        *endpoint.Client
	name     string
	repo     string // the repository in lading
	upstream string // its name upstream
	speed    int64  // bytes per second, 0: unlimited
}

// String names the upstream for logs.
func (r *Remote) String() string { return fmt.Sprintf("%s (%s) %s", r.name, r.c, r.upstream) }

// UpstreamRepository is the repository's name upstream.
func (r *Remote) UpstreamRepository() string { return r.upstream }

// Head is the freshness check: bounded, never retried.
func (r *Remote) Head(ctx context.Context, ref string) (v1.Descriptor, error) {
	ctx, cancel := context.WithTimeout(ctx, r.s.opt.FreshnessTimeout)
	defer cancel()
	d, err := r.c.Head(ctx, r.upstream, ref)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		err = errdefs.Unavailable(fmt.Errorf("no answer within %s: %w", r.s.opt.FreshnessTimeout, err))
	}
	return d, err
}

// Manifest fetches a manifest, verified.
func (r *Remote) Manifest(ctx context.Context, ref string, max int64) ([]byte, v1.Descriptor, error) {
	return r.c.Manifest(ctx, r.upstream, ref, max)
}

// Blob opens a blob, read at the project's speed.
func (r *Remote) Blob(ctx context.Context, dgst v1.Hash) (io.ReadCloser, int64, error) {
	rc, n, err := r.c.Blob(ctx, r.upstream, dgst.String())
	if err != nil || r.speed <= 0 {
		return rc, n, err
	}
	return ctxio.Limit(ctx, rc, r.speed), n, nil
}

// Cache queues the completion of a manifest served from upstream.
func (r *Remote) Cache(ctx context.Context, dgst string, tags []string) error {
	tags = slices.Compact(slices.Sorted(slices.Values(tags)))
	key := "proxy-cache:" + r.repo + "@" + dgst + ":" + strings.Join(tags, ",")
	_, _, err := r.s.jobs.Enqueue(context.WithoutCancel(ctx), jobs.Request{Kind: Kind, Args: Args{Repository: r.repo, Digest: dgst, Tags: tags},
		Key: key, ReleaseKey: true, RunAt: time.Now().Add(r.s.opt.CompleteAfter)})
	return err
}

// Definition is the completion job, run by complete (the registry's
// CompleteCache in the caller's name), for registration at wiring.
func Definition(complete func(ctx context.Context, j *jobs.Job, a Args) error) jobs.Definition {
	return jobs.Definition{Kind: Kind, Run: jobs.Func(complete), Concurrency: 8, MaxAttempts: 5, Timeout: 6 * time.Hour}
}
