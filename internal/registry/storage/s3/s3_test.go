package s3_test

import (
	"context"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/registry/storage"
	"github.com/lading-dev/lading/internal/registry/storage/s3"
	"github.com/lading-dev/lading/internal/registry/storage/s3test"
	"github.com/lading-dev/lading/internal/registry/storage/storagetest"
)

func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	storagetest.Run(t, func(t *testing.T) storage.Driver {
		return srv.Driver(t, "conformance")
	}, storagetest.Options{LargeSize: 2*s3.MinPartSize + 12345})
}

// A writer abandoned in the middle of a multipart upload leaves nothing
// visible, and Purge aborts the upload.
func TestInterruptedMultipartIsPurged(t *testing.T) {
	srv := s3test.Start(t)
	d := srv.Driver(t, "purge")
	ctx := context.Background()
	w, err := d.Writer(ctx, "blobs/big/data")
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, s3.MinPartSize)
	for range 2 {
		if _, err := w.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	w.Write([]byte("tail"))
	// The process dies: no Commit, no Cancel.
	if _, err := d.Stat(ctx, "blobs/big/data"); err == nil {
		t.Fatal("interrupted upload is visible")
	}
	n, err := d.Purge(ctx, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("Purge aborted %d uploads, want 1", n)
	}
}

func TestBadConfig(t *testing.T) {
	for _, c := range []s3.Config{
		{},
		{Endpoint: "127.0.0.1:1"},
		{Endpoint: "127.0.0.1:1", Bucket: "b", PartSize: 1024},
	} {
		if _, err := s3.New(c); err == nil {
			t.Errorf("New(%+v) succeeded", c)
		}
	}
}
