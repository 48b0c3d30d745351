package scanning_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/ping"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/scanning"
)

// gzipTar writes a gzipped tar of the entries that fill writes.
func gzipTar(t *testing.T, fill func(tw *tar.Writer)) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	fill(tw)
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// imageOf is a one-layer image of a layer blob.
func imageOf(t *testing.T, blob []byte) v1.Image {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// zeros is an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestHostileImages pushes images that attack a scanner: a decompression
// bomb, entries that climb out of the root, a truncated layer, a layer
// that is not gzip at all. Each scan ends as Error with the reason in its
// log, the heap stays bounded while the bomb is refused, a pull is
// blocked while the prevention policy is on (the scan failed), and the
// registry goes on serving and scanning.
func TestHostileImages(t *testing.T) {
	srv := start(t, corpusDB(t), harbortest.WithScanning(func(o *scanning.Options) { o.MaxLayerSize = 64 << 20 }))
	newProject(t, srv, "hostile", map[string]string{"auto_scan": "true", "prevent_vul": "true", "severity": "critical"})

	bomb := gzipTar(t, func(tw *tar.Writer) {
		const size = 1 << 30 // 1 GiB of zeros: about 1 MiB of gzip
		tw.WriteHeader(&tar.Header{Name: "bomb", Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
		io.Copy(tw, io.LimitReader(zeros{}, size))
	})
	traversal := gzipTar(t, func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Name: "etc/os-release", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
		tw.Write([]byte("x=1"))
		tw.WriteHeader(&tar.Header{Name: "../../../../etc/cron.d/evil", Mode: 0o644, Size: 4, Typeflag: tar.TypeReg})
		tw.Write([]byte("evil"))
	})
	var tr bytes.Buffer
	tw := tar.NewWriter(&tr)
	tw.WriteHeader(&tar.Header{Name: "lib/apk/db/installed", Mode: 0o644, Size: 1 << 16, Typeflag: tar.TypeReg})
	tw.Write(bytes.Repeat([]byte("P:musl\nV:1.2.5-r0\n\n"), 100))
	var gzt bytes.Buffer
	gz := gzip.NewWriter(&gzt)
	gz.Write(tr.Bytes()) // the tar stops inside its first file
	gz.Close()
	truncated := gzt.Bytes()
	cases := []struct {
		name, repo, want string
		blob             []byte
	}{
		{"decompression bomb", "bomb", "decompression bomb", bomb},
		{"traversal", "traversal", "../../../../etc/cron.d/evil", traversal},
		{"truncated", "truncated", "layer 1", truncated},
	}
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dgst := push(t, srv, imageOf(t, c.blob), "hostile/"+c.repo+":1")
			s := waitScan(t, srv, "hostile", c.repo, "1")
			if s.ScanStatus != "Error" {
				t.Fatalf("scan of a %s: %+v, want Error", c.name, s)
			}
			if log := scanLog(t, srv, "hostile", c.repo, dgst); !strings.Contains(log, "scan failed") || !strings.Contains(log, c.want) {
				t.Errorf("log of the %s scan does not say %q:\n%s", c.name, c.want, log)
			}
			for _, p := range pullers(t) {
				out, ok := p.pull(t, srv, "hostile/"+c.repo+":1")
				if ok || !strings.Contains(out, `current image with "Error" status of vulnerability scanning cannot be pulled`) {
					t.Errorf("%s pull of the %s: %v %s", p.name, c.name, ok, out)
				}
			}
		})
	}
	close(stop)
	t.Logf("peak heap in use while scanning: %d MiB", peak.Load()>>20)
	if peak.Load() > 200<<20 {
		t.Errorf("the heap reached %d MiB while refusing hostile layers", peak.Load()>>20)
	}
	// The registry still serves and scans.
	if _, err := srv.Admin().Ping.GetPing(context.Background(), ping.NewGetPingParams()); err != nil {
		t.Fatal(err)
	}
	push(t, srv, corpusImage(t, "alpine-3.20-app.oci.tar"), "hostile/app:1")
	if s := waitScan(t, srv, "hostile", "app", "1"); s.ScanStatus != "Success" || s.Summary.Total == 0 {
		t.Errorf("a scan after the hostile ones: %+v", s)
	}
}
