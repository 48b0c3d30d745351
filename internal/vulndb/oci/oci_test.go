package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/vulndb"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// testDB writes a small database and returns its path.
func testDB(t *testing.T) string {
	t.Helper()
	b := vulndb.NewBuilder(discard)
	for i := range 200 {
		b.Add(vulndb.Record{ID: fmt.Sprintf("CVE-2099-%04d", i), Source: "test", Description: strings.Repeat("text ", 50),
			Affected: []vulndb.Affected{{Namespace: "npm", Package: fmt.Sprintf("p%d", i%50), Ranges: []vulndb.Range{{Events: []vulndb.Event{{Kind: vulndb.Introduced, Version: "0"}, {Kind: vulndb.Fixed, Version: "1.0.0"}}}}}}})
	}
	p := filepath.Join(t.TempDir(), vulndb.FileName)
	if _, err := b.Write(context.Background(), p, vulndb.Metadata{BuiltAt: time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC), Builder: "test"}); err != nil {
		t.Fatal(err)
	}
	return p
}

// serve runs handler as a registry and returns its host:port.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPushPull(t *testing.T) {
	ctx := context.Background()
	src := testDB(t)
	host := serve(t, registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	r := ref(t, host+"/lading/db:1")

	var pushed atomic.Int64
	d, err := Push(ctx, src, r, WithProgress(func(done, _ int64) { pushed.Store(done) }))
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Load() == 0 {
		t.Error("no push progress")
	}

	// The manifest says what it is.
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != d {
		t.Errorf("digest %s, Push said %s", desc.Digest, d)
	}
	for _, s := range []string{ArtifactType, ConfigMediaType, LayerMediaType, `"vuln.db.zst"`} {
		if !bytes.Contains(desc.Manifest, []byte(s)) {
			t.Errorf("manifest lacks %s:\n%s", s, desc.Manifest)
		}
	}

	dest := filepath.Join(t.TempDir(), "sub", vulndb.FileName)
	var pulled atomic.Int64
	meta, err := Pull(ctx, r, dest, WithProgress(func(done, _ int64) { pulled.Store(done) }))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(dest)
	if !bytes.Equal(a, b) {
		t.Error("pulled file differs")
	}
	if meta.Builder != "test" || meta.Advisories != 200 || pulled.Load() == 0 {
		t.Errorf("meta %+v, progress %d", meta, pulled.Load())
	}
	// By digest too.
	if _, err := Pull(ctx, ref(t, host+"/lading/db@"+d.String()), dest); err != nil {
		t.Errorf("pull by digest: %v", err)
	}
}

// tamper serves the registry but changes one byte of every database layer
// it sends, and counts the layer fetches.
type tamper struct {
	next    http.Handler
	blob    string // digest of the blob to damage
	fetches atomic.Int32
}

