package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/verify"
)

// A pull-through cache (Harbor's proxy-cache project) is a set of
// repositories whose content comes from another registry, the upstream,
// the first time it is pulled. The registry asks its Upstreams which
// repositories are caches; for those:
//
//   - A manifest pulled by tag is checked for freshness first: a HEAD of
//     the tag upstream, sent while the local copy is looked up and the
//     pull policies are asked about it. When the upstream names the
//     digest the registry holds, the local copy is served. When the upstream cannot answer
//     (down, slower than its bound, 429), the local copy is served all the
//     same and the log says so; without a local copy the pull fails with
//     the upstream's answer. A manifest pulled by digest that is held is
//     served without asking (a digest names its content).
//   - A manifest the registry lacks is fetched (its size bounded, its
//     content verified against its digest), served, and queued
//     (Upstream.Cache) for completion: a job fetches the blobs the client
//     did not pull and stores the manifest through CompleteCache, which
//     takes the path of a client's push (the Gate's policy, the artifact
//     view, Events: scan on push and webhooks see cached artifacts like
//     any other).
//   - A blob the registry lacks is streamed to the client while it is
//     written to storage and verified; it becomes visible only if its
//     digest and size match. A client that goes away does not stop the
//     caching.
//   - Pushes into a cache are refused.

// Upstreams tell which repositories are pull-through caches.
type Upstreams interface {
	// Upstream returns the upstream of repo, or nil when repo is not a
	// cache. It is asked for every request on a repository: it must be
	// cheap.
	Upstream(ctx context.Context, repo string) (Upstream, error)
}

// Upstream is where a cache repository's content comes from. Errors are
// of errdefs classes: ErrNotFound when the upstream does not have it,
// ErrUnavailable when it cannot answer (down, slow, a server error),
// ErrThrottled for its 429, ErrCorrupt or ErrTooLarge for content that
// fails its checks.
type Upstream interface {
	// String names the upstream and its repository for logs.
	String() string
	// Head returns the descriptor of ref (a tag or a digest) upstream,
	// within the freshness check's time bound.
	Head(ctx context.Context, ref string) (v1.Descriptor, error)
	// Manifest fetches ref: at most max bytes, verified against the
	// digest it is asked by or the one the upstream states.
	Manifest(ctx context.Context, ref string, max int64) ([]byte, v1.Descriptor, error)
	// Blob opens the blob dgst upstream and returns its size (-1 when
	// unknown). The registry verifies what it reads.
	Blob(ctx context.Context, dgst v1.Hash) (io.ReadCloser, int64, error)
	// Cache queues the completion of a manifest served from upstream
	// (CompleteCache), with the tags it was pulled by.
	Cache(ctx context.Context, dgst string, tags []string) error
}

// WithUpstreams makes the repositories u names pull-through caches.
func WithUpstreams(u Upstreams) Option { return func(s *settings) { s.upstreams = u } }

// upstream returns the route's upstream, nil when it is not a cache.
func (r *Registry) upstream(c *call) (Upstream, error) {
	if r.upstreams == nil || c.rt.repo == "" {
		return nil, nil
	}
	return r.upstreams.Upstream(c.req.Context(), c.rt.repo)
}

// errProxyPush refuses content written into a cache by clients.
func errProxyPush(repo string) error {
	return errdefs.Denied(fmt.Errorf("%s is in a proxy cache project: its content comes from the upstream registry; pushes are refused", repo))
}

// pullCheck is the pull policies' answer for a digest, asked while the
// freshness check was in flight.
type pullCheck struct {
	digest string
	err    error
}

