package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestBlobWriter: bytes become a blob under their digest only at Commit;
// Abort leaves nothing, in ingest/ or blobs/.
func TestBlobWriter(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := s.NewBlobWriter()
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("a layer, written before its digest is known")
	w.Write(data[:10])
	w.Write(data[10:])
	d, n, err := w.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%x", sha256.Sum256(data)); d.Hex != want || n != int64(len(data)) {
		t.Fatalf("committed %s (%d bytes), want %s", d, n, want)
	}
	got, err := s.ReadBlob(ctx, d, 1<<20)
	if err != nil || string(got) != string(data) {
		t.Fatalf("read back %q, %v", got, err)
	}
	w.Abort() // after Commit: nothing happens

	w2, err := s.NewBlobWriter()
	if err != nil {
		t.Fatal(err)
	}
	w2.Write([]byte("dropped"))
	w2.Abort()
	if es, _ := os.ReadDir(filepath.Join(s.Root(), "ingest")); len(es) != 0 {
		t.Errorf("ingest/ holds %d files after Abort", len(es))
	}
	if _, _, err := w2.Commit(ctx); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}
