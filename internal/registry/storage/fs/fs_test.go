package fs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/registry/storage"
	"github.com/lading-dev/lading/internal/registry/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Driver {
		d, err := New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

// An interrupted writer leaves a temporary file that nothing sees and that
// Purge collects once it is old enough.
func TestInterruptedWriterIsCollectable(t *testing.T) {
	ctx := context.Background()
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(ctx, "blobs/x/data")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("half a blob"))
	// The process dies here: no Commit, no Cancel.
	tmp := w.(*writer).f.Name()
	w.(*writer).f.Close()

	if _, err := d.Stat(ctx, "blobs/x/data"); err == nil {
		t.Fatal("interrupted write is visible")
	}
	n, err := d.Purge(ctx, time.Now().Add(-time.Hour))
	if err != nil || n != 0 {
		t.Fatalf("Purge of fresh temp files: n=%d err=%v", n, err)
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(tmp, old, old)
	n, err = d.Purge(ctx, time.Now().Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Purge: n=%d err=%v, want 1", n, err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temp file still there: %v", err)
	}
}

func TestStaysInsideRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []string{"../outside", "a/../../outside"} {
		if _, err := d.Writer(ctx, p); err == nil {
			t.Errorf("Writer %q accepted", p)
		}
	}
	ents, _ := os.ReadDir(parent)
	if len(ents) != 1 {
		t.Errorf("files appeared beside the root: %v", ents)
	}
}

// Upload sessions come and go at once (a client pushes layers in
// parallel): a session's Delete prunes the emptied uploads/ directory
// while another session creates its own under it. Every Writer must
// succeed.
func TestWriterRacesPruningDelete(t *testing.T) {
	ctx := context.Background()
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 4, 300
	errs := make(chan error, workers)
	for g := range workers {
		go func() {
			for i := range rounds {
				dir := fmt.Sprintf("uploads/%d-%d", g, i)
				w, err := d.Writer(ctx, dir+"/chunk")
				if err != nil {
					errs <- err
					return
				}
				w.Write([]byte("x"))
				if err := w.Commit(ctx); err != nil {
					errs <- err
					return
				}
				if err := d.Delete(ctx, dir); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
