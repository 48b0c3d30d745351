package dockerarchive_test

import (
	"context"
	"errors"
	"os"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.uber.org/goleak"

	"github.com/lading-dev/lading/internal/image/dockerarchive"
)

// failingWriter fails every write, as a full disk or a closed pipe does.
type failingWriter struct{}

var errWrite = errors.New("the destination is gone")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

// gzipImage is an image of n gzipped layers of size random bytes each.
func gzipImage(t *testing.T, n int, size int64) v1.Image {
	t.Helper()
	img := empty.Image
	for range n {
		l, err := random.Layer(size, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// When writing fails at once, Write returns only after every layer it had
// started decompressing has stopped, and leaves no temp file behind (before,
// the decompressing goroutines went on after Write returned: they created
// temp files nobody removed and raced with the cleanup over them).
func TestWriteEarlyErrorCleansUp(t *testing.T) {
	img := gzipImage(t, 4, 4<<20)
	for _, jobs := range []int{1, 3} {
		tmp := t.TempDir()
		before := goleak.IgnoreCurrent()
		err := dockerarchive.Write(context.Background(), failingWriter{},
			[]dockerarchive.Named{{Image: img, Tags: []string{"example:1"}}},
			dockerarchive.WithTempDir(tmp), dockerarchive.WithJobs(jobs))
		if !errors.Is(err, errWrite) {
			t.Errorf("jobs=%d: Write = %v, want %v", jobs, err, errWrite)
		}
		goleak.VerifyNone(t, before)
		left, err := os.ReadDir(tmp)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range left {
			t.Errorf("jobs=%d: left behind in the temp dir: %s", jobs, e.Name())
		}
	}
}

// A cancelled context stops the decompressions and leaves nothing behind.
func TestWriteCancelledCleansUp(t *testing.T) {
	img := gzipImage(t, 3, 4<<20)
	tmp := t.TempDir()
	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := dockerarchive.Write(ctx, discard{}, []dockerarchive.Named{{Image: img}}, dockerarchive.WithTempDir(tmp), dockerarchive.WithJobs(2))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write = %v, want %v", err, context.Canceled)
	}
	goleak.VerifyNone(t, before)
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind in the temp dir: %v", left)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
