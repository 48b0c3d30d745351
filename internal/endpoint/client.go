package endpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/outbound"
	"github.com/lading-dev/lading/internal/verify"
)

// Options configure a Client.
type Options struct {
	// Outbound decides which addresses may be reached; default: the
	// public internet only.
	Outbound *outbound.Policy
	// Timeout bounds the wait for each response's headers (and the
	// whole of small requests); default 30s.
	Timeout time.Duration
	// UserAgent of requests; default "lading".
	UserAgent string
	// NoRetry answers at the first failure instead of retrying
	// temporary ones (the proxy cache's freshness check: a cached copy
	// is better than a wait).
	NoRetry bool
}

// Client talks to one endpoint.
type Client struct {
	ep   Endpoint
	reg  name.Registry
	auth authn.Authenticator
	opt  Options
	// rt carries every request: outbound's transport, the URL's scheme
	// kept, retries of temporary failures.
	rt     http.RoundTripper
	puller *remote.Puller
	pusher *remote.Pusher

	mu     sync.Mutex
	scoped map[string]http.RoundTripper // authenticated transports by scope
}

// manifestTypes are the manifest media types clients accept.
var manifestTypes = []string{
	string(types.OCIManifestSchema1), string(types.OCIImageIndex),
	string(types.DockerManifestSchema2), string(types.DockerManifestList),
}

// New returns a client of e (checked with Endpoint.Check).
func New(e Endpoint, o Options) (*Client, error) {
	if o.Outbound == nil {
		o.Outbound = outbound.New()
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = "lading"
	}
	u, err := url.Parse(e.URL)
	if err != nil || u.Host == "" {
		return nil, errdefs.InvalidArgument(fmt.Errorf("registry URL %q is not a URL", e.URL))
	}
	var nopts []name.Option
	if u.Scheme == "http" {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, nopts...)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("registry URL %s: %v", u.Redacted(), err))
	}
	co := outbound.ClientOptions{Timeout: o.Timeout, InsecureSkipVerify: e.Insecure}
	if e.CACertificate != "" {
		if co.RootCAs, err = certPool(e.CACertificate); err != nil {
			return nil, err
		}
	}
	base := &schemeTransport{host: u.Host, scheme: u.Scheme, next: o.Outbound.Client(co).Transport}
	c := &Client{ep: e, reg: reg, opt: o, scoped: map[string]http.RoundTripper{}}
	switch e.Credential.Type {
	case CredentialBasic:
		c.auth = &authn.Basic{Username: e.Credential.AccessKey, Password: e.Credential.AccessSecret}
	case CredentialOAuth:
		c.auth = &authn.Bearer{Token: e.Credential.AccessSecret}
	default:
		c.auth = authn.Anonymous
	}
	backoff := remote.Backoff{Duration: time.Second, Factor: 3, Jitter: 0.1, Steps: 3}
	if o.NoRetry {
		backoff.Steps = 1
	}
	c.rt = transport.NewUserAgent(transport.NewRetry(base, transport.WithRetryBackoff(backoff),
		transport.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout)), o.UserAgent)
	ropts := []remote.Option{remote.WithTransport(c.rt), remote.WithAuth(c.auth), remote.WithUserAgent(o.UserAgent), remote.WithRetryBackoff(backoff), remote.WithJobs(1)}
	if c.puller, err = remote.NewPuller(ropts...); err != nil {
		return nil, err
	}
	if c.pusher, err = remote.NewPusher(ropts...); err != nil {
		return nil, err
	}
	return c, nil
}

// Endpoint returns the client's endpoint.
func (c *Client) Endpoint() Endpoint { return c.ep }

// String names the endpoint for logs (no credentials).
func (c *Client) String() string { return c.ep.Type + " " + c.ep.URL }

// schemeTransport keeps the endpoint URL's scheme for requests to its
// host: go-containerregistry guesses http for private and loopback
// addresses, which would send credentials meant for https in clear.
type schemeTransport struct {
	host, scheme string
	next         http.RoundTripper
}

func (t *schemeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == t.host && req.URL.Scheme != t.scheme {
		r := req.Clone(req.Context())
		r.URL.Scheme = t.scheme
		req = r
	}
	return t.next.RoundTrip(req)
}

func (c *Client) repo(repo string) (name.Repository, error) {
	r, err := name.NewRepository(c.reg.RegistryStr()+"/"+repo, c.nameOpts()...)
	if err != nil {
		return name.Repository{}, errdefs.InvalidArgument(fmt.Errorf("repository %.200q: %v", repo, err))
	}
	return r, nil
}