// proxyManifest resolves a manifest of a cache repository: the local copy
// when it is fresh or the upstream cannot say, else the upstream's
// (body set, not stored yet). The freshness check runs while the local
// copy is looked up and the pull policies are asked about it (their
// answer comes back when the local copy is served), so a fresh cached
// pull costs one upstream round trip beside that work, not after it.
func (r *Registry) proxyManifest(c *call, up Upstream) (meta.Manifest, []byte, *pullCheck, error) {
	ctx := c.req.Context()
	ref := c.rt.ref
	if isDigestRef(ref) {
		local, lerr := r.lookupManifest(c)
		if lerr == nil {
			return local, nil, nil, nil
		}
		if !errdefs.IsNotFound(lerr) {
			return meta.Manifest{}, nil, nil, lerr
		}
		m, body, err := r.fetchManifest(c, up, ref, nil)
		return m, body, nil, err
	}
	type answer struct {
		desc v1.Descriptor
		err  error
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	head := make(chan answer, 1)
	go func() {
		d, err := up.Head(hctx, ref)
		head <- answer{d, err}
	}()
	local, lerr := r.lookupManifest(c)
	if lerr != nil && !errdefs.IsNotFound(lerr) {
		return meta.Manifest{}, nil, nil, lerr
	}
	have := lerr == nil
	var pre *pullCheck
	if have && r.gate != nil {
		pre = &pullCheck{digest: local.Digest, err: r.gate.CheckPull(ctx, c.who, c.rt.repo, local.Digest, local.MediaType)}
	}
	h := <-head
	desc, herr := h.desc, h.err
	switch {
	case herr == nil && have && desc.Digest.String() == local.Digest:
		return local, nil, pre, nil
	case herr != nil && have && !errdefs.IsNotFound(herr):
		r.log.Warn("proxy cache: the upstream did not answer the freshness check; serving the cached copy",
			"repository", c.rt.repo, "reference", ref, "digest", local.Digest, "upstream", up.String(), "error", herr.Error())
		return local, nil, pre, nil
	case herr != nil:
		return meta.Manifest{}, nil, nil, upstreamError(up, herr)
	}
	// The tag is new or moved upstream.
	tags := []string{ref}
	if m, err := r.manifests.Manifest(ctx, c.rt.repo, desc.Digest.String()); err == nil {
		// Content already cached under another name: retag it.
		if err := up.Cache(ctx, m.Digest, tags); err != nil {
			r.log.Warn("proxy cache: queueing the retag failed", "repository", c.rt.repo, "tag", ref, "error", err)
		}
		return m, nil, nil, nil
	}
	m, body, err := r.fetchManifest(c, up, desc.Digest.String(), tags)
	if err != nil && have {
		r.log.Warn("proxy cache: fetching the new manifest from the upstream failed; serving the cached copy",
			"repository", c.rt.repo, "reference", ref, "digest", local.Digest, "upstream", up.String(), "error", err.Error())
		return local, nil, pre, nil
	}
	return m, body, nil, err
}

// fetchManifest fetches ref (a digest) from upstream, verified, and
// queues its completion with tags.
func (r *Registry) fetchManifest(c *call, up Upstream, ref string, tags []string) (meta.Manifest, []byte, error) {
	ctx := c.req.Context()
	want, err := parseDigest(ref)
	if err != nil {
		return meta.Manifest{}, nil, err
	}
	body, desc, err := up.Manifest(ctx, ref, r.limits.MaxManifestSize)
	if err != nil {
		return meta.Manifest{}, nil, upstreamError(up, err)
	}
	got, err := verify.FromBytes(body, want.Algorithm)
	if err != nil {
		return meta.Manifest{}, nil, err
	}
	if got != want {
		return meta.Manifest{}, nil, upstreamError(up, errdefs.Corrupt(fmt.Errorf("manifest %s has digest %s", want, got)))
	}
	pm, err := parseManifest(body, string(desc.MediaType))
	if err != nil {
		return meta.Manifest{}, nil, errdefs.Unavailable(fmt.Errorf("upstream %s: manifest %s: %v", up.String(), want, err))
	}
	if err := up.Cache(ctx, want.String(), tags); err != nil {
		r.log.Warn("proxy cache: queueing the completion failed", "repository", c.rt.repo, "digest", want.String(), "error", err)
	}
	return meta.Manifest{Digest: want.String(), MediaType: pm.MediaType, Size: int64(len(body)), Subject: pm.Subject}, body, nil
}

// upstreamError is an upstream's failure as the client sees it: the
// upstream's "not found" and "too many requests" pass; anything else
// (down, slow, content failing its checks) is the registry's
// unavailability, naming the upstream and what went wrong.
func upstreamError(up Upstream, err error) error {
	err = fmt.Errorf("upstream %s: %w", up.String(), err)
	if errdefs.IsNotFound(err) || errors.Is(err, errdefs.ErrThrottled) {
		return err
	}
	return errdefs.Unavailable(fmt.Errorf("%v", err))
}

// serveFetchedManifest answers a manifest fetched from upstream.
func (r *Registry) serveFetchedManifest(c *call, m meta.Manifest, body []byte) error {
	h := c.w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Content-Length", strconv.FormatInt(m.Size, 10))
	h.Set("Docker-Content-Digest", m.Digest)
	h.Set("ETag", `"`+m.Digest+`"`)
	c.w.WriteHeader(http.StatusOK)
	if c.req.Method != http.MethodHead {
		if _, err := c.w.Write(body); err != nil {
			return clientGone(err)
		}
	}
	return nil
}

// proxyBlob serves a blob of a cache repository the registry lacks: from
// another repository when present (linked), else streamed from upstream
// while it is stored. It reports false when the blob is local after all.
func (r *Registry) proxyBlob(c *call, up Upstream, dgst v1.Hash) (bool, error) {
	ctx := c.req.Context()
	if ok, err := r.HaveBlob(ctx, c.rt.repo, dgst.String()); err != nil || ok {
		return false, err
	}
	rc, size, err := up.Blob(ctx, dgst)
	if err != nil {
		return true, upstreamError(up, err)
	}
	defer rc.Close()
	if r.gate != nil {
		if err := r.gate.CheckBlob(ctx, c.who, c.rt.repo, size); err != nil {
			return true, err
		}
	}
	h := c.w.Header()
	h.Set("Docker-Content-Digest", dgst.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+dgst.String()+`"`)
	if size >= 0 {
		h.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	if c.req.Method == http.MethodHead {
		c.w.WriteHeader(http.StatusOK)
		return true, nil
	}
	c.w.WriteHeader(http.StatusOK)
	// The caching outlives the client: it goes on if the client leaves.
	sctx := context.WithoutCancel(ctx)
	tee := &clientTee{w: c.w}
	n, err := r.writeBlob(sctx, c.rt.repo, dgst, size, io.TeeReader(rc, tee))
	if err != nil {
		r.log.Warn("proxy cache: the blob from the upstream was not stored", "repository", c.rt.repo, "digest", dgst.String(),
			"upstream", up.String(), "bytes", n, "error", err.Error())
		return true, clientGone(err) // the status is out: cut the response short
	}
	if tee.err != nil {
		r.log.Info("proxy cache: the client left; the blob was cached all the same", "repository", c.rt.repo, "digest", dgst.String(), "bytes", n)
		return true, clientGone(tee.err)
	}
	if r.metrics != nil {
		r.metrics.bytesIn.Add(float64(n))
	}
	return true, nil
}

// clientTee writes to the client until the client fails, then swallows
// the rest: the upstream's bytes still go to storage.
type clientTee struct {
	w   io.Writer
	err error
}

func (t *clientTee) Write(p []byte) (int, error) {
	if t.err == nil {
		_, t.err = t.w.Write(p)
	}
	return len(p), nil
}

// CompleteCache stores a manifest of a cache repository that was served
// from upstream: it fetches what the registry lacks (child manifests, then
// blobs, each verified), then stores the manifest with tags through the
// path of a client's push (WriteManifest) in the name of who. A manifest
// already held is only retagged. Running it again does nothing more.
func (r *Registry) CompleteCache(ctx context.Context, who Subject, repo, dgst string, tags []string) error {
	if r.upstreams == nil {
		return nil
	}
	up, err := r.upstreams.Upstream(ctx, repo)
	if err != nil || up == nil {
		return err // no longer a cache: nothing to complete
	}
	return r.completeCache(ctx, who, up, repo, dgst, tags, 0)
}

func (r *Registry) completeCache(ctx context.Context, who Subject, up Upstream, repo, dgst string, tags []string, depth int) error {
	if depth > 8 {
		return errdefs.InvalidArgument(fmt.Errorf("manifest %s: indexes nested too deep", dgst))
	}
	want, err := verify.ParseDigest(dgst)
	if err != nil {
		return errdefs.InvalidArgument(err)
	}
	m, body, err := r.manifestOf(ctx, repo, want)
	if err == nil {
		if len(tags) == 0 {
			return nil
		}
		_, err = r.WriteManifest(ctx, who, repo, body, m.MediaType, tags)
		return err
	}
	if !errdefs.IsNotFound(err) {
		return err
	}
	body, desc, err := up.Manifest(ctx, dgst, r.limits.MaxManifestSize)
	if err != nil {
		return fmt.Errorf("upstream %s: manifest %s: %w", up.String(), dgst, err)
	}
	if got, _ := verify.FromBytes(body, want.Algorithm); got != want {
		return errdefs.Corrupt(fmt.Errorf("upstream %s: manifest %s has digest %s", up.String(), want, got))
	}
	pm, err := parseManifest(body, string(desc.MediaType))
	if err != nil {
		return fmt.Errorf("upstream %s: manifest %s: %w", up.String(), dgst, err)
	}
	for _, child := range pm.Manifests {
		if err := r.completeCache(ctx, who, up, repo, child, nil, depth+1); err != nil {
			return err
		}
	}
	for _, b := range pm.Blobs {
		size, ok := pm.Sizes[b]
		if !ok {
			size = -1
		}
		if err := r.cacheBlob(ctx, who, up, repo, b, size); err != nil {
			return err
		}
	}
	_, err = r.WriteManifest(ctx, who, repo, body, pm.MediaType, tags)
	return err
}

// cacheBlob makes a blob of upstream present in repo.
func (r *Registry) cacheBlob(ctx context.Context, who Subject, up Upstream, repo, dgst string, size int64) error {
	if ok, err := r.HaveBlob(ctx, repo, dgst); err != nil || ok {
		return err
	}
	h, err := verify.ParseDigest(dgst)
	if err != nil {
		return errdefs.InvalidArgument(err)
	}
	rc, n, err := up.Blob(ctx, h)
	if err != nil {
		return fmt.Errorf("upstream %s: blob %s: %w", up.String(), dgst, err)
	}
	defer rc.Close()
	if n >= 0 && size >= 0 && n != size {
		return errdefs.Corrupt(fmt.Errorf("upstream %s: blob %s has %d bytes, its manifest says %d", up.String(), dgst, n, size))
	}
	err = r.WriteBlob(ctx, who, repo, dgst, size, rc)
	if err != nil && errors.Is(err, errdefs.ErrCorrupt) {
		return fmt.Errorf("upstream %s: %w", up.String(), err)
	}
	return err
}
