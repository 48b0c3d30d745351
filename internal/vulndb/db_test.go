package vulndb

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/lading-dev/lading/internal/errdefs"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

// sample is a handful of records from different sources that describe the
// same vulnerabilities under different IDs.
func sample() []Record {
	cvss, _ := CVSS("osv:Go", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
	return []Record{
		{
			ID: "GO-2023-1737", Aliases: []string{"CVE-2023-29401", "GHSA-2c4m-59x9-fr2g"}, Source: "osv:Go",
			Title: "Improper handling of filenames in gin", Description: "Details.",
			References: []string{"https://github.com/gin-gonic/gin/issues/3555"},
			Published:  day("2023-06-08"), Modified: day("2023-06-12"),
			Severities: []Severity{cvss},
			Affected: []Affected{{
				Namespace: "Go", Package: "github.com/gin-gonic/gin",
				Ranges: []Range{{Kind: RangeSemVer, Events: []Event{{Fixed, "1.9.1"}, {Introduced, "1.3.1-0.20190301021747-ccb9e902956d"}}}},
			}},
		},
		{
			ID: "GHSA-2c4m-59x9-fr2g", Aliases: []string{"CVE-2023-29401"}, Source: "ghsa",
			Title: "Gin Web Framework does not properly sanitize filename", Published: day("2023-06-07"),
			References: []string{"https://github.com/advisories/GHSA-2c4m-59x9-fr2g", "https://github.com/gin-gonic/gin/issues/3555"},
			Affected: []Affected{{
				Namespace: "Go", Package: "github.com/gin-gonic/gin",
				Ranges: []Range{{Kind: RangeEcosystem, Events: []Event{{Introduced, "1.3.1-0.20190301021747-ccb9e902956d"}, {Fixed, "1.9.1"}}}},
			}},
		},
		{
			ID: "CVE-2019-1547", Source: "alpine-secdb",
			Affected: []Affected{{
				Namespace: "alpine:3.10", Package: "openssl",
				Ranges: []Range{{Events: []Event{{Introduced, "0"}, {Fixed, "1.1.1d-r0"}}}},
			}},
		},
		{
			ID: "CVE-2019-1547", Source: "ubuntu-cve-tracker", Description: "Normally in OpenSSL EC groups ...",
			Severities: []Severity{{Source: "nvd", Type: SeverityCVSSv3, Vector: "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:N/A:N", Score: 4.7, Rating: RatingMedium}},
			Affected: []Affected{
				{Namespace: "ubuntu:18.04", Package: "openssl", Status: StatusAffected, Severity: Vendor("ubuntu-cve-tracker", "low")},
				{Namespace: "ubuntu:18.04", Package: "nodejs", Status: StatusNotAffected, Note: "uses system openssl1.0"},
			},
		},
		{
			ID: "PYSEC-2023-74", Aliases: []string{"CVE-2023-32681", "GHSA-j8r2-6x86-q33q"}, Source: "osv:PyPI",
			Affected: []Affected{{
				Namespace: "PyPI", Package: "Requests",
				Ranges:   []Range{{Events: []Event{{Introduced, "2.3.0"}, {Fixed, "2.31.0"}}}},
				Versions: []string{"2.3.0", "2.28.1", "2.30.0", "weird-1"},
			}},
		},
		{
			ID: "NSWG-ECO-410", Source: "nodejs-security-wg", Title: "merge-options prototype pollution",
			Affected: []Affected{{Namespace: "npm", Package: "merge-options", Ranges: []Range{{Kind: RangeNPM, Expr: "<=1.0.0"}}}},
		},
	}
}

func buildSample(t testing.TB, recs []Record) (*DB, Metadata) {
	t.Helper()
	b := NewBuilder(discard)
	for _, r := range recs {
		b.Add(r)
	}
	path := filepath.Join(t.TempDir(), FileName)
	meta, err := b.Write(context.Background(), path, Metadata{BuiltAt: day("2026-11-22"), Builder: "test"})
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, meta
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, meta := buildSample(t, sample())

	if meta.Vulnerabilities != 4 || meta.Packages != 6 || meta.Advisories != 7 {
		t.Errorf("counts: %d vulnerabilities, %d packages, %d advisories; want 4, 6, 7", meta.Vulnerabilities, meta.Packages, meta.Advisories)
	}
	if got := db.Metadata(); !cmp.Equal(got, meta, cmpopts.EquateEmpty()) {
		t.Errorf("stored metadata differs: %s", cmp.Diff(meta, got, cmpopts.EquateEmpty()))
	}

	advs, err := db.Advisories(ctx, "Go", "github.com/gin-gonic/gin")
	if err != nil {
		t.Fatal(err)
	}
	want := []Advisory{
		{VulnID: "CVE-2023-29401", SourceID: "GHSA-2c4m-59x9-fr2g", Source: "ghsa", Status: StatusAffected,
			Ranges: []Range{{Kind: RangeEcosystem, Events: []Event{{Introduced, "1.3.1-0.20190301021747-ccb9e902956d"}, {Fixed, "1.9.1"}}}}},
		{VulnID: "CVE-2023-29401", SourceID: "GO-2023-1737", Source: "osv:Go", Status: StatusAffected,
			// Sorted by version on the way in.
			Ranges: []Range{{Kind: RangeSemVer, Events: []Event{{Introduced, "1.3.1-0.20190301021747-ccb9e902956d"}, {Fixed, "1.9.1"}}}}},
	}
	if diff := cmp.Diff(want, advs, cmpopts.IgnoreUnexported(Advisory{})); diff != "" {
		t.Errorf("gin advisories (-want +got):\n%s", diff)
	}

	v, err := db.Vulnerability(ctx, advs[0])
	if err != nil {
		t.Fatal(err)
	}
	wantV := Vulnerability{
		ID:      "CVE-2023-29401",
		Aliases: []string{"GHSA-2c4m-59x9-fr2g", "GO-2023-1737"},
		// No record has the CVE's own ID: the first source by name wins.
		Title:       "Gin Web Framework does not properly sanitize filename",
		Description: "Details.",
		References:  []string{"https://github.com/advisories/GHSA-2c4m-59x9-fr2g", "https://github.com/gin-gonic/gin/issues/3555"},
		Published:   day("2023-06-07"),
		Modified:    day("2023-06-12"),
		Severities:  []Severity{{Source: "osv:Go", Type: SeverityCVSSv3, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Score: 9.8, Rating: RatingCritical}},
	}
	if diff := cmp.Diff(wantV, v); diff != "" {
		t.Errorf("vulnerability (-want +got):\n%s", diff)
	}

	// PyPI names are normalized on both sides; versions the range covers
	// are dropped, the others kept.
	advs, err = db.Advisories(ctx, "PyPI", "requests")
	if err != nil || len(advs) != 1 {
		t.Fatalf("requests: %v, %v", advs, err)
	}
	if diff := cmp.Diff([]string{"weird-1"}, advs[0].Versions); diff != "" {
		t.Errorf("versions kept (-want +got):\n%s", diff)
	}
	if advs[0].VulnID != "CVE-2023-32681" {
		t.Errorf("VulnID = %q", advs[0].VulnID)
	}

	advs, err = db.Advisories(ctx, "ubuntu:18.04", "nodejs")
	if err != nil || len(advs) != 1 || advs[0].Status != StatusNotAffected || advs[0].Note != "uses system openssl1.0" {
		t.Errorf("nodejs: %+v, %v", advs, err)
	}
	advs, _ = db.Advisories(ctx, "ubuntu:18.04", "openssl")
	if len(advs) != 1 || advs[0].Severity.Rating != RatingLow {
		t.Errorf("openssl: %+v", advs)
	}
	v, _ = db.Vulnerability(ctx, advs[0])
	if v.Description != "Normally in OpenSSL EC groups ..." {
		t.Errorf("CVE text: %+v", v)
	}

	for _, k := range [][2]string{{"Go", "github.com/gin-gonic"}, {"go", "github.com/gin-gonic/gin"}, {"npm", ""}, {"", ""}, {"zzz", "a"}} {
		if advs, err := db.Advisories(ctx, k[0], k[1]); err != nil || len(advs) != 0 {
			t.Errorf("Advisories(%q, %q) = %v, %v; want none", k[0], k[1], advs, err)
		}
	}
	var keys []string
	db.Keys(func(ns, name string) bool { keys = append(keys, ns+" "+name); return true })
	wantKeys := []string{"Go github.com/gin-gonic/gin", "PyPI requests", "alpine:3.10 openssl", "npm merge-options", "ubuntu:18.04 nodejs", "ubuntu:18.04 openssl"}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestAliasesNeverJoinTwoCVEs(t *testing.T) {
	recs := []Record{
		{ID: "GHSA-aaaa", Aliases: []string{"CVE-2020-0001", "CVE-2020-0002"}, Source: "ghsa",
			Affected: []Affected{{Namespace: "npm", Package: "a"}}},
		{ID: "CVE-2020-0001", Source: "nvd", Affected: []Affected{{Namespace: "npm", Package: "b"}}},
		{ID: "CVE-2020-0002", Source: "nvd", Affected: []Affected{{Namespace: "npm", Package: "c"}}},
	}
	db, meta := buildSample(t, recs)
	if meta.Vulnerabilities != 2 {
		t.Errorf("%d vulnerabilities, want 2", meta.Vulnerabilities)
	}
	ids := map[string]string{}
	for _, p := range []string{"a", "b", "c"} {
		advs, _ := db.Advisories(context.Background(), "npm", p)
		ids[p] = advs[0].VulnID
	}
	if ids["b"] == ids["c"] {
		t.Errorf("two CVEs merged: %v", ids)
	}
}

func TestMergeSameSource(t *testing.T) {
	// A DSA and its regression update: one advisory with both fixes.
	recs := []Record{
		{ID: "CVE-2023-0001", SourceID: "DSA-100-1", Source: "debian-dsa", Affected: []Affected{{Namespace: "debian:11", Package: "p",
			Ranges: []Range{{Events: []Event{{Introduced, "0"}, {Fixed, "1.0-1+deb11u1"}}}}}}},
		{ID: "CVE-2023-0001", SourceID: "DSA-100-2", Source: "debian-dsa", Affected: []Affected{{Namespace: "debian:11", Package: "p",
			Ranges: []Range{{Events: []Event{{Introduced, "0"}, {Fixed, "1.0-1+deb11u2"}}}}}}},
		{ID: "CVE-2023-0001", SourceID: "DSA-100-1", Source: "debian-dsa", Affected: []Affected{{Namespace: "debian:10", Package: "p", Status: StatusNotAffected}}},
		// The same record again (an index next to its files): counted once.
		{ID: "CVE-2023-0001", SourceID: "DSA-100-1", Source: "debian-dsa", Affected: []Affected{{Namespace: "debian:10", Package: "p", Status: StatusNotAffected}}},
	}
	db, meta := buildSample(t, recs)
	if meta.Advisories != 2 {
		t.Errorf("%d advisories, want 2", meta.Advisories)
	}
	advs, _ := db.Advisories(context.Background(), "debian:11", "p")
	if len(advs) != 1 || len(advs[0].Ranges) != 2 || advs[0].SourceID != "DSA-100-1" {
		t.Errorf("advisories: %+v", advs)
	}
	eco, sv := Comparators("debian:11")
	aff, fixes, err := advs[0].Affects(eco, sv, "1.0-1+deb11u1")
	if err != nil || !aff || !cmp.Equal(fixes, []string{"1.0-1+deb11u2"}) {
		t.Errorf("Affects(1.0-1+deb11u1) = %v, %v, %v", aff, fixes, err)
	}
	if src := db.Metadata().Sources; len(src) != 1 || src[0].Records != 3 || src[0].Advisories != 2 || src[0].Skipped["duplicate record"] != 1 {
		t.Errorf("sources: %+v", src)
	}
}

func TestOpenErrors(t *testing.T) {
	db, _ := buildSample(t, sample())
	good, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withSchema := func(v uint32) []byte {
		b := append([]byte(nil), good...)
		binary.LittleEndian.PutUint32(b[8:], v)
		binary.LittleEndian.PutUint32(b[124:], crc32.Checksum(b[:124], castagnoli))
		return b
	}
	flipped := append([]byte(nil), good...)
	flipped[20] ^= 0xff

	tests := []struct {
		name  string
		path  string
		class error
		says  string
	}{
		{"missing", filepath.Join(dir, "nothing.db"), errdefs.ErrNotFound, "lading db update"},
		{"empty", write("empty", nil), errdefs.ErrCorrupt, "not a lading vulnerability database"},
		{"not a db", write("text", []byte(strings.Repeat("hello ", 100))), errdefs.ErrCorrupt, "not a lading vulnerability database"},
		{"newer schema", write("new", withSchema(SchemaVersion+1)), errdefs.ErrUnsupported, "upgrade lading"},
		{"older schema", write("old", withSchema(SchemaVersion-1)), errdefs.ErrUnsupported, "lading db update"},
		{"truncated", write("trunc", good[:len(good)-10]), errdefs.ErrCorrupt, "truncated"},
		{"bad header", write("flip", flipped), errdefs.ErrCorrupt, "checksum"},
		{"directory", dir, errdefs.ErrInvalidArgument, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(tt.path)
			if err == nil {
				db.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, tt.class) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %v; want class %v mentioning %q", err, tt.class, tt.says)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	db, _ := buildSample(t, sample())
	db.Close()
	if _, err := db.Advisories(context.Background(), "npm", "merge-options"); err == nil {
		t.Error("lookup after Close succeeded")
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A write that fails leaves the old file and no temporary file.
	err := WriteFileAtomic(path, func(w *os.File) error {
		w.Write([]byte("partial"))
		return errors.New("disk on fire")
	})
	if err == nil {
		t.Fatal("no error")
	}
	// A cancelled build does not even start writing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := NewBuilder(discard)
	for _, r := range sample() {
		b.Add(r)
	}
	if _, err := b.Write(ctx, path, Metadata{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Write: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %v", entries)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("file = %q", b)
	}
}

// TestWriteSpecialFiles: a link is written through (it stays a link to the
// new file); a pipe or a directory is refused and left as it was.
func TestWriteSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.db")
	os.WriteFile(target, []byte("old"), 0o644)
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink("real.db", link); err != nil {
		t.Fatal(err)
	}
	write := func(f *os.File) error { _, err := f.WriteString("new"); return err }
	if err := WriteFileAtomic(link, write); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(target); string(b) != "new" {
		t.Errorf("the link's target holds %q", b)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	for _, p := range []string{fifo, sub} {
		err := WriteFileAtomic(p, write)
		if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), p) {
			t.Errorf("write over %s: %v", p, err)
		}
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the pipe was replaced: %v %v", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 4 {
		t.Errorf("directory holds %v", entries)
	}
}

func TestOpenKeepsReadingAfterReplace(t *testing.T) {
	db, _ := buildSample(t, sample())
	b := NewBuilder(discard)
	b.Add(Record{ID: "X-1", Source: "s", Affected: []Affected{{Namespace: "npm", Package: "x"}}})
	if _, err := b.Write(context.Background(), db.Path(), Metadata{}); err != nil {
		t.Fatal(err)
	}
	advs, err := db.Advisories(context.Background(), "npm", "merge-options")
	if err != nil || len(advs) != 1 {
		t.Errorf("old mapping after replace: %v, %v", advs, err)
	}
	db2, err := Open(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if advs, _ := db2.Advisories(context.Background(), "npm", "x"); len(advs) != 1 {
		t.Errorf("new file: %v", advs)
	}
}

// FuzzOpen feeds damaged databases to Open and lookups: errors, never a
// panic.
func FuzzOpen(f *testing.F) {
	b := NewBuilder(discard)
	for _, r := range sample() {
		b.Add(r)
	}
	path := filepath.Join(f.TempDir(), FileName)
	if _, err := b.Write(context.Background(), path, Metadata{}); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	f.Add(good, 0, byte(0))
	f.Add(good, 200, byte(0xff))
	f.Add(good[:headerSize], 0, byte(0))
	f.Fuzz(func(t *testing.T, data []byte, at int, x byte) {
		data = append([]byte(nil), data...)
		if len(data) > 0 && at >= 0 {
			data[at%len(data)] ^= x
		}
		if len(data) >= headerSize && string(data[:8]) == magic {
			// Keep the header valid so that the fuzzer reaches the body.
			binary.LittleEndian.PutUint32(data[124:], crc32.Checksum(data[:124], castagnoli))
		}
		db, err := newDB("fuzz", data)
		if err != nil {
			return
		}
		ctx := context.Background()
		db.Keys(func(ns, name string) bool {
			advs, _ := db.Advisories(ctx, ns, name)
			for _, a := range advs {
				db.Vulnerability(ctx, a)
			}
			return true
		})
	})
}
