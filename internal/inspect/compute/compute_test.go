package compute_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/inspect"
	"github.com/lading-dev/lading/internal/inspect/compute"
)

// blobs serves an image's blobs as the registry would, counting reads.
type blobs struct {
	img   v1.Image
	reads atomic.Int64
	bad   bool // serve a corrupted layer
}

func (b *blobs) Manifest(context.Context, string, string) ([]byte, error) { return b.img.RawManifest() }

func (b *blobs) Blob(_ context.Context, _, dgst string) (io.ReadCloser, error) {
	b.reads.Add(1)
	h, err := v1.NewHash(dgst)
	if err != nil {
		return nil, err
	}
	if cn, _ := b.img.ConfigName(); cn == h {
		raw, err := b.img.RawConfigFile()
		return io.NopCloser(bytes.NewReader(raw)), err
	}
	l, err := b.img.LayerByDigest(h)
	if err != nil {
		return nil, errdefs.NotFound(err)
	}
	rc, err := l.Compressed()
	if err != nil || !b.bad {
		return rc, err
	}
	data, _ := io.ReadAll(rc)
	data[len(data)/2] ^= 0xff
	return io.NopCloser(bytes.NewReader(data)), nil
}

func target(t *testing.T, b *blobs) inspect.Target {
	d, err := b.img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := b.img.RawManifest()
	return inspect.Target{Repository: "p/r", Digest: d.String(), Manifest: raw, Content: b}
}

// TestOncePerImage: concurrent requests for one image run one analysis;
// later requests are answered from memory, and Known lists it.
func TestOncePerImage(t *testing.T) {
	img, err := random.Image(1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	b := &blobs{img: img}
	a := compute.New(compute.WithParallel(2))
	tg := target(t, b)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := a.Analyze(context.Background(), tg); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	first := b.reads.Load()
	if first == 0 || first > 5 {
		t.Errorf("%d blob reads for 8 concurrent analyses of a 3-layer image, want one analysis (config and 3 layers)", first)
	}
	if _, err := a.Analyze(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	if b.reads.Load() != first {
		t.Error("a second analysis read blobs again")
	}
	known, err := a.Known(context.Background(), "p/r", []string{tg.Digest, "sha256:0000"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]inspect.Summary{tg.Digest: {}}, known); diff != "" {
		t.Errorf("known (-want +got):\n%s", diff)
	}
	var sbom bytes.Buffer
	if err := a.SBOM(context.Background(), tg, inspect.SPDX, &sbom); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SPDXVersion string `json:"spdxVersion"`
	}
	if err := json.Unmarshal(sbom.Bytes(), &doc); err != nil || doc.SPDXVersion == "" {
		t.Errorf("SPDX document: %v %q", err, doc.SPDXVersion)
	}
}

// TestCorruptBlob: a layer whose bytes do not match its digest fails the
// analysis with an error naming the layer (lading's analyzer verifies
// every layer before it reads or caches it), and nothing is remembered:
// the next view tries again.
func TestCorruptBlob(t *testing.T) {
	img, err := random.Image(2048, 1)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	b := &blobs{img: img, bad: true}
	a := compute.New()
	tg := target(t, b)
	_, err = a.Analyze(context.Background(), tg)
	if err == nil || !strings.Contains(err.Error(), ld.String()) || !strings.Contains(err.Error(), "layer 1/1") {
		t.Errorf("analysis of a corrupt layer: %v, want an error naming layer 1/1 %s", err, ld)
	}
	known, _ := a.Known(context.Background(), "p/r", []string{tg.Digest})
	if len(known) != 0 {
		t.Errorf("a failed analysis is remembered: %v", known)
	}
}
