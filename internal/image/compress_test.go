package image

import (
	"context"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.uber.org/goleak"

	"github.com/lading-dev/lading/internal/progress"
)

// heldLayer is a layer whose compressed bytes are held back until release
// is closed; reading counts the readers waiting, late the opens after
// returned was set.
type heldLayer struct {
	v1.Layer
	release       chan struct{}
	reading, late *atomic.Int32
	returned      *atomic.Bool
}

func (l heldLayer) Compressed() (io.ReadCloser, error) {
	if l.returned.Load() {
		l.late.Add(1)
	}
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return &heldReader{ReadCloser: rc, l: l}, nil
}

type heldReader struct {
	io.ReadCloser
	l    heldLayer
	once sync.Once
}

func (r *heldReader) Read(p []byte) (int, error) {
	r.once.Do(func() {
		r.l.reading.Add(1)
		<-r.l.release
		r.l.reading.Add(-1)
	})
	return r.ReadCloser.Read(p)
}

// onFirstTask runs f when the first task starts.
type onFirstTask struct {
	progress.Nop
	once sync.Once
	f    func()
}

func (r *onFirstTask) Task(id, action string, total int64) progress.Task {
	r.once.Do(r.f)
	return r.Nop.Task(id, action, total)
}

// When the recompression of one layer fails, recompress returns only when
// no other layer is still being read or written, and leaves no temp file
// behind. Before, a temp file that could not be made returned at once while
// the compressions already started went on writing (into files the cleanup
// had removed) after the caller had moved on.
func TestRecompressFailureStopsEverything(t *testing.T) {
	release := make(chan struct{})
	releaseAll := sync.OnceFunc(func() { close(release) })
	defer releaseAll()
	var reading, late atomic.Int32
	var returned atomic.Bool
	var layers []v1.Layer
	for i := range 3 {
		l, err := random.Layer(64<<10, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			l = heldLayer{Layer: l, release: release, reading: &reading, late: &late, returned: &returned}
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	// When the first layer starts, the temp dir goes: the temp files of
	// the layers after it cannot be made.
	rep := &onFirstTask{f: func() { os.RemoveAll(tmp) }}
	before := goleak.IgnoreCurrent()
	_, cleanup, err := recompress(context.Background(), Artifact{Image: img}, CompressZstd,
		makeOptions([]Option{WithTempDir(tmp), WithJobs(1), WithProgress(rep)}))
	returned.Store(true)
	if err == nil {
		cleanup()
		t.Fatal("recompress succeeded without its temp dir")
	}
	if n := reading.Load(); n != 0 {
		t.Errorf("recompress returned (%v) while %d layer was still being read", err, n)
	}
	releaseAll()
	goleak.VerifyNone(t, before)
	if n := late.Load(); n != 0 {
		t.Errorf("a layer was opened after recompress had returned")
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Errorf("the temp dir was made again")
	}
}

// A cancelled recompression leaves no temp file.
func TestRecompressCancelled(t *testing.T) {
	img := testImage(t, "cancel")
	tmp := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := goleak.IgnoreCurrent()
	if _, cleanup, err := recompress(ctx, Artifact{Image: img}, CompressZstd, makeOptions([]Option{WithTempDir(tmp)})); err == nil {
		cleanup()
		t.Fatal("recompress succeeded with a cancelled context")
	}
	goleak.VerifyNone(t, before)
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
