package trust

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Remote is a repository in a registry, as a Source and a Sink. Reads go
// through go-containerregistry's authenticating transport with bounded
// bodies; writes through its remote package, which keeps the referrers
// tag fallback up to date on registries without the referrers API.
type Remote struct {
	repo     name.Repository
	keychain authn.Keychain
	rt       http.RoundTripper

	mu     sync.Mutex
	client *http.Client
}

// NewRemote returns repo as a Source and Sink, with credentials from
// keychain (nil: anonymous) over rt (nil: http.DefaultTransport).
func NewRemote(repo name.Repository, keychain authn.Keychain, rt http.RoundTripper) *Remote {
	if keychain == nil {
		keychain = authn.NewMultiKeychain()
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &Remote{repo: repo, keychain: keychain, rt: rt}
}

func (r *Remote) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(r.keychain), remote.WithTransport(r.rt), remote.WithUserAgent("lading")}
}

// httpClient returns a client authorized to pull from the repository.
func (r *Remote) httpClient(ctx context.Context) (*http.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client != nil {
		return r.client, nil
	}
	auth, err := authn.Resolve(ctx, r.keychain, r.repo)
	if err != nil {
		return nil, err
	}
	tr, err := transport.NewWithContext(ctx, r.repo.Registry, auth, r.rt, []string{r.repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, remoteError(r.repo.String(), err)
	}
	r.client = &http.Client{Transport: tr}
	return r.client, nil
}

func (r *Remote) url(kind, ref string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", r.repo.Registry.Scheme(), r.repo.RegistryStr(), r.repo.RepositoryStr(), kind, ref)
}

// get sends a GET and returns the response when its status is one of ok.
func (r *Remote) get(ctx context.Context, u, accept string, ok ...int) (*http.Response, error) {
	c, err := r.httpClient(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, errdefs.Unavailable(err)
	}
	if err := transport.CheckError(resp, ok...); err != nil {
		resp.Body.Close()
		return nil, remoteError(u, err)
	}
	return resp, nil
}

var manifestAccept = strings.Join([]string{
	string(types.OCIManifestSchema1), string(types.OCIImageIndex),
	string(types.DockerManifestSchema2), string(types.DockerManifestList),
}, ",")

// Referrers lists the referrers of digest through the referrers API, or
// the referrers tag fallback on registries without it.
func (r *Remote) Referrers(ctx context.Context, digest v1.Hash) ([]v1.Descriptor, error) {
	resp, err := r.get(ctx, r.url("referrers", digest.String()), string(types.OCIImageIndex),
		http.StatusOK, http.StatusNotFound, http.StatusBadRequest, http.StatusNotAcceptable, http.StatusMethodNotAllowed)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), string(types.OCIImageIndex)) {
		defer resp.Body.Close()
		return readIndex(resp.Body, "referrers of "+digest.String())
	}
	resp.Body.Close()
	fallback := digest.Algorithm + "-" + digest.Hex
	resp, err = r.get(ctx, r.url("manifests", fallback), string(types.OCIImageIndex), http.StatusOK, http.StatusNotFound)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	return readIndex(resp.Body, "referrers tag "+fallback)
}

// readIndex reads an image index of at most MaxManifestSize bytes.
func readIndex(body io.Reader, what string) ([]v1.Descriptor, error) {
	b, err := io.ReadAll(io.LimitReader(body, MaxManifestSize+1))
	if err != nil {
		return nil, errdefs.Unavailable(fmt.Errorf("%s: %w", what, err))
	}
	if len(b) > MaxManifestSize {
		return nil, errdefs.TooLarge(fmt.Errorf("%s: over %d bytes", what, MaxManifestSize))
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: %w", what, err))
	}
	return idx.Manifests, nil
}

// Resolve returns the descriptor tag points at (a HEAD request, or a
// bounded GET when the registry does not say the digest).
func (r *Remote) Resolve(ctx context.Context, tag string) (v1.Descriptor, error) {
	c, err := r.httpClient(ctx)
	if err != nil {
		return v1.Descriptor{}, err
	}
	u := r.url("manifests", tag)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return v1.Descriptor{}, err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := c.Do(req)
	if err != nil {
		return v1.Descriptor{}, errdefs.Unavailable(err)
	}
	resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return v1.Descriptor{}, remoteError(u, err)
	}
	d := v1.Descriptor{MediaType: types.MediaType(resp.Header.Get("Content-Type")), Size: resp.ContentLength}
	if h, err := v1.NewHash(resp.Header.Get("Docker-Content-Digest")); err == nil {
		d.Digest = h
		return d, nil
	}
	resp, err = r.get(ctx, u, manifestAccept, http.StatusOK)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return v1.Descriptor{}, errdefs.Unavailable(err)
	}
	if len(b) > MaxManifestSize {
		return v1.Descriptor{}, errdefs.TooLarge(fmt.Errorf("%s: over %d bytes", u, MaxManifestSize))
	}
	d.Digest, d.Size, err = v1.SHA256(bytes.NewReader(b))
	return d, err
}

// Fetch opens a manifest (by its media type) or a blob.
func (r *Remote) Fetch(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	kind, accept := "blobs", ""
	if isManifestType(d.MediaType) {
		kind, accept = "manifests", manifestAccept
	}
	resp, err := r.get(ctx, r.url(kind, d.Digest.String()), accept, http.StatusOK)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func isManifestType(mt types.MediaType) bool {
	switch mt {
	case types.OCIManifestSchema1, types.OCIImageIndex, types.DockerManifestSchema2, types.DockerManifestList, "":
		return true
	}
	return false
}

// PutBlob uploads a blob (skipped when the registry has it).
func (r *Remote) PutBlob(ctx context.Context, d v1.Descriptor, b []byte) error {
	if err := remote.WriteLayer(r.repo, static.NewLayer(b, d.MediaType), r.remoteOptions(ctx)...); err != nil {
		return remoteError(r.repo.String(), err)
	}
	return nil
}

// PutManifest uploads a manifest, by tag or by digest.
func (r *Remote) PutManifest(ctx context.Context, d v1.Descriptor, raw []byte, tag string) error {
	var ref name.Reference = r.repo.Digest(d.Digest.String())
	if tag != "" {
		ref = r.repo.Tag(tag)
	}
	if err := remote.Put(ref, rawManifest{raw: raw, mt: d.MediaType}, r.remoteOptions(ctx)...); err != nil {
		return remoteError(ref.String(), err)
	}
	return nil
}

type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// remoteError gives a registry failure its error class.
func remoteError(what string, err error) error {
	err = fmt.Errorf("%s: %w", what, err)
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return errdefs.NotFound(err)
		case http.StatusUnauthorized:
			return errdefs.Unauthorized(err)
		case http.StatusForbidden:
			return errdefs.Denied(err)
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode || d.Code == transport.BlobUnknownErrorCode {
				return errdefs.NotFound(err)
			}
		}
	}
	return err
}
