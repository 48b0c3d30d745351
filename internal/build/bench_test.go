package build_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/lading-dev/lading/internal/build"
	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/store"
)

// BenchmarkCachedRebuild rebuilds an unchanged multi-step Dockerfile on the
// corpus's alpine: every step comes from the cache.
func BenchmarkCachedRebuild(b *testing.B) {
	base := corpustest.Image(b, "alpine-3.9.oci.tar")
	dir := b.TempDir()
	writeFilesB(b, dir)
	st, err := store.Open(filepath.Join(b.TempDir(), "root"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	run := func() *build.Result {
		in, err := build.OpenInput(ctx, dir, "", nil, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close()
		res, err := build.New(st, build.WithBuildArgs(map[string]string{"BASE": "oci-archive:" + base})).Build(ctx, in.Dockerfile, in.Context)
		if err != nil {
			b.Fatal(err)
		}
		return res
	}
	run()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := run(); res.Made != 0 {
			b.Fatalf("made %d layers", res.Made)
		}
	}
}

func writeFilesB(b *testing.B, dir string) {
	files := map[string]string{
		"Dockerfile": "ARG BASE\nFROM $BASE\nENV A=1\nCOPY . /app/\nWORKDIR /app\nCOPY a.txt /etc/a.txt\nCMD [\"sh\"]\n",
		"a.txt":      "a",
		"src/x.go":   "package x",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := mkfile(p, content); err != nil {
			b.Fatal(err)
		}
	}
}

func mkfile(p, content string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}
