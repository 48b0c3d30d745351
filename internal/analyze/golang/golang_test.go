package golang

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

func TestWants(t *testing.T) {
	a := New()
	for _, tc := range []struct {
		path string
		mode os.FileMode
		size int64
		want bool
	}{
		{"app-src/go.mod", 0o644, 100, true},
		{"root/go/pkg/mod/github.com/x/y@v1/go.mod", 0o644, 100, false},
		{"app/vendor/github.com/x/go.mod", 0o644, 100, false},
		{"usr/local/bin/server", 0o755, 1 << 20, true},
		{"usr/local/bin/script", 0o755, 100, false},
		{"usr/share/doc/x", 0o644, 1 << 20, false},
	} {
		if got := a.Wants(tc.path, analyzer.FileInfo(tc.path, tc.size, tc.mode)); got != tc.want {
			t.Errorf("Wants(%q, %v) = %v", tc.path, tc.mode, got)
		}
	}
}

func TestGoMod(t *testing.T) {
	b, err := os.ReadFile("testdata/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New().Analyze(context.Background(), analyzer.BytesFile("app/go.mod", b))
	if err != nil {
		t.Fatal(err)
	}
	want := []pkg.Package{
		{Name: "github.com/gin-gonic/gin", Version: "v1.8.1", Ecosystem: pkg.Go},
		{Name: "golang.org/x/text", Version: "v0.3.6", Ecosystem: pkg.Go},
		{Name: "example.com/fork", Version: "v1.0.1", Ecosystem: pkg.Go},
		{Name: "gopkg.in/yaml.v2", Version: "v2.4.0", Ecosystem: pkg.Go},
	}
	if diff := cmp.Diff(want, r.Packages); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if r.Type != "gomod" {
		t.Errorf("type %q", r.Type)
	}
	if _, err := New().Analyze(context.Background(), analyzer.BytesFile("go.mod", []byte("require (\n"))); err == nil {
		t.Error("a malformed go.mod gave no error")
	}
}

// A binary built here, read back: the toolchain is stdlib, the main module
// without a version is left out.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hello\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"hi\") }\n"), 0o644)
	cmd := exec.Command("go", "build", "-o", "hello", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	f := analyzer.NewFile("usr/bin/hello", analyzer.FileInfo("hello", int64(len(b)), 0o755), strings.NewReader(string(b)), nil)
	r, err := New().Analyze(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	want := []pkg.Package{{Name: "stdlib", Version: "v" + strings.TrimPrefix(runtime.Version(), "go"), Ecosystem: pkg.Go}}
	if diff := cmp.Diff(want, r.Packages); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNotABinary(t *testing.T) {
	for name, content := range map[string]string{
		"script":        "#!/bin/sh\n" + strings.Repeat("echo hi\n", 200),
		"elf, not go":   "\x7fELF" + strings.Repeat("\x00", 2000),
		"truncated elf": "\x7fELF\x02\x01\x01",
	} {
		r, err := New().Analyze(context.Background(), analyzer.BytesFile("bin/"+name, []byte(content)))
		if r != nil || err != nil {
			t.Errorf("%s: %+v, %v", name, r, err)
		}
	}
}

func FuzzGoMod(f *testing.F) {
	b, _ := os.ReadFile("testdata/go.mod")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseGoMod("go.mod", b)
	})
}

func FuzzBinary(f *testing.F) {
	f.Add([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		New().Analyze(context.Background(), analyzer.BytesFile("bin/x", b))
	})
}
