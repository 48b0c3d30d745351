package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/corpustest"
)

// loadOCI reads an OCI layout tar and returns the gzip layer blobs of its
// image (the linux/amd64 one of an index), bottom first.
func loadOCI(t *testing.T, file string) [][]byte {
	t.Helper()
	f, err := os.Open(file)
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
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = b
		}
	}
	blob := func(digest string) []byte {
		b, ok := files["blobs/"+strings.Replace(digest, ":", "/", 1)]
		if !ok {
			t.Fatalf("%s: no blob %s", file, digest)
		}
		return b
	}
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Platform  *struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
		} `json:"platform"`
	}
	var doc struct {
		MediaType string `json:"mediaType"`
		Manifests []desc `json:"manifests"`
		Layers    []desc `json:"layers"`
	}
	data := files["index.json"]
	for range 4 {
		doc.Manifests, doc.Layers = nil, nil
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
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
			t.Fatalf("%s: no linux/amd64 manifest", file)
		}
		data = blob(doc.Manifests[next].Digest)
	}
	t.Fatalf("%s: nested too deep", file)
	return nil
}

func blobSources(blobs [][]byte) []Source {
	src := make([]Source, len(blobs))
	for i, b := range blobs {
		name := fmt.Sprintf("layer %d/%d", i+1, len(blobs))
		src[i] = Source{Name: name, Open: func(context.Context) (io.ReadCloser, error) {
			rc, _, err := Decompress(bytes.NewReader(b), WithName(name), MaxSize(1<<30))
			return rc, err
		}}
	}
	return src
}

// TestCorpus exports every OCI image of the shared corpus and compares the
// tree with Extract applying the layers one by one and, when overlay mounts
// work here, with the kernel's merged view of the layers as GNU tar unpacks
// them. With -short only alpine-3.20-app (whiteouts, an opaque directory).
func TestCorpus(t *testing.T) {
	dir := corpustest.Dir(t)
	images, _ := filepath.Glob(filepath.Join(dir, "images", "*.oci.tar"))
	if testing.Short() {
		images = []string{corpustest.Image(t, "alpine-3.20-app.oci.tar")}
	}
	for _, img := range images {
		t.Run(strings.TrimSuffix(filepath.Base(img), ".oci.tar"), func(t *testing.T) {
			blobs := loadOCI(t, img)
			out, err := os.Create(filepath.Join(t.TempDir(), "merged.tar"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			if err := Export(context.Background(), out, blobSources(blobs), AllowDevices()); err != nil {
				t.Fatal(err)
			}
			out.Seek(0, 0)
			d := t.TempDir()
			if err := Extract(context.Background(), d, out, AllowDevices()); err != nil {
				t.Fatal(err)
			}
			ours := listDir(t, d)

			lw := t.TempDir()
			for i, src := range blobSources(blobs) {
				rc, _ := src.Open(context.Background())
				err := Extract(context.Background(), lw, rc, ApplyWhiteouts(), AllowDevices(), WithName(src.Name))
				rc.Close()
				if err != nil {
					t.Fatalf("layer %d: %v", i, err)
				}
			}
			if diff := cmpLines(listDir(t, lw), ours); diff != "" {
				t.Errorf("Export+Extract differs from Extract layer by layer (-layerwise +export):\n%s", diff)
			}
			if strings.HasSuffix(img, "alpine-3.20-app.oci.tar") {
				checkAlpineApp(t, ours)
			}

			requireOverlay(t)
			kernel, err := kernelTree(t, blobs, true)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmpLines(kernel, ours); diff != "" {
				t.Errorf("Export+Extract differs from the kernel (-kernel +ours):\n%s", diff)
			}
			t.Logf("%d layers, %d paths: same as the kernel", len(blobs), len(ours))
		})
	}
}

// checkAlpineApp checks what the corpus README says the layers of
// alpine-3.20-app do.
func checkAlpineApp(t *testing.T, tree []string) {
	has := func(prefix string) bool {
		return slices.ContainsFunc(tree, func(l string) bool { return strings.HasPrefix(l, prefix) })
	}
	for _, gone := range []string{"etc/motd ", "etc/issue ", "media/cdrom", "sbin/ldconfig ", "usr/bin/ldd ", "etc/periodic/hourly", "etc/periodic/15min"} {
		if has(gone) {
			t.Errorf("%s should be removed", gone)
		}
	}
	for _, want := range []string{"etc/periodic dir ", "etc/periodic/daily dir ", "etc/periodic/daily/corpus-cleanup file ", "usr/local/bin/corpus-p3-server file ", "app/package.json file ", "lib/apk/db/installed file "} {
		if !has(want) {
			t.Errorf("%s is missing", want)
		}
	}
	var periodic []string
	for _, l := range tree {
		if strings.HasPrefix(l, "etc/periodic/") {
			periodic = append(periodic, strings.Fields(l)[0])
		}
	}
	if diff := cmpLines([]string{"etc/periodic/daily", "etc/periodic/daily/corpus-cleanup"}, periodic); diff != "" {
		t.Errorf("etc/periodic (-want +got):\n%s", diff)
	}
}