func (c *Client) nameOpts() []name.Option {
	if c.reg.Scheme() == "http" && strings.HasPrefix(c.ep.URL, "http://") {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (c *Client) ref(repo, ref string) (name.Reference, error) {
	r, err := c.repo(repo)
	if err != nil {
		return nil, err
	}
	if strings.Contains(ref, ":") {
		if _, err := verify.ParseDigest(ref); err != nil {
			return nil, errdefs.InvalidArgument(err)
		}
		return r.Digest(ref), nil
	}
	t, err := name.NewTag(r.String()+":"+ref, c.nameOpts()...)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("tag %.200q: %v", ref, err))
	}
	return t, nil
}

// scopedTransport returns a transport authenticated for scope (token
// flow or basic credentials, as the registry asks), cached.
func (c *Client) scopedTransport(ctx context.Context, scope string) (http.RoundTripper, error) {
	c.mu.Lock()
	t, ok := c.scoped[scope]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := transport.NewWithContext(ctx, c.reg, c.auth, c.rt, []string{scope})
	if err != nil {
		return nil, classify(err)
	}
	c.mu.Lock()
	c.scoped[scope] = t
	c.mu.Unlock()
	return t, nil
}

// do sends a request to the registry API with scope's authentication.
func (c *Client) do(ctx context.Context, scope, method, path string, hdr http.Header) (*http.Response, error) {
	t, err := c.scopedTransport(ctx, scope)
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: c.reg.Scheme(), Host: c.reg.RegistryStr(), Path: path}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	hc := &http.Client{Transport: t, CheckRedirect: func(_ *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("more than 5 redirects")
		}
		return nil
	}}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, classify(err)
	}
	return resp, nil
}

// Ping checks that the endpoint answers the distribution API and accepts
// the credentials.
func (c *Client) Ping(ctx context.Context) error {
	resp, err := c.do(ctx, c.reg.Scope(transport.PullScope), http.MethodGet, "/v2/", nil)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return statusError(resp, "GET /v2/")
	}
	if c.ep.Type == TypeHarbor {
		var info map[string]any
		if _, err := c.harborGet(ctx, "/systeminfo", nil, &info); err != nil {
			return fmt.Errorf("the Harbor API: %w", err)
		}
	}
	return nil
}

// Head returns the descriptor of ref (a tag or a digest) in repo.
func (c *Client) Head(ctx context.Context, repo, ref string) (v1.Descriptor, error) {
	r, err := c.ref(repo, ref)
	if err != nil {
		return v1.Descriptor{}, err
	}
	d, err := c.puller.Head(ctx, r)
	if err != nil {
		return v1.Descriptor{}, classify(err)
	}
	return *d, nil
}

// Manifest fetches ref of repo: at most max bytes, verified against the
// digest it is asked by, or against the Docker-Content-Digest the
// endpoint states for a tag.
func (c *Client) Manifest(ctx context.Context, repo, ref string, max int64) ([]byte, v1.Descriptor, error) {
	r, err := c.ref(repo, ref)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	hdr := http.Header{"Accept": {strings.Join(manifestTypes, ", ")}}
	resp, err := c.do(ctx, r.Context().Scope(transport.PullScope), http.MethodGet, "/v2/"+r.Context().RepositoryStr()+"/manifests/"+r.Identifier(), hdr)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, v1.Descriptor{}, statusError(resp, "manifest "+repo+":"+ref)
	}
	if resp.ContentLength > max {
		return nil, v1.Descriptor{}, errdefs.TooLarge(fmt.Errorf("manifest %s:%s is %d bytes, more than the limit of %d", repo, ref, resp.ContentLength, max))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, v1.Descriptor{}, classify(err)
	}
	if int64(len(body)) > max {
		return nil, v1.Descriptor{}, errdefs.TooLarge(fmt.Errorf("manifest %s:%s is more than the limit of %d bytes", repo, ref, max))
	}
	var want v1.Hash
	switch {
	case strings.Contains(ref, ":"):
		want, _ = verify.ParseDigest(ref)
	case resp.Header.Get("Docker-Content-Digest") != "":
		if want, err = verify.ParseDigest(resp.Header.Get("Docker-Content-Digest")); err != nil {
			return nil, v1.Descriptor{}, errdefs.Corrupt(fmt.Errorf("manifest %s:%s: the registry states a bad digest: %v", repo, ref, err))
		}
	default:
		want.Algorithm = "sha256"
	}
	got, err := verify.FromBytes(body, want.Algorithm)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	if want.Hex != "" && got != want {
		return nil, v1.Descriptor{}, errdefs.Corrupt(fmt.Errorf("manifest %s:%s: the content has digest %s, not %s as the registry says", repo, ref, got, want))
	}
	mt := resp.Header.Get("Content-Type")
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	return body, v1.Descriptor{MediaType: types.MediaType(mt), Digest: got, Size: int64(len(body))}, nil
}

