package feed

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/vulndb"
)

// corpusDB builds a database from every feed of the corpus once per test
// binary (about 20 seconds).
var corpusDB struct {
	once sync.Once
	dir  string
	meta vulndb.Metadata
	err  error
}

func buildCorpus(t testing.TB) (string, vulndb.Metadata) {
	t.Helper()
	feeds := filepath.Join(corpustest.Dir(t), "feeds")
	if _, bench := t.(*testing.B); testing.Short() && !bench {
		t.Skip("building from the corpus feeds takes about 20 seconds; not in -short mode")
	}
	corpusDB.once.Do(func() {
		corpusDB.dir, corpusDB.err = os.MkdirTemp("", "lading-feed-corpus-")
		if corpusDB.err != nil {
			return
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		corpusDB.meta, corpusDB.err = Build(context.Background(), log, filepath.Join(corpusDB.dir, vulndb.FileName), []string{feeds})
	})
	if corpusDB.err != nil {
		t.Fatal(corpusDB.err)
	}
	return filepath.Join(corpusDB.dir, vulndb.FileName), corpusDB.meta
}

func TestMain(m *testing.M) {
	code := m.Run()
	if corpusDB.dir != "" {
		os.RemoveAll(corpusDB.dir)
	}
	os.Exit(code)
}

// TestCorpusFeeds builds from the corpus' feeds and checks the counts
// against the corpus README and a few records it names.
func TestCorpusFeeds(t *testing.T) {
	path, meta := buildCorpus(t)
	src := map[string]vulndb.SourceInfo{}
	for _, s := range meta.Sources {
		src[s.Name] = s
		t.Logf("%-20s files %6d records %6d advisories %7d skipped %v", s.Name, s.Files, s.Records, s.Advisories, s.Skipped)
	}
	t.Logf("%d vulnerabilities, %d advisories, %d packages", meta.Vulnerabilities, meta.Advisories, meta.Packages)

	// The README's record counts: every record is read or counted. (The
	// README's 2662 for PyPI counts the zip's files, one of which is
	// .id-allocator; its 468 for the Node Security WG counts index.json,
	// which repeats the other 467.)
	counts := []struct {
		source  string
		files   int
		records int // records in the feed, before splitting and skipping
	}{
		{"osv:Go", 4291, 4291},
		{"osv:PyPI", 2661, 2661},
		{"osv:crates.io", 1206, 1206},
		{"nodejs-security-wg", 468, 467 + 467},
		{"alpine-secdb", 18, -1},
		{"debian-dsa", 1, -1},
		{"debian-dla", 1, -1},
		{"ubuntu-cve-tracker", 32931, -1},
	}
	for _, c := range counts {
		s, ok := src[c.source]
		if !ok {
			t.Errorf("no source %s", c.source)
			continue
		}
		if s.Files != c.files {
			t.Errorf("%s: %d files, want %d", c.source, s.Files, c.files)
		}
		if c.records >= 0 {
			got := s.Records
			for _, reason := range []string{"withdrawn", "duplicate record", "malformed file", "record without packages", "package without usable ranges"} {
				got += s.Skipped[reason]
			}
			if got != c.records {
				t.Errorf("%s: %d records read or skipped, want %d (%+v)", c.source, got, c.records, s)
			}
		}
	}
	if n := src["osv:AlmaLinux"].Files; n != 5680 {
		t.Errorf("AlmaLinux: %d files, want 5680", n)
	}

	db, err := vulndb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	find := func(ns, pkg, vuln, sourceID string) *vulndb.Advisory {
		t.Helper()
		advs, err := db.Advisories(ctx, ns, pkg)
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range advs {
			if a.VulnID == vuln && (sourceID == "" || a.SourceID == sourceID) {
				return &advs[i]
			}
		}
		t.Errorf("%s %s: no %s (%s) among %d advisories", ns, pkg, vuln, sourceID, len(advs))
		return nil
	}
	// Named in the corpus README.
	find("Go", "github.com/gin-gonic/gin", "CVE-2023-29401", "GO-2023-1737")
	find("Go", "golang.org/x/text", "CVE-2021-38561", "GO-2021-0113")
	find("Go", "golang.org/x/text", "CVE-2022-32149", "GO-2022-1059")
	find("PyPI", "requests", "CVE-2023-32681", "PYSEC-2023-74")
	find("almalinux:10", "python-unversioned-command", "CVE-2025-4435", "ALSA-2025:10140")
	find("debian:11", "xorg-server", "CVE-2023-1393", "DSA-5380-1")
	find("debian:10", "xorg-server", "CVE-2023-1393", "DLA-3372-1")
	if a := find("alpine:3.10", "openssl", "CVE-2019-1547", ""); a != nil && a.Ranges[0].Events[1].Version != "1.1.1d-r0" {
		t.Errorf("alpine openssl: %+v", a)
	}
	if a := find("ubuntu:18.04", "openssl", "CVE-2019-1547", ""); a != nil && a.Severity.Rating != vulndb.RatingLow {
		t.Errorf("ubuntu openssl: %+v", a)
	}
	advs, _ := db.Advisories(ctx, "npm", "lodash")
	var nswg []string
	for _, a := range advs {
		if a.Source == "nodejs-security-wg" {
			nswg = append(nswg, a.Ranges[0].Expr)
		}
	}
	if !slices.Contains(nswg, "<4.17.5") || !slices.Contains(nswg, "<4.17.11") {
		t.Errorf("lodash ranges %v; the README names < 4.17.5 and < 4.17.11", nswg)
	}

	// One vulnerability across sources: CVE-2019-1547 in Alpine, Ubuntu
	// and the Debian lists shares one record with the text of each.
	a := find("alpine:3.10", "openssl", "CVE-2019-1547", "")
	if a != nil {
		v, err := db.Vulnerability(ctx, *a)
		if err != nil || v.Description == "" || len(v.Severities) == 0 {
			t.Errorf("CVE-2019-1547: %+v, %v", v, err)
		}
	}
}

// BenchmarkBuildCorpus builds from the corpus feeds.
func BenchmarkBuildCorpus(b *testing.B) {
	feeds := filepath.Join(corpustest.Dir(b), "feeds")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	out := filepath.Join(b.TempDir(), vulndb.FileName)
	var meta vulndb.Metadata
	for b.Loop() {
		var err error
		if meta, err = Build(context.Background(), log, out, []string{feeds}); err != nil {
			b.Fatal(err)
		}
	}
	st, _ := os.Stat(out)
	b.ReportMetric(float64(meta.Advisories), "advisories")
	b.ReportMetric(float64(st.Size())/(1<<20), "MiB")
}

// corpusKeys are packages that real scans look up: OS packages of the
// corpus images and application packages.
var corpusKeys = [][2]string{
	{"alpine:3.10", "openssl"}, {"alpine:3.10", "busybox"}, {"alpine:3.10", "musl"}, {"alpine:3.10", "zlib"},
	{"ubuntu:18.04", "openssl"}, {"ubuntu:18.04", "glibc"}, {"ubuntu:18.04", "systemd"}, {"ubuntu:18.04", "bash"},
	{"debian:11", "openssl"}, {"debian:11", "curl"}, {"almalinux:9", "openssl"}, {"almalinux:9", "kernel"},
	{"npm", "lodash"}, {"Go", "golang.org/x/net"}, {"PyPI", "requests"}, {"crates.io", "openssl"},
}

// BenchmarkOpenCorpus opens the database built from the corpus feeds.
func BenchmarkOpenCorpus(b *testing.B) {
	path, _ := buildCorpus(b)
	for b.Loop() {
		db, err := vulndb.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
}

// BenchmarkLookupCorpus looks up real packages in the corpus database; the
// advisories per lookup vary from one (npm lodash) to hundreds (Ubuntu's
// glibc across its tracker history).
func BenchmarkLookupCorpus(b *testing.B) {
	path, _ := buildCorpus(b)
	db, err := vulndb.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	n := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := corpusKeys[i%len(corpusKeys)]
		advs, err := db.Advisories(ctx, k[0], k[1])
		if err != nil {
			b.Fatal(err)
		}
		n += len(advs)
	}
	b.ReportMetric(float64(n)/float64(b.N), "advisories/lookup")
}
