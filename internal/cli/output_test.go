package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An error writing -o FILE names FILE, never the temporary file it is
// written through.
func TestOutputErrorsNameTheFile(t *testing.T) {
	db := tinyDB(t)
	l := newLading(t)
	ref := writeLayout(t, t.TempDir(), []testLayer{gzLayer(tarBytes(t, alpineBase...))}, nil)
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "dir", "out.json")
	isDir := filepath.Join(dir, "a-directory")
	if err := os.MkdirAll(filepath.Join(isDir, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{missing, isDir} {
		for _, args := range [][]string{
			{"scan", "--db", db, "--format", "json", "-o", out, ref},
			{"sbom", "--format", "cyclonedx", "-o", out, ref},
			{"export", "-o", out + ".tar", ref},
			{"db", "build", "--from", filepath.Join(filepath.Dir(db), "main.yaml"), "-o", out},
		} {
			if args[0] == "export" && out == isDir {
				continue // export -o DIR unpacks into it
			}
			if args[0] == "db" && out == missing {
				continue // db build makes the directory
			}
			_, errs, code := l.run(args...)
			want := out
			if args[0] == "export" {
				want = out + ".tar"
			}
			if code != exitError || !strings.Contains(errs, want+": ") || strings.Contains(errs, ".tmp") {
				t.Errorf("%s -o %s: exit %d, %q; want an error naming the file", args[0], out, code, errs)
			}
		}
	}
}
