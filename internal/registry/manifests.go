package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/verify"
)

// isDigestRef tells a digest reference from a tag: tags cannot hold ':'.
func isDigestRef(ref string) bool { return strings.Contains(ref, ":") }

// lookupManifest resolves a tag or a digest of the route's repository.
func (r *Registry) lookupManifest(c *call) (meta.Manifest, error) {
	ctx := c.req.Context()
	ref := c.rt.ref
	if isDigestRef(ref) {
		dgst, err := parseDigest(ref)
		if err != nil {
			return meta.Manifest{}, err
		}
		return r.manifests.Manifest(ctx, c.rt.repo, dgst.String())
	}
	if err := CheckTag(ref); err != nil {
		return meta.Manifest{}, errdefs.NotFound(fmt.Errorf("manifest %s: %w", ref, err))
	}
	return r.manifests.Tag(ctx, c.rt.repo, ref)
}

// getManifest serves GET and HEAD. The stored bytes are served whatever the
// Accept header says (or without one): the registry never converts.
func (r *Registry) getManifest(c *call) error {
	up, err := r.upstream(c)
	if err != nil {
		return err
	}
	var m meta.Manifest
	var pre *pullCheck
	if up != nil {
		var body []byte
		if m, body, pre, err = r.proxyManifest(c, up); err != nil {
			return err
		}
		if body != nil {
			if r.gate != nil && c.req.Method != http.MethodHead {
				if err := r.gate.CheckPull(c.req.Context(), c.who, c.rt.repo, m.Digest, m.MediaType); err != nil {
					return err
				}
			}
			return r.serveFetchedManifest(c, m, body)
		}
	} else if m, err = r.lookupManifest(c); err != nil {
		return err
	}
	dgst, err := verify.ParseDigest(m.Digest)
	if err != nil {
		return err
	}
	// The pull policies (vulnerability prevention, ...) answer HEAD as
	// they answer GET: a client that learns a digest by HEAD must not
	// take it for one it may pull.
	if r.gate != nil {
		var err error
		if pre != nil && pre.digest == m.Digest {
			err = pre.err // asked during the freshness check
		} else {
			err = r.gate.CheckPull(c.req.Context(), c.who, c.rt.repo, m.Digest, m.MediaType)
		}
		if err != nil {
			if errdefs.IsUnauthorized(err) {
				// A policy that serves more to some: let a client that
				// came without credentials present them.
				r.challenge(c.w, c.req, []Scope{{Type: "repository", Name: c.rt.repo, Actions: []string{"pull"}}}, "")
			}
			return err
		}
	}
	h := c.w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Content-Length", strconv.FormatInt(m.Size, 10))
	h.Set("Docker-Content-Digest", m.Digest)
	h.Set("ETag", `"`+m.Digest+`"`)
	if c.req.Method == http.MethodHead {
		c.w.WriteHeader(http.StatusOK)
		return nil
	}
	rc, err := r.driver.Reader(c.req.Context(), blobPath(dgst), 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	c.w.WriteHeader(http.StatusOK)
	if err := r.copyOut(c, rc, m.Size); err != nil {
		return clientGone(err)
	}
	var tags []string
	if !isDigestRef(c.rt.ref) {
		tags = []string{c.rt.ref}
	}
	r.events.Pulled(c.req.Context(), Event{Repository: c.rt.repo, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, Tags: tags, Subject: m.Subject, User: c.who.Name})
	return nil
}

func (r *Registry) putManifest(c *call) error {
	ctx := c.req.Context()
	limit := r.limits.MaxManifestSize
	if c.req.ContentLength > limit {
		return withCode(http.StatusRequestEntityTooLarge, codeManifestInvalid,
			fmt.Errorf("manifest of %d bytes exceeds the limit of %d bytes", c.req.ContentLength, limit))
	}
	body, err := io.ReadAll(io.LimitReader(c.req.Body, limit+1))
	if err != nil {
		if be := bodyFailure(err); be != nil {
			return be
		}
		return err
	}
	if int64(len(body)) > limit {
		return withCode(http.StatusRequestEntityTooLarge, codeManifestInvalid,
			fmt.Errorf("manifest exceeds the limit of %d bytes", limit))
	}
	var dgst v1.Hash
	var tags []string
	if ref := c.rt.ref; isDigestRef(ref) {
		if dgst, err = parseDigest(ref); err != nil {
			return err
		}
		got, err := verify.FromBytes(body, dgst.Algorithm)
		if err != nil {
			return withCode(http.StatusBadRequest, codeDigestInvalid, err)
		}
		if got != dgst {
			return withCode(http.StatusBadRequest, codeDigestInvalid, fmt.Errorf("manifest content has digest %s, not %s", got, dgst))
		}
	} else {
		if err := CheckTag(ref); err != nil {
			return withCode(http.StatusBadRequest, codeManifestInvalid, err)
		}
		tags = append(tags, ref)
		dgst, _ = verify.FromBytes(body, "sha256")
	}
	var paramTags []string
	for _, t := range c.req.URL.Query()["tag"] {
		if err := CheckTag(t); err != nil {
			return withCode(http.StatusBadRequest, codeManifestInvalid, err)
		}
		paramTags = append(paramTags, t)
	}
	tags = append(tags, paramTags...)
	slices.Sort(tags)
	tags = slices.Compact(tags)

	pm, err := parseManifest(body, c.req.Header.Get("Content-Type"))
	if err != nil {
		return withCode(http.StatusBadRequest, codeManifestInvalid, err)
	}
	m := meta.Manifest{
		Digest:       dgst.String(),
		MediaType:    pm.MediaType,
		Size:         int64(len(body)),
		ArtifactType: pm.ArtifactType,
		Subject:      pm.Subject,
		Annotations:  pm.Annotations,
		Blobs:        pm.Blobs,
		Manifests:    pm.Manifests,
		Sizes:        pm.Sizes,
		Content:      body,
	}
	if r.gate != nil {
		pc := PushCheck{Repository: c.rt.repo, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, Tags: tags, Subject: m.Subject}
		if err := r.gate.CheckPush(ctx, c.who, pc); err != nil {
			return err
		}
	}
	if err := r.storeManifest(ctx, c.rt.repo, dgst, body, m, tags); err != nil {
		return sizeMismatch(err, pm)
	}
	h := c.w.Header()
	h.Set("Location", "/v2/"+c.rt.repo+"/manifests/"+dgst.String())
	h.Set("Docker-Content-Digest", dgst.String())
	h.Set("Content-Length", "0")
	if pm.Subject != "" {
		h.Set("OCI-Subject", pm.Subject)
	}
	if len(paramTags) > 0 {
		h.Set("OCI-Tag", strings.Join(paramTags, ", "))
	}
	c.w.WriteHeader(http.StatusCreated)
	if r.metrics != nil {
		r.metrics.manifestsPushed.Inc()
	}
	r.events.Pushed(ctx, Event{
		Repository: c.rt.repo,
		Digest:     m.Digest,
		MediaType:  m.MediaType,
		Size:       m.Size,
		Tags:       tags,
		Subject:    m.Subject,
		User:       c.who.Name,
	})
	return nil
}

// sizeMismatch answers a descriptor whose stated size is not the stored
// one (clients allocate and verify by the stated size) with
// MANIFEST_INVALID, naming the descriptor; other errors pass.
func sizeMismatch(err error, pm parsedManifest) error {
	var se *meta.SizeError
	if !errors.As(err, &se) {
		return err
	}
	what := "blob"
	if se.Manifest {
		what = "manifest"
	}
	return withCode(http.StatusBadRequest, codeManifestInvalid, fmt.Errorf("manifest %s: %s states size %d, but the stored %s has %d bytes",
		pm.Where[se.Digest], se.Digest, se.Stated, what, se.Stored))
}

// storeManifest writes a manifest's content and records it. The content's
// claim protects it from the collector until the manifest, recorded in the
// same transaction that makes the content present, does.
func (r *Registry) storeManifest(ctx context.Context, repo string, dgst v1.Hash, body []byte, m meta.Manifest, tags []string) error {
	w, err := r.driver.Writer(ctx, blobPath(dgst))
	if err != nil {
		return storageWriteError(dgst, err)
	}
	committed := false
	defer func() {
		if !committed {
			w.Cancel(context.WithoutCancel(ctx))
		}
	}()
	if _, err := w.Write(body); err != nil {
		return storageWriteError(dgst, err)
	}
	for attempt := 0; ; attempt++ {
		present, err := r.claim(ctx, dgst)
		if err != nil {
			return err
		}
		if !present && !committed {
			committed = true
			if err := w.Commit(ctx); err != nil {
				return storageWriteError(dgst, err)
			}
		}
		err = r.manifests.PutManifest(ctx, repo, m, tags)
		if err == nil || committed || attempt == 2 || !errors.Is(err, errdefs.ErrUnavailable) {
			return err
		}
		// The present copy was collected meanwhile; write ours.
	}
}

// deleteManifest deletes a manifest (by digest) or a tag (by tag).
func (r *Registry) deleteManifest(c *call) error {
	ctx := c.req.Context()
	ref := c.rt.ref
	var ev Event
	if isDigestRef(ref) {
		dgst, err := parseDigest(ref)
		if err != nil {
			return err
		}
		if r.gate != nil {
			if err := r.gate.CheckDelete(ctx, c.who, c.rt.repo, dgst.String(), ""); err != nil {
				return err
			}
		}
		if err := r.manifests.DeleteManifest(ctx, c.rt.repo, dgst.String()); err != nil {
			return err
		}
		ev = Event{Repository: c.rt.repo, Digest: dgst.String(), User: c.who.Name}
	} else {
		if err := CheckTag(ref); err != nil {
			return errdefs.NotFound(fmt.Errorf("tag %s: %w", ref, err))
		}
		m, err := r.manifests.Tag(ctx, c.rt.repo, ref)
		if err != nil {
			return err
		}
		if r.gate != nil {
			if err := r.gate.CheckDelete(ctx, c.who, c.rt.repo, m.Digest, ref); err != nil {
				return err
			}
		}
		if err := r.manifests.DeleteTag(ctx, c.rt.repo, ref); err != nil {
			return err
		}
		ev = Event{Repository: c.rt.repo, Digest: m.Digest, MediaType: m.MediaType, Tags: []string{ref}, User: c.who.Name}
	}
	c.w.Header().Set("Content-Length", "0")
	c.w.WriteHeader(http.StatusAccepted)
	r.events.Deleted(ctx, ev)
	return nil
}

// page reads the n and last parameters of a listing.
func (r *Registry) page(c *call) (n int, last string, err error) {
	q := c.req.URL.Query()
	last = q.Get("last")
	n = r.limits.PageSize
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, "", withCode(http.StatusBadRequest, codeUnsupported, fmt.Errorf("n=%q: want a non-negative integer", s))
		}
		n = min(v, r.limits.PageSize)
	}
	return n, last, nil
}

