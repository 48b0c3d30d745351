package vulndb

// Benchmarks of the database on synthetic data shaped like the real feeds
// (see README.md, "Vulnerability database"):
//
//	go test ./internal/vulndb -run '^$' -bench . -benchtime 2000x
//
// LADING_BENCH_ADVISORIES sets the number of advisories (default 200000;
// 1000000 for the figure per million). BenchmarkSize reports the file size
// scaled to one million advisories. LADING_BENCH_DB=FILE benchmarks an
// existing database instead (one built from real feeds), looking up every
// 50th package in it.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func benchAdvisories() int {
	if n, err := strconv.Atoi(os.Getenv("LADING_BENCH_ADVISORIES")); err == nil && n > 0 {
		return n
	}
	return 200000
}

var namespaces = []string{"npm", "PyPI", "Go", "Maven", "crates.io", "alpine:3.20", "debian:12", "ubuntu:22.04", "almalinux:9"}

// synthetic returns records with about n advisories in total: each
// vulnerability affects one to three packages, with a 300-byte description,
// references and a CVSS vector, like the OSV and distribution feeds.
func synthetic(n int) ([]Record, [][2]string) {
	r := rand.New(rand.NewPCG(1, 2))
	cvss, _ := CVSS("nvd", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N")
	desc := strings.Repeat("A crafted input makes the parser read past its buffer. ", 6)
	pkgs := n / 3
	var recs []Record
	var keys [][2]string
	seen := map[[2]string]bool{}
	for i, count := 0, 0; count < n; i++ {
		rec := Record{
			ID: fmt.Sprintf("CVE-%d-%05d", 2000+i%26, i), Source: "synthetic",
			Aliases:     []string{fmt.Sprintf("GHSA-%04x-%04x-%04x", i, i*7%65536, i*13%65536)},
			Title:       fmt.Sprintf("Out-of-bounds read in package %d", i),
			Description: desc, References: []string{fmt.Sprintf("https://example.org/advisories/%d", i), "https://example.org/fix/" + strconv.Itoa(i)},
			Published: time.Unix(1.5e9+int64(i)*1000, 0), Modified: time.Unix(1.6e9, 0), Severities: []Severity{cvss},
		}
		for range 1 + r.IntN(3) {
			ns := namespaces[r.IntN(len(namespaces))]
			name := fmt.Sprintf("package-%d", r.IntN(pkgs))
			k := [2]string{ns, name}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
			rec.Affected = append(rec.Affected, Affected{
				Namespace: ns, Package: name,
				Ranges: []Range{{Events: []Event{{Introduced, "0"}, {Fixed, fmt.Sprintf("%d.%d.%d", 1+r.IntN(9), r.IntN(20), r.IntN(30))}}}},
			})
		}
		count += len(rec.Affected)
		recs = append(recs, rec)
	}
	return recs, keys
}

var bench struct {
	once sync.Once
	dir  string
	path string
	keys [][2]string
	meta Metadata
	err  error
}

func benchDB(b *testing.B) (string, [][2]string, Metadata) {
	b.Helper()
	bench.once.Do(func() {
		if p := os.Getenv("LADING_BENCH_DB"); p != "" {
			db, err := Open(p)
			if err != nil {
				bench.err = err
				return
			}
			defer db.Close()
			bench.path, bench.meta = p, db.Metadata()
			i := 0
			bench.err = db.Keys(func(ns, name string) bool {
				if i++; i%50 == 0 {
					bench.keys = append(bench.keys, [2]string{ns, name})
				}
				return true
			})
			return
		}
		bench.dir, bench.err = os.MkdirTemp("", "lading-vulndb-bench-")
		if bench.err != nil {
			return
		}
		recs, keys := synthetic(benchAdvisories())
		bld := NewBuilder(discard)
		for _, r := range recs {
			bld.Add(r)
		}
		bench.path, bench.keys = filepath.Join(bench.dir, FileName), keys
		bench.meta, bench.err = bld.Write(context.Background(), bench.path, Metadata{})
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.path, bench.keys, bench.meta
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// BenchmarkOpen opens and closes the database (goal: under 10 ms).
func BenchmarkOpen(b *testing.B) {
	path, _, _ := benchDB(b)
	b.ResetTimer()
	for b.Loop() {
		db, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
}

// BenchmarkLookup looks up packages that are in the database (goal: under
// 5 µs).
func BenchmarkLookup(b *testing.B) {
	path, keys, _ := benchDB(b)
	db, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	total := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		k := keys[r.IntN(len(keys))]
		advs, err := db.Advisories(ctx, k[0], k[1])
		if err != nil || len(advs) == 0 {
			b.Fatalf("%v: %v, %v", k, advs, err)
		}
		total += len(advs)
	}
	b.ReportMetric(float64(total)/float64(b.N), "advisories/lookup")
}

// BenchmarkLookupMiss looks up packages that are not in the database, the
// common case for a scan.
func BenchmarkLookupMiss(b *testing.B) {
	path, _, _ := benchDB(b)
	db, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if advs, _ := db.Advisories(ctx, "npm", "absent-"+strconv.Itoa(i&1023)); len(advs) != 0 {
			b.Fatal("found")
		}
	}
}

// BenchmarkSize reports the file's size per advisory and per million
// advisories.
func BenchmarkSize(b *testing.B) {
	path, _, meta := benchDB(b)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
	}
	per := float64(st.Size()) / float64(meta.Advisories)
	b.ReportMetric(per, "bytes/advisory")
	b.ReportMetric(per*1e6/(1<<20), "MiB/1M-advisories")
}

// BenchmarkBuild merges and writes 20000 advisories per iteration.
func BenchmarkBuild(b *testing.B) {
	recs, _ := synthetic(20000)
	path := filepath.Join(b.TempDir(), FileName)
	b.ResetTimer()
	for b.Loop() {
		bld := NewBuilder(discard)
		for _, r := range recs {
			bld.Add(r)
		}
		if _, err := bld.Write(context.Background(), path, Metadata{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(20000, "advisories/op")
}