// Blob opens the blob dgst of repo and returns its size (-1 unknown).
// The reader verifies the content's digest (and size, when stated) at
// EOF.
func (c *Client) Blob(ctx context.Context, repo, dgst string) (io.ReadCloser, int64, error) {
	h, err := verify.ParseDigest(dgst)
	if err != nil {
		return nil, 0, errdefs.InvalidArgument(err)
	}
	r, err := c.repo(repo)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.do(ctx, r.Scope(transport.PullScope), http.MethodGet, "/v2/"+r.RepositoryStr()+"/blobs/"+h.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		defer drain(resp)
		return nil, 0, statusError(resp, "blob "+repo+"@"+dgst)
	}
	size := resp.ContentLength
	vr, err := verify.NewReadCloser(resp.Body, h, size)
	if err != nil {
		resp.Body.Close()
		return nil, 0, err
	}
	return vr, size, nil
}

// BlobExists reports whether repo has the blob dgst.
func (c *Client) BlobExists(ctx context.Context, repo, dgst string) (bool, error) {
	r, err := c.repo(repo)
	if err != nil {
		return false, err
	}
	resp, err := c.do(ctx, r.Scope(transport.PullScope), http.MethodHead, "/v2/"+r.RepositoryStr()+"/blobs/"+dgst, nil)
	if err != nil {
		return false, err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, statusError(resp, "HEAD blob "+repo+"@"+dgst)
}

// Blob describes a blob to upload.
type Blob struct {
	Digest    string
	Size      int64
	MediaType string
}

// Upload sends a blob to repo unless it is there: a mount from
// mountFrom (a repository of the same endpoint that has it) when given
// and the endpoint allows it, else the content open returns. It reports
// whether content was sent.
func (c *Client) Upload(ctx context.Context, repo string, b Blob, mountFrom string, open func() (io.ReadCloser, error)) (bool, error) {
	r, err := c.repo(repo)
	if err != nil {
		return false, err
	}
	h, err := verify.ParseDigest(b.Digest)
	if err != nil {
		return false, errdefs.InvalidArgument(err)
	}
	l := &blobLayer{h: h, size: b.Size, mt: types.MediaType(b.MediaType), open: open}
	var layer v1.Layer = l
	if mountFrom != "" && mountFrom != repo {
		if from, err := c.repo(mountFrom); err == nil {
			layer = &remote.MountableLayer{Layer: l, Reference: from.Digest(h.String())}
		}
	}
	if err := c.pusher.Upload(ctx, r, layer); err != nil {
		return l.opened, classify(err)
	}
	return l.opened, nil
}

// blobLayer is a blob to upload, as go-containerregistry's v1.Layer.
type blobLayer struct {
	h      v1.Hash
	size   int64
	mt     types.MediaType
	open   func() (io.ReadCloser, error)
	opened bool
}

func (l *blobLayer) Digest() (v1.Hash, error) { return l.h, nil }
func (l *blobLayer) DiffID() (v1.Hash, error) {
	return v1.Hash{}, errors.New("a replicated blob's diff id is not known")
}
func (l *blobLayer) Size() (int64, error) { return l.size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) {
	if l.mt == "" {
		return types.OCILayer, nil
	}
	return l.mt, nil
}
func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	l.opened = true
	return l.open()
}
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("a replicated blob is sent as it is")
}

