package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/registry/meta/metatest"
)

func TestConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Store {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Reopening a database keeps its content and does not redo the schema.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "meta.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimBlob(ctx, "sha256:aa"); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitBlob(ctx, "repo", "sha256:aa", 3); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Blob(ctx, "repo", "sha256:aa"); err != nil {
		t.Errorf("after reopen: %v", err)
	}
}

// A claim whose writer died stops protecting its blob after the pending
// timeout, whatever the grace window.
func TestAbandonedClaim(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	s.SetClock(func() time.Time { return start })
	if _, err := s.ClaimBlob(ctx, "sha256:bb"); err != nil {
		t.Fatal(err)
	}
	l, err := s.LockCollection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	s.SetClock(func() time.Time { return start.Add(10 * time.Minute) })
	if ok, _ := s.MarkDeleting(ctx, l, "sha256:bb", start.Add(10*time.Minute)); ok {
		t.Error("a 10-minute-old claim was collected")
	}
	s.SetClock(func() time.Time { return start.Add(20 * time.Minute) })
	if ok, err := s.MarkDeleting(ctx, l, "sha256:bb", start.Add(20*time.Minute)); !ok || err != nil {
		t.Errorf("a 20-minute-old claim survived: %v", err)
	}
}

// A database made before blob rows named their collector gets the column,
// and keeps its rows.
func TestUpgrade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE blobs (digest TEXT PRIMARY KEY, size INTEGER NOT NULL, state TEXT NOT NULL, created INTEGER NOT NULL,
			updated INTEGER NOT NULL, claimed INTEGER NOT NULL DEFAULT 0, claims INTEGER NOT NULL DEFAULT 0)`,
		`INSERT INTO blobs VALUES ('sha256:cc', 3, 'deleting', 0, 0, 0, 0)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	for i := range 2 {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		// Left deleting long ago by a collector without a lock:
		// taken over.
		if _, err := s.ClaimBlob(ctx, "sha256:cc"); err != nil {
			t.Errorf("open %d: claim of an old deleting row: %v", i, err)
		}
		s.Close()
	}
}
