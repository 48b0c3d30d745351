package s3_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lading-dev/lading/internal/errdefs"
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

// idleHTTP are the goroutines of idle keep-alive connections, which are
// not the driver's.
var idleHTTP = []goleak.Option{
	goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreAnyFunction("net/http.(*Transport).dialConnFor"),
}

// putFiles commits n small files below dir.
func putFiles(t *testing.T, d *s3.Driver, dir string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		w, err := d.Writer(ctx, fmt.Sprintf("%s/f%03d", dir, i))
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("x"))
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// Stat of a directory and a Walk stopped early leave no listing running:
// the listing is an iterator the driver stops, not a goroutine that waits
// forever for a reader (before, Stat left one per call, blocked until its
// context ended, and then blocked for good sending the context's error).
func TestListingsStopWhenDone(t *testing.T) {
	srv := s3test.Start(t)
	d := srv.Driver(t, "leaks")
	putFiles(t, d, "dir", 6)
	ctx := context.Background()
	if _, err := d.Stat(ctx, "dir/f000"); err != nil { // connections are up
		t.Fatal(err)
	}
	before := goleak.IgnoreCurrent()
	for range 5 {
		fi, err := d.Stat(ctx, "dir")
		if err != nil || !fi.IsDir {
			t.Fatalf("Stat(dir) = %+v, %v; want a directory", fi, err)
		}
		var seen []string
		err = d.Walk(ctx, "dir", func(fi storage.FileInfo) error {
			seen = append(seen, fi.Path)
			return storage.SkipAll
		})
		if err != nil || len(seen) != 1 {
			t.Fatalf("Walk stopped after the first file: %v, %v", seen, err)
		}
	}
	goleak.VerifyNone(t, append(idleHTTP, before)...)
}

// cancelOn cancels a context when a request matches, and fails that
// request as a cancelled one would.
type cancelOn struct {
	match  func(*http.Request) bool
	cancel context.CancelFunc
}

func (c cancelOn) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.match(r) {
		c.cancel()
		return nil, context.Canceled
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A Delete whose context ends says so, leaves no goroutine behind, and a
// Delete that can finish afterwards removes everything.
func TestDeleteCancelled(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config(t, "cancel", "t-cancel/")
	plain, err := s3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		match func(*http.Request) bool
	}{
		{"during the listing", func(r *http.Request) bool { return r.URL.Query().Has("list-type") }},
		{"during the bulk delete", func(r *http.Request) bool { return r.URL.Query().Has("delete") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			putFiles(t, plain, "dir", 5)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := cfg
			c.Transport = cancelOn{match: tc.match, cancel: cancel}
			d, err := s3.New(c)
			if err != nil {
				t.Fatal(err)
			}
			before := goleak.IgnoreCurrent()
			if err := d.Delete(ctx, "dir"); !errors.Is(err, context.Canceled) {
				t.Errorf("Delete = %v, want %v", err, context.Canceled)
			}
			goleak.VerifyNone(t, append(idleHTTP, before)...)
			if err := plain.Delete(context.Background(), "dir"); err != nil {
				t.Fatal(err)
			}
			if _, err := plain.Stat(context.Background(), "dir"); !errdefs.IsNotFound(err) {
				t.Errorf("Stat after Delete = %v, want not found", err)
			}
		})
	}
}