// linkNext sets the Link header to the next page of a listing.
func linkNext(c *call, path string, last string, n int) {
	q := url.Values{}
	q.Set("n", strconv.Itoa(n))
	q.Set("last", last)
	c.w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, q.Encode()))
}

func (r *Registry) tags(c *call) error {
	n, last, err := r.page(c)
	if err != nil {
		return err
	}
	var tags []string
	if n > 0 {
		tags, err = r.manifests.Tags(c.req.Context(), c.rt.repo, last, n+1)
	} else {
		tags, err = r.manifests.Tags(c.req.Context(), c.rt.repo, last, 0)
	}
	if err != nil {
		return err
	}
	if len(tags) > n {
		tags = tags[:n]
		linkNext(c, "/v2/"+c.rt.repo+"/tags/list", tags[n-1], n)
	}
	return writeJSON(c, http.StatusOK, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{c.rt.repo, tags})
}

func (r *Registry) catalog(c *call) error {
	n, last, err := r.page(c)
	if err != nil {
		return err
	}
	out := []string{}
	if n > 0 {
		repos, err := r.manifests.Repositories(c.req.Context(), last, n+1)
		if err != nil {
			return err
		}
		more := len(repos) > n
		if more {
			repos = repos[:n]
		}
		for _, repo := range repos {
			if r.readable(c.req, c.who, repo) {
				out = append(out, repo)
			}
		}
		if more {
			linkNext(c, "/v2/_catalog", repos[n-1], n)
		}
	}
	return writeJSON(c, http.StatusOK, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{out})
}

func (r *Registry) referrers(c *call) error {
	dgst, err := parseDigest(c.rt.ref)
	if err != nil {
		return err
	}
	at := c.req.URL.Query().Get("artifactType")
	list, err := r.manifests.Referrers(c.req.Context(), c.rt.repo, dgst.String(), at)
	if err != nil {
		return err
	}
	if at != "" {
		c.w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(c, http.StatusOK, MediaTypeOCIIndex, struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     []meta.Descriptor `json:"manifests"`
	}{2, MediaTypeOCIIndex, list})
}
