package registry_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/registry/meta/sqlite"
	"github.com/lading-dev/lading/internal/registry/storage/fs"
)

// testRegistry is a registry on a temporary directory and SQLite database,
// served over loopback TCP.
type testRegistry struct {
	*registry.Registry
	gc      *registry.Collector
	url     string
	root    string // storage root
	srv     *httptest.Server
	logs    *syncBuffer
	client  *http.Client
	user    string
	pass    string
	bearer  string
	notices *notices
	// retries is how many times pushBlob tries again after a 503 (as
	// clients do); 0 in tests where a 503 is a failure.
	retries int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// notices records the events the registry tells, by kind.
type notices struct {
	mu     sync.Mutex
	events []registry.Event
	kinds  []string
}

func (n *notices) add(kind string, e registry.Event) {
	n.mu.Lock()
	n.events = append(n.events, e)
	n.kinds = append(n.kinds, kind)
	n.mu.Unlock()
}

func (n *notices) Pushed(_ context.Context, e registry.Event)  { n.add("pushed", e) }
func (n *notices) Pulled(_ context.Context, e registry.Event)  { n.add("pulled", e) }
func (n *notices) Deleted(_ context.Context, e registry.Event) { n.add("deleted", e) }

// list returns the events of a kind.
func (n *notices) list(kind string) []registry.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []registry.Event
	for i, e := range n.events {
		if n.kinds[i] == kind {
			out = append(out, e)
		}
	}
	return out
}

func newRegistry(t testing.TB, opts ...registry.Option) *testRegistry {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	return newRegistryOn(t, store, opts...)
}

// newRegistryOn is newRegistry with another metadata store.
func newRegistryOn(t testing.TB, store meta.Store, opts ...registry.Option) *testRegistry {
	t.Helper()
	dir := t.TempDir()
	drv, err := fs.New(filepath.Join(dir, "content"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	n := &notices{}
	all := append([]registry.Option{
		registry.WithAccessLog(slog.New(slog.NewJSONHandler(logs, nil))),
		registry.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
		registry.WithMetrics(registry.NewMetrics()),
		registry.WithEvents(n),
	}, opts...)
	reg := registry.New(drv, store, all...)
	// The collector shares the metrics, as lading serve's does.
	gc := registry.NewCollector(drv, store, all...)
	srv := httptest.NewServer(reg)
	t.Cleanup(func() {
		srv.Close()
		store.Close()
	})
	return &testRegistry{Registry: reg, gc: gc, url: srv.URL, root: drv.Root(), srv: srv, logs: logs, client: srv.Client(), notices: n}
}

// CollectGarbage runs one collection over the registry's storage and
// metadata.
func (tr *testRegistry) CollectGarbage(ctx context.Context, o registry.GCOptions) (registry.GCReport, error) {
	return tr.gc.Collect(ctx, o)
}

// response is a read response.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) code() string {
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	json.Unmarshal(r.body, &e)
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

func (tr *testRegistry) do(t testing.TB, method, path string, body []byte, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = tr.url + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if tr.user != "" {
		req.SetBasicAuth(tr.user, tr.pass)
	}
	if tr.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+tr.bearer)
	}
	resp, err := tr.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	if resp.StatusCode >= 500 {
		t.Errorf("%s %s: server error %d: %s", method, path, resp.StatusCode, b)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// want checks a response's status (and error code, when code is set).
func want(t testing.TB, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d (body %s)", what, r.status, status, r.body)
		return
	}
	if code != "" && r.code() != code {
		t.Errorf("%s: code %q, want %q (body %s)", what, r.code(), code, r.body)
	}
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func digest512(b []byte) string {
	s := sha512.Sum512(b)
	return "sha512:" + hex.EncodeToString(s[:])
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// pushBlob pushes b monolithically and fails the test otherwise.
func (tr *testRegistry) pushBlob(t testing.TB, repo string, b []byte) string {
	t.Helper()
	d := digestOf(b)
	r := tr.do(t, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, b, "Content-Type", "application/octet-stream")
	for try := 0; try < tr.retries && r.status == http.StatusServiceUnavailable; try++ {
		time.Sleep(10 * time.Millisecond)
		r = tr.do(t, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, b, "Content-Type", "application/octet-stream")
	}
	want(t, "push blob", r, http.StatusCreated, "")
	return d
}

type desc struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     map[string]string `json:"platform,omitempty"`
}

type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        *desc             `json:"config,omitempty"`
	Layers        []desc            `json:"layers,omitempty"`
	Manifests     []desc            `json:"manifests,omitempty"`
	Subject       *desc             `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// image pushes a config and layers and returns an image manifest naming
// them (not pushed).
func (tr *testRegistry) image(t testing.TB, repo string, layers ...[]byte) ([]byte, manifest) {
	t.Helper()
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":%q}`, hex.EncodeToString(randomBytes(8))))
	m := manifest{
		SchemaVersion: 2,
		MediaType:     registry.MediaTypeOCIManifest,
		Config:        &desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: tr.pushBlob(t, repo, cfg), Size: int64(len(cfg))},
		Layers:        []desc{},
	}
	for _, l := range layers {
		m.Layers = append(m.Layers, desc{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: tr.pushBlob(t, repo, l), Size: int64(len(l))})
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b, m
}

func (tr *testRegistry) putManifest(t testing.TB, repo, ref string, b []byte, mediaType string) response {
	t.Helper()
	return tr.do(t, "PUT", "/v2/"+repo+"/manifests/"+ref, b, "Content-Type", mediaType)
}