// rawManifest is a manifest's content, as go-containerregistry's Taggable.
type rawManifest struct {
	body []byte
	mt   types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.body, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// PutManifest stores a manifest's content in repo under ref (a tag, or
// its digest).
func (c *Client) PutManifest(ctx context.Context, repo, ref string, body []byte, mediaType string) error {
	r, err := c.ref(repo, ref)
	if err != nil {
		return err
	}
	return classify(c.pusher.Put(ctx, r, rawManifest{body: body, mt: types.MediaType(mediaType)}))
}

// Delete deletes ref (a digest: the manifest; a tag: the tag, where the
// endpoint allows it) from repo.
func (c *Client) Delete(ctx context.Context, repo, ref string) error {
	r, err := c.ref(repo, ref)
	if err != nil {
		return err
	}
	return classify(c.pusher.Delete(ctx, r))
}

// Tags lists the tags of repo.
func (c *Client) Tags(ctx context.Context, repo string) ([]string, error) {
	r, err := c.repo(repo)
	if err != nil {
		return nil, err
	}
	tags, err := c.puller.List(ctx, r)
	return tags, classify(err)
}

// Referrers lists the manifests whose subject is dgst in repo (the
// referrers API, or its fallback tag).
func (c *Client) Referrers(ctx context.Context, repo, dgst string) ([]v1.Descriptor, error) {
	r, err := c.repo(repo)
	if err != nil {
		return nil, err
	}
	idx, err := remote.Referrers(r.Digest(dgst), remote.Reuse(c.puller), remote.WithContext(ctx))
	if err != nil {
		err = classify(err)
		if errdefs.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, classify(err)
	}
	return im.Manifests, nil
}

// Repositories lists the endpoint's repositories: Harbor's API for type
// harbor, the catalog otherwise.
func (c *Client) Repositories(ctx context.Context) ([]string, error) {
	if c.ep.Type == TypeHarbor {
		return c.harborRepositories(ctx)
	}
	repos, err := c.puller.Catalog(ctx, c.reg)
	return repos, classify(err)
}

// Artifact is an artifact of a repository, as listings know it.
type Artifact struct {
	Digest    string
	MediaType string
	// Type is Harbor's artifact type (IMAGE, ...) when known.
	Type   string
	Tags   []string
	Labels []string
}

// Artifacts lists the artifacts of repo: Harbor's API for type harbor
// (untagged ones and labels included), the tags otherwise (each resolved
// to its digest with a HEAD).
func (c *Client) Artifacts(ctx context.Context, repo string) ([]Artifact, error) {
	if c.ep.Type == TypeHarbor {
		return c.harborArtifacts(ctx, repo)
	}
	tags, err := c.Tags(ctx, repo)
	if err != nil {
		return nil, err
	}
	var out []Artifact
	at := map[string]int{}
	for _, t := range tags {
		d, err := c.Head(ctx, repo, t)
		if errdefs.IsNotFound(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		k := d.Digest.String()
		if i, ok := at[k]; ok {
			out[i].Tags = append(out[i].Tags, t)
			continue
		}
		at[k] = len(out)
		out = append(out, Artifact{Digest: k, MediaType: string(d.MediaType), Tags: []string{t}})
	}
	return out, nil
}

// EnsureNamespace makes sure the namespace (a Harbor project) exists,
// creating it private when it does not; a no-op for other types.
func (c *Client) EnsureNamespace(ctx context.Context, ns string) error {
	if c.ep.Type != TypeHarbor || ns == "" {
		return nil
	}
	return c.harborEnsureProject(ctx, ns)
}

// drain reads a little of an answer's rest and closes it, so the
// connection can be reused.
func drain(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 4096)
	resp.Body.Close()
}

// statusError classifies an unexpected answer.
func statusError(resp *http.Response, what string) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	msg := strings.TrimSpace(printable(b))
	err := fmt.Errorf("%s: the registry answered %s", what, resp.Status)
	if msg != "" {
		err = fmt.Errorf("%w: %s", err, msg)
	}
	return classifyStatus(resp.StatusCode, err)
}

func classifyStatus(code int, err error) error {
	switch {
	case code == http.StatusNotFound:
		return errdefs.NotFound(err)
	case code == http.StatusUnauthorized:
		return errdefs.Unauthorized(err)
	case code == http.StatusForbidden:
		return errdefs.Denied(err)
	case code == http.StatusTooManyRequests:
		return errdefs.Throttled(err)
	case code == http.StatusRequestEntityTooLarge:
		return errdefs.TooLarge(err)
	case code == http.StatusConflict:
		return errdefs.Conflict(err)
	case code >= 500 || code == http.StatusRequestTimeout:
		return errdefs.Unavailable(err)
	case code >= 400:
		return errdefs.InvalidArgument(err)
	}
	return errdefs.Unavailable(err)
}

// classify gives an error from the remote package or the network its
// errdefs class.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var te *transport.Error
	var refused *outbound.RefusedError
	var ne net.Error
	switch {
	case errors.As(err, &refused):
		return err // ErrDenied, with the switch that allows it
	case errors.As(err, &te):
		return classifyStatus(te.StatusCode, err)
	case errors.Is(err, errdefs.ErrNotFound), errors.Is(err, errdefs.ErrCorrupt), errors.Is(err, errdefs.ErrTooLarge),
		errors.Is(err, errdefs.ErrUnavailable), errors.Is(err, errdefs.ErrThrottled), errors.Is(err, errdefs.ErrInvalidArgument),
		errors.Is(err, errdefs.ErrDenied), errors.Is(err, errdefs.ErrUnauthorized):
		return err
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne):
		return errdefs.Unavailable(err)
	}
	return errdefs.Unavailable(err)
}

// printable is a remote's text fit for an error message.
func printable(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return ' '
		}
		return r
	}, string(b))
}

// itoa is strconv.Itoa, for query strings.
func itoa(n int) string { return strconv.Itoa(n) }
