package feed

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/vulndb"
)

// Small feed files of every format.
var files = map[string]string{
	"osv/GO-2099-0001.json": `{"id": "GO-2099-0001", "modified": "2099-01-01T00:00:00Z", "aliases": ["CVE-2099-0001"],
		"affected": [{"package": {"ecosystem": "Go", "name": "example.com/m"},
		"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}]}`,
	"osv/PYSEC-2099-1.yaml":    "id: PYSEC-2099-1\nmodified: 2099-01-01T00:00:00Z\naliases:\n- CVE-2099-0001\naffected:\n- package:\n    ecosystem: PyPI\n    name: Example\n  versions:\n  - '1.0'\n",
	"secdb/v3.10/main.yaml":    "distroversion: v3.10\nreponame: main\npackages:\n  - pkg:\n      name: openssl\n      secfixes:\n        1.1.1d-r0:\n          - CVE-2099-0002\n",
	"debian/DSA/list":          "[01 Jan 2099] DSA-9999-1 openssl - security update\n\t{CVE-2099-0002}\n\t[bullseye] - openssl 1.1.1w-0+deb11u1\n",
	"debian/tracker.json":      `{"openssl": {"CVE-2099-0002": {"description": "d", "releases": {"bookworm": {"status": "open", "urgency": "high"}}}}}`,
	"uct/active/CVE-2099-0002": "Candidate: CVE-2099-0002\nPublicDate: 2099-01-01\nPriority: high\nbionic_openssl: needed\n",
	"uct/active/00boilerplate": "Candidate:\nPublicDate:\n",
	"npm/1.json":               `{"id": 1, "module_name": "left-pad", "cves": ["CVE-2099-0003"], "vulnerable_versions": "<1.0.0", "patched_versions": ">=1.0.0", "title": "t"}`,
	"README.md":                "# not a feed\n",
	"osv/broken.json":          `{"id": "GO-2099-0002", "affected": [`,
}

func writeTree(t *testing.T, dir string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func writeZip(t *testing.T, p string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	zw.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeTarGz(t *testing.T, p string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: "./" + name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		io.WriteString(tw, body)
	}
	tw.WriteHeader(&tar.Header{Name: "link", Linkname: "/etc/passwd", Typeflag: tar.TypeSymlink})
	tw.Close()
	zw.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// logBuffer collects log lines.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), &buf
}

func TestBuildFromEveryKindOfInput(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	writeTree(t, tree)
	writeZip(t, filepath.Join(dir, "feeds.zip"))
	writeTarGz(t, filepath.Join(dir, "feeds.tar.gz"))
	single := filepath.Join(tree, "npm", "1.json")

	for _, in := range []string{tree, filepath.Join(dir, "feeds.zip"), filepath.Join(dir, "feeds.tar.gz"), single} {
		t.Run(filepath.Base(in), func(t *testing.T) {
			log, logs := logBuffer()
			out := filepath.Join(t.TempDir(), "vuln.db")
			var progress []Progress
			meta, err := Build(context.Background(), log, out, []string{in}, WithProgress(func(p Progress) { progress = append(progress, p) }), WithBuiltBy("test"))
			if err != nil {
				t.Fatal(err)
			}
			db, err := vulndb.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if in == single {
				if meta.Advisories != 1 || meta.Builder != "test" {
					t.Errorf("meta %+v", meta)
				}
				return
			}
			got := map[string]int{}
			for _, s := range meta.Sources {
				got[s.Name] = s.Records
			}
			want := map[string]int{"osv:Go": 1, "osv:PyPI": 1, "alpine-secdb": 1, "debian-dsa": 1, "debian-tracker": 1,
				"ubuntu-cve-tracker": 1, "nodejs-security-wg": 1, "osv": 0}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("records per source (-want +got):\n%s", diff)
			}
			// The Go and PyPI records are one vulnerability.
			if meta.Vulnerabilities != 3 {
				t.Errorf("%d vulnerabilities, want 3", meta.Vulnerabilities)
			}
			for _, k := range [][2]string{{"Go", "example.com/m"}, {"PyPI", "example"}, {"alpine:3.10", "openssl"},
				{"debian:11", "openssl"}, {"debian:12", "openssl"}, {"ubuntu:18.04", "openssl"}, {"npm", "left-pad"}} {
				advs, err := db.Advisories(context.Background(), k[0], k[1])
				if err != nil || len(advs) != 1 {
					t.Errorf("%v: %v, %v", k, advs, err)
				}
			}
			if !strings.Contains(logs.String(), "broken.json") || !strings.Contains(logs.String(), "malformed") {
				t.Errorf("no warning naming the broken file:\n%s", logs)
			}
			if len(progress) < 2 || progress[0].Done || !progress[len(progress)-1].Done || progress[len(progress)-1].Files != 8 {
				t.Errorf("progress %+v", progress)
			}
		})
	}
}

// TestNilLogger: a nil logger discards the warnings about malformed records
// (broken.json) instead of failing on the first one.
func TestNilLogger(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir)
	meta, err := Build(context.Background(), nil, filepath.Join(t.TempDir(), "vuln.db"), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	skipped := 0
	for _, s := range meta.Sources {
		for _, n := range s.Skipped {
			skipped += n
		}
	}
	if skipped == 0 {
		t.Errorf("broken.json was not counted as left out: %+v", meta.Sources)
	}
}

func TestForcedFormat(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "advisory.txt")
	os.WriteFile(p, []byte(files["npm/1.json"]), 0o644)
	log, _ := logBuffer()
	meta, err := Build(context.Background(), log, filepath.Join(dir, "db"), []string{p}, WithFormat(NSWG))
	if err != nil || meta.Advisories != 1 {
		t.Errorf("forced NSWG: %+v, %v", meta, err)
	}
	_, err = Build(context.Background(), log, filepath.Join(dir, "db"), []string{p}, WithFormat("cobol"))
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestLimitsAndErrors(t *testing.T) {
	dir := t.TempDir()
	writeZip(t, filepath.Join(dir, "feeds.zip"))
	log, logs := logBuffer()
	meta, err := Build(context.Background(), log, filepath.Join(dir, "db"), []string{filepath.Join(dir, "feeds.zip")}, WithMaxFileSize(100))
	if err != nil {
		t.Fatal(err)
	}
	var skipped int
	for _, s := range meta.Sources {
		skipped += s.Skipped["file too large"]
	}
	if skipped == 0 || !strings.Contains(logs.String(), "more than the limit") {
		t.Errorf("no file left out as too large: %+v\n%s", meta.Sources, logs)
	}

	if _, err := Build(context.Background(), log, filepath.Join(dir, "db"), []string{filepath.Join(dir, "nothing")}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing input: %v", err)
	}
	if _, err := Build(context.Background(), log, filepath.Join(dir, "db"), nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("no input: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(dir, "cancelled.db")
	if _, err := Build(ctx, log, out, []string{filepath.Join(dir, "feeds.zip")}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cancelled build left %s", out)
	}
}
