// Package corpustest finds the shared test corpus (real images and advisory
// feeds) for tests. The corpus lives outside the repository, at
// ../shared/corpus beside the checkout or wherever $LADING_CORPUS points; a
// test that needs it and does not find it is skipped (through internal/testenv,
// so it fails under LADING_CI=1) with a message that says where it looked.
package corpustest

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/corpus"
	"github.com/lading-dev/lading/internal/testenv"
)

// Dir returns the corpus directory or skips t.
func Dir(t testing.TB) string {
	t.Helper()
	d, tried := corpus.Find()
	if d == "" {
		testenv.Skip(t, "corpus not found (tried %v); set LADING_CORPUS to ../shared/corpus", tried)
	}
	return d
}

// Image returns the path of a corpus image file (such as
// "alpine-3.10.oci.tar") or skips t.
func Image(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Dir(t), "images", name)
	if _, err := os.Stat(p); err != nil {
		testenv.Skip(t, "corpus image %s: %v", name, err)
	}
	return p
}

// Layers returns the layer blobs (as stored, usually gzip) of the image in
// the OCI layout tar ociTar, bottom first; of an index, the linux/amd64
// image. It reads the whole archive into memory: corpus images are small.
func Layers(t testing.TB, ociTar string) [][]byte {
	t.Helper()
	f, err := os.Open(ociTar)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", ociTar, err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("%s: %v", ociTar, err)
			}
			files[strings.TrimPrefix(h.Name, "./")] = b
		}
	}
	blob := func(digest string) []byte {
		b, ok := files["blobs/"+strings.Replace(digest, ":", "/", 1)]
		if !ok {
			t.Fatalf("%s: no blob %s", ociTar, digest)
		}
		return b
	}
	type desc struct {
		Digest   string `json:"digest"`
		Platform *struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
		} `json:"platform"`
	}
	var doc struct {
		Manifests []desc `json:"manifests"`
		Layers    []desc `json:"layers"`
	}
	data := files["index.json"]
	for range 4 {
		doc.Manifests, doc.Layers = nil, nil
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", ociTar, err)
		}
		if doc.Layers != nil {
			var layers [][]byte
			for _, l := range doc.Layers {
				layers = append(layers, blob(l.Digest))
			}
			return layers
		}
		next := slices.IndexFunc(doc.Manifests, func(d desc) bool {
			return d.Platform == nil || d.Platform.OS == "linux" && d.Platform.Architecture == "amd64"
		})
		if next < 0 {
			t.Fatalf("%s: no linux/amd64 manifest", ociTar)
		}
		data = blob(doc.Manifests[next].Digest)
	}
	t.Fatalf("%s: indexes nested too deep", ociTar)
	return nil
}
