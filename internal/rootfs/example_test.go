package rootfs_test

import (
	"context"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/rootfs"
)

// A build step: a writable root file system over an image's layers,
// changed (by a sandboxed process, here by hand), its changes written as a
// reproducible layer.
func ExampleNew() {
	var layers []v1.Layer // an image's layers, bottom first
	ctx := context.Background()
	fsys, err := rootfs.New(ctx, layers, rootfs.WithCache("/var/lib/lading/layers"))
	if err != nil {
		return
	}
	defer fsys.Remove()
	os.WriteFile(fsys.Dir()+"/hello", []byte("hi\n"), 0o644)
	epoch := time.Unix(1704067200, 0)
	out, _ := os.Create("/tmp/layer.tar")
	defer out.Close()
	fsys.Diff(ctx, out, rootfs.DiffOptions{SourceDateEpoch: &epoch})
}
