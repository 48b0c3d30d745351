package corpus

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFind(t *testing.T) {
	good := t.TempDir()
	os.Mkdir(filepath.Join(good, "images"), 0o755)
	bad := t.TempDir()
	t.Setenv("LADING_CORPUS", good)
	if dir, _ := Find(); dir != good {
		t.Errorf("Find() = %q with LADING_CORPUS=%s, want it", dir, good)
	}
	// A directory without images/ is not a corpus: Find says where it
	// looked, and goes on to ../shared/corpus beside the module.
	t.Setenv("LADING_CORPUS", bad)
	dir, tried := Find()
	if dir == bad || !slices.Contains(tried, bad) || len(tried) != 2 {
		t.Errorf("Find() = %q, tried %v; want %s refused and ../shared/corpus tried", dir, tried, bad)
	}
}
