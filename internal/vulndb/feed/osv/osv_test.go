package osv

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/vulndb"
	"github.com/lading-dev/lading/internal/vulndb/feed/feedtest"
)

func parseFile(t *testing.T, name string) *feedtest.Recorder {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	rec := &feedtest.Recorder{}
	if err := Parse(context.Background(), bytes.NewReader(b), name, rec); err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return rec
}

func ev(k vulndb.EventKind, v string) vulndb.Event { return vulndb.Event{Kind: k, Version: v} }

func TestGo(t *testing.T) {
	rec := parseFile(t, "go.json")
	cvss, _ := vulndb.CVSS("osv:Go", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N")
	want := []vulndb.Record{{
		ID: "GO-2099-0001", Aliases: []string{"CVE-2099-1000", "GHSA-aaaa-bbbb-cccc"}, Source: "osv:Go",
		Title: "Header injection in example.com/web", Description: "A crafted file name ends up in a header.",
		References: []string{"https://example.com/web/pull/1", "https://example.com/web/releases/v1.9.1"},
		Modified:   time.Date(2099, 1, 3, 0, 0, 0, 0, time.UTC),
		// "0001-01-01T00:00:00Z" is parsed; the database stores it as unknown.
		Published:  time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		Severities: []vulndb.Severity{cvss},
		Affected: []vulndb.Affected{
			{Namespace: "Go", Package: "example.com/web", Ranges: []vulndb.Range{{Kind: vulndb.RangeSemVer,
				Events: []vulndb.Event{ev(vulndb.Introduced, "1.3.1-0.20190301021747-ccb9e902956d"), ev(vulndb.Fixed, "1.9.1")}}}},
			{Namespace: "Go", Package: "stdlib", Ranges: []vulndb.Range{{Kind: vulndb.RangeSemVer,
				Events: []vulndb.Event{ev(vulndb.Introduced, "0"), ev(vulndb.Fixed, "1.20.5"), ev(vulndb.Introduced, "1.21.0-0"), ev(vulndb.LastAffected, "1.21.1")}}}},
		},
	}}
	if diff := cmp.Diff(want, rec.Records); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if len(rec.Skipped) != 0 {
		t.Errorf("skipped: %v", rec.Skipped)
	}
}

func TestPyPIYAML(t *testing.T) {
	rec := parseFile(t, "pypi.yaml")
	if len(rec.Records) != 1 {
		t.Fatalf("records: %v", rec.IDs())
	}
	r := rec.Records[0]
	want := []vulndb.Affected{{
		Namespace: "PyPI", Package: "Example_Requests", Versions: []string{"2.3.0", "2.10.0", "2.30.0"},
		Ranges: []vulndb.Range{{Kind: vulndb.RangeEcosystem, Events: []vulndb.Event{ev(vulndb.Introduced, "2.3.0"), ev(vulndb.Fixed, "2.31.0")}}},
	}}
	if diff := cmp.Diff(want, r.Affected); diff != "" {
		t.Errorf("affected (-want +got):\n%s", diff)
	}
	if r.Description != "Proxy credentials leak on redirects.\n\n" && r.Description != "Proxy credentials leak on redirects.\n" {
		t.Errorf("details = %q", r.Description)
	}
	if !r.Published.Equal(time.Date(2099, 5, 26, 18, 15, 0, 0, time.UTC)) {
		t.Errorf("published %v", r.Published)
	}
	wantSkips := "osv:PyPI: GIT range ×2\nosv:PyPI: package without usable ranges ×1"
	if got := rec.Summary(); got != wantSkips {
		t.Errorf("skips:\n%s\nwant:\n%s", got, wantSkips)
	}
}

func TestDistroAdvisoryBecomesOneRecordPerCVE(t *testing.T) {
	rec := parseFile(t, "alma.json")
	if diff := cmp.Diff([]string{"CVE-2099-4435 (ALSA-2099:0140)", "CVE-2099-2718 (ALSA-2099:0140)"}, rec.IDs()); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
	a := rec.Records[0].Affected[0]
	if a.Namespace != "almalinux:10" || a.Severity.Rating != vulndb.RatingHigh || a.Severity.Vector != "Important" {
		t.Errorf("affected: %+v", a)
	}
	if rec.Records[0].Title != "Important: python3.12 security update" {
		t.Errorf("title %q", rec.Records[0].Title)
	}
}

func TestSeveritiesWithdrawnMalformed(t *testing.T) {
	rec := parseFile(t, "ubuntu-and-withdrawn.json")
	if diff := cmp.Diff([]string{"UBUNTU-CVE-2099-3000", "GHSA-mmmm-nnnn-oooo"}, rec.IDs()); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
	u := rec.Records[0]
	if len(u.Severities) != 2 || u.Severities[0].Vector != "medium" || u.Severities[1].Type != vulndb.SeverityCVSSv4 || u.Severities[1].Score != 9.3 {
		t.Errorf("severities: %+v", u.Severities)
	}
	if u.Affected[0].Namespace != "ubuntu:22.04" || u.Affected[0].Severity.Rating != vulndb.RatingHigh {
		t.Errorf("affected 0: %+v", u.Affected[0])
	}
	if u.Affected[1].Namespace != "ubuntu-pro:18.04" {
		t.Errorf("affected 1: %+v", u.Affected[1])
	}
	g := rec.Records[1]
	if len(g.Affected) != 1 || g.Affected[0].Package != "good" || g.Severities[0].Rating != vulndb.RatingMedium {
		t.Errorf("GHSA: %+v", g)
	}
	wantSkips := "osv: malformed record ×1\nosv:npm: malformed record ×2\nosv:npm: withdrawn ×1"
	if got := rec.Summary(); got != wantSkips {
		t.Errorf("skips:\n%s\nwant:\n%s", got, wantSkips)
	}
	for _, err := range rec.Errors {
		if !strings.Contains(err.Error(), "ubuntu-and-withdrawn.json") {
			t.Errorf("error does not name the file: %v", err)
		}
	}
}

func TestNotOSV(t *testing.T) {
	for _, in := range []string{"", "{", "[1, 2", "key: [unclosed", "\"a string\""} {
		if err := Parse(context.Background(), strings.NewReader(in), "x.json", &feedtest.Recorder{}); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

func TestSniff(t *testing.T) {
	for _, name := range []string{"go.json", "pypi.yaml", "alma.json", "ubuntu-and-withdrawn.json"} {
		b, _ := os.ReadFile(filepath.Join("testdata", name))
		if !Sniff(b[:min(len(b), 4096)]) {
			t.Errorf("Sniff(%s) = false", name)
		}
	}
	for _, s := range []string{`{"module_name": "x", "id": 1}`, "distroversion: v3.10\npackages:", "Candidate: CVE-1"} {
		if Sniff([]byte(s)) {
			t.Errorf("Sniff(%q) = true", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"go.json", "pypi.yaml", "alma.json", "ubuntu-and-withdrawn.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec := &feedtest.Recorder{}
		if err := Parse(context.Background(), bytes.NewReader(b), "fuzz", rec); err != nil {
			return
		}
		for _, r := range rec.Records {
			if r.ID == "" {
				t.Fatal("record without ID")
			}
			for _, a := range r.Affected {
				if a.Namespace == "" || a.Package == "" {
					t.Fatalf("affected without namespace or name: %+v", a)
				}
				if len(a.Ranges) == 0 && len(a.Versions) == 0 {
					t.Fatalf("affected without ranges or versions: %+v", a)
				}
			}
		}
	})
}
