package layer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/corpustest"
)

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
			blobs := corpustest.Layers(t, img)
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