func (tp *tamper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || tp.blob == "" || !strings.HasSuffix(r.URL.Path, "/blobs/"+tp.blob) {
		tp.next.ServeHTTP(w, r)
		return
	}
	tp.fetches.Add(1)
	rec := httptest.NewRecorder()
	tp.next.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	if len(body) > 100 {
		body[100] ^= 0xff
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(body)
}

func layerDigest(t *testing.T, r name.Reference) string {
	t.Helper()
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[0].Digest.String()
}

func TestPullRefusesDamage(t *testing.T) {
	ctx := context.Background()
	tp := &tamper{next: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	host := serve(t, tp)
	r := ref(t, host+"/lading/db:1")
	if _, err := Push(ctx, testDB(t), r); err != nil {
		t.Fatal(err)
	}
	tp.blob = layerDigest(t, r)

	dest := filepath.Join(t.TempDir(), vulndb.FileName)
	os.WriteFile(dest, []byte("the previous database"), 0o644)
	_, err := Pull(ctx, r, dest)
	if !errors.Is(err, errdefs.ErrCorrupt) {
		t.Fatalf("damaged layer: err = %v, want ErrCorrupt", err)
	}
	if b, _ := os.ReadFile(dest); string(b) != "the previous database" {
		t.Error("the previous database was replaced")
	}
	entries, _ := os.ReadDir(filepath.Dir(dest))
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestPullRefusesOtherSchemasAndArtifacts(t *testing.T) {
	ctx := context.Background()
	tp := &tamper{next: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	host := serve(t, tp)

	// A database of a future schema: refused from its config, before
	// the layer is fetched.
	future := ref(t, host+"/lading/db:future")
	if _, err := Push(ctx, testDB(t), future); err != nil {
		t.Fatal(err)
	}
	desc, _ := remote.Get(future)
	img, _ := desc.Image()
	raw, _ := img.RawConfigFile()
	cfgFuture := bytes.Replace(raw, []byte(`"schema":1`), []byte(`"schema":99`), 1)
	pushConfig(t, future, desc.Manifest, raw, cfgFuture)
	tp.blob = layerDigest(t, future)
	_, err := Pull(ctx, future, filepath.Join(t.TempDir(), "db"))
	if !errors.Is(err, errdefs.ErrUnsupported) || !strings.Contains(err.Error(), "schema version 99") || !strings.Contains(err.Error(), "upgrade lading") {
		t.Errorf("future schema: %v", err)
	}
	if n := tp.fetches.Load(); n != 0 {
		t.Errorf("the layer was fetched %d times", n)
	}

	// An ordinary image is not a database.
	plain := ref(t, host+"/some/image:latest")
	rimg, _ := random.Image(100, 1)
	if err := remote.Write(plain, rimg); err != nil {
		t.Fatal(err)
	}
	_, err = Pull(ctx, plain, filepath.Join(t.TempDir(), "db"))
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "not a lading vulnerability database") {
		t.Errorf("plain image: %v", err)
	}

	// Nothing there.
	_, err = Pull(ctx, ref(t, host+"/lading/none:1"), filepath.Join(t.TempDir(), "db"))
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
}

// pushConfig replaces an artifact's config blob and manifest.
func pushConfig(t *testing.T, r name.Reference, manifest, oldCfg, newCfg []byte) {
	t.Helper()
	oldD := fmt.Sprintf("sha256:%x", sha256sum(oldCfg))
	newD := fmt.Sprintf("sha256:%x", sha256sum(newCfg))
	m := bytes.Replace(manifest, []byte(oldD), []byte(newD), 1)
	m = bytes.Replace(m, []byte(fmt.Sprintf(`"size":%d`, len(oldCfg))), []byte(fmt.Sprintf(`"size":%d`, len(newCfg))), 1)
	base := "http://" + r.Context().RegistryStr() + "/v2/" + r.Context().RepositoryStr()
	resp, err := http.Post(base+"/blobs/uploads/?digest="+newD, "application/octet-stream", bytes.NewReader(newCfg))
	if err != nil || resp.StatusCode >= 300 {
		t.Fatalf("upload config: %v %v", resp, err)
	}
	req, _ := http.NewRequest(http.MethodPut, base+"/manifests/"+r.Identifier(), bytes.NewReader(m))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode >= 300 {
		t.Fatalf("put manifest: %v %v", resp, err)
	}
}

// TestDistribution pushes and pulls through CNCF Distribution, the registry
// most registries are built on, with basic authentication.
func TestDistribution(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Htpasswd)
	ctx := context.Background()
	src := testDB(t)
	r := ref(t, reg.Host+"/lading/vulndb:1")
	creds := WithKeychain(staticKeychain{authn.FromConfig(authn.AuthConfig{Username: reg.User, Password: reg.Password})})
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials from the user's config

	if _, err := Push(ctx, src, r); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Errorf("push without credentials: %v", err)
	}
	if _, err := Push(ctx, src, r, creds); err != nil {
		t.Fatalf("push: %v", err)
	}
	dest := filepath.Join(t.TempDir(), vulndb.FileName)
	if _, err := Pull(ctx, r, dest); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Errorf("pull without credentials: %v", err)
	}
	meta, err := Pull(ctx, r, dest, creds)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(dest)
	if !bytes.Equal(a, b) || meta.Advisories != 200 || meta.Builder != "test" {
		t.Errorf("round trip through distribution differs (%+v)", meta)
	}
}

// staticKeychain answers every registry with the same credentials.
type staticKeychain struct{ a authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.a, nil }

func sha256sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
