package bench

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/corpustest"
)

// BenchmarkImages runs, for every OCI image of the corpus, the baselines
// (tar -xzf and tar -tzf of its layers) and lading's save, load, export and
// export-dir, each as a sub-benchmark with the image's uncompressed bytes
// as its throughput unit. Compare the ns/op of an op with its image's
// baselines from the same run:
//
//	go test ./internal/bench -run '^$' -bench Images -benchtime 5x
func BenchmarkImages(b *testing.B) {
	corpus := corpustest.Dir(b)
	files, err := CorpusImages(corpus, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, file := range files {
		f, err := Prepare(ctx, file, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		for _, op := range append(f.Baselines(), f.Ops()...) {
			b.Run(strings.TrimSuffix(filepath.Base(file), ".oci.tar")+"/"+op.Name, func(b *testing.B) {
				b.SetBytes(f.Bytes)
				for i := 0; i < b.N; i++ {
					if err := op.Run(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		f.Close()
	}
}

// TestImagesHarness runs the bench harness once on the smallest corpus
// image so that it cannot rot; it asserts nothing about timings.
func TestImagesHarness(t *testing.T) {
	corpus := corpustest.Dir(t)
	rs, err := Images(context.Background(), corpus, Options{Runs: 1, Only: []string{"rhel-8-rpmdb-bdb.oci.tar"}, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 4 {
		t.Fatalf("%d results, want save, load, export and export-dir", len(rs))
	}
	for _, r := range rs {
		if r.Time <= 0 || r.Baseline <= 0 || r.Stream <= 0 {
			t.Errorf("%+v: a time is missing", r)
		}
	}
}
