package rootfs_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/overlaytest"
	"github.com/lading-dev/lading/internal/rootfs"
)

// BenchmarkNew times making a writable root file system over the five
// layers of the corpus image alpine-3.20-app, unpacked in the cache already
// (what every container and build step after the first pays), beside a
// baseline from the same run: cp -a of the merged tree (what copying the
// image's files costs). Unpack is the first time: unpacking each layer.
func BenchmarkNew(b *testing.B) {
	overlaytest.Require(b)
	src := corpustest.Image(b, "alpine-3.20-app.oci.tar")
	ctx := context.Background()
	ref, _ := image.Parse("oci-archive:" + src + ":latest")
	s, err := image.Open(ctx, ref)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	img, _ := s.Select(nil)
	layers, _ := img.Layers()
	cache := b.TempDir()
	var merged string
	for _, mode := range []rootfs.Mode{rootfs.Overlay, rootfs.Copy} {
		f, err := rootfs.New(ctx, layers, rootfs.WithCache(cache), rootfs.WithMode(mode))
		if err != nil {
			b.Fatal(err)
		}
		if mode == rootfs.Copy {
			merged = f.Dir()
		}
		b.Cleanup(func() { f.Remove() })
	}
	for _, mode := range []rootfs.Mode{rootfs.Overlay, rootfs.Copy} {
		b.Run(string(mode), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				f, err := rootfs.New(ctx, layers, rootfs.WithCache(cache), rootfs.WithMode(mode))
				if err != nil {
					b.Fatal(err)
				}
				f.Remove()
			}
		})
	}
	b.Run("unpack", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			f, err := rootfs.New(ctx, layers, rootfs.WithCache(b.TempDir()), rootfs.WithMode(rootfs.Overlay))
			if err != nil {
				b.Fatal(err)
			}
			f.Remove()
		}
	})
	b.Run("baseline-cp", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			dst := filepath.Join(b.TempDir(), "x")
			if out, err := exec.Command("cp", "-a", merged, dst).CombinedOutput(); err != nil {
				b.Fatal(err, string(out))
			}
		}
	})
}
