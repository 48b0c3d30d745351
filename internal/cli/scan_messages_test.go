package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/report"
)

// buildDB builds a database from hand-written feed files.
func buildDB(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	feeds := filepath.Join(dir, "feeds")
	for name, body := range files {
		p := filepath.Join(feeds, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(dir, "vuln.db")
	(&lading{t: t, root: dir}).ok("db", "build", "--from", feeds, "-o", db)
	return db
}

func scanJSON(t *testing.T, out string) report.Report {
	t.Helper()
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%.400s", err, out)
	}
	return r
}

// A scan of an OS release the database has no advisories for says so, in
// the table, in JSON and with its own exit code, instead of a clean total.
func TestScanUnknownOSRelease(t *testing.T) {
	db := tinyDB(t) // alpine 3.20 only
	l := newLading(t)
	newer := writeLayout(t, t.TempDir(), []testLayer{gzLayer(tarBytes(t,
		tarFile{"etc/alpine-release", "3.22.1\n"}, tarFile{"lib/apk/db/installed", apkInstalled("musl=1.2.5-r10")}))}, nil)
	msg := "The vulnerability database has no advisories for alpine:3.22 (the image is alpine 3.22.1); it covers alpine:3.20. The OS packages were not checked."

	out, errs, code := l.run("scan", "--db", db, newer)
	if code != 0 || !strings.Contains(out, "Total: unknown. "+msg) || strings.Contains(out, "Total: 0") || !strings.Contains(errs, "warning: "+msg) {
		t.Errorf("table: exit %d\n%s\nstderr %s", code, out, errs)
	}
	r := scanJSON(t, l.ok("scan", "--db", db, "--format", "json", newer))
	want := &report.Unscanned{Namespace: "alpine:3.22", Covered: []string{"alpine:3.20"}, Message: msg}
	if r.Metadata.OS == nil || len(r.Results) != 1 {
		t.Fatalf("JSON: OS %+v, results %+v", r.Metadata.OS, r.Results)
	}
	if diff := cmp.Diff(want, r.Metadata.OS.Unscanned); diff != "" {
		t.Errorf("JSON Metadata.OS.Unscanned (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, r.Results[0].Unscanned); diff != "" {
		t.Errorf("JSON Results[0].Unscanned (-want +got):\n%s", diff)
	}
	if _, _, code := l.run("scan", "--db", db, "--exit-on-unknown-os", "7", newer); code != 7 {
		t.Errorf("--exit-on-unknown-os 7: exit %d", code)
	}
	// A release the database covers is scanned as usual.
	known := writeLayout(t, t.TempDir(), []testLayer{gzLayer(tarBytes(t, alpineBase...))}, nil)
	out, _, code = l.run("scan", "--db", db, "--exit-on-unknown-os", "7", known)
	if code != 0 || !strings.Contains(out, "Total: 1 (") || strings.Contains(out, "unknown") {
		t.Errorf("covered release: exit %d\n%s", code, out)
	}
}

const uctHeader = "Candidate: %s\nPublicDate: 2099-01-01 00:00:00 UTC\nReferences:\nDescription:\n test\nPriority: %s\n"

func uctFile(id, priority string, lines ...string) string {
	return strings.Replace(strings.Replace(uctHeader, "%s", id, 1), "%s", priority, 1) + "\nPatches_openssl:\n" + strings.Join(lines, "\n") + "\n"
}

var ubuntuImage = []tarFile{
	{"etc/os-release", "NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"18.04\"\nVERSION_CODENAME=bionic\n"},
	{"var/lib/dpkg/status", "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.1.1-1ubuntu2.1~18.04.4\n\n"},
}

// Ubuntu's needs-triage (not evaluated yet) is under investigation: left out
// unless asked, and counted in no total or exit code.
func TestScanUntriaged(t *testing.T) {
	db := buildDB(t, map[string]string{
		"active/CVE-2099-0001": uctFile("CVE-2099-0001", "medium", "bionic_openssl: needs-triage"),
		"active/CVE-2099-0002": uctFile("CVE-2099-0002", "high", "bionic_openssl: needed"),
	})
	l := newLading(t)
	img := writeLayout(t, t.TempDir(), []testLayer{gzLayer(tarBytes(t, ubuntuImage...))}, nil)

	r := scanJSON(t, l.ok("scan", "--db", db, "--format", "json", img))
	if len(r.Results) != 1 || len(r.Results[0].Vulnerabilities) != 1 || r.Results[0].Vulnerabilities[0].VulnerabilityID != "CVE-2099-0002" {
		t.Fatalf("default: %+v", r.Results)
	}
	r = scanJSON(t, l.ok("scan", "--db", db, "--format", "json", "--include-untriaged", img))
	statuses := map[string]string{}
	for _, f := range r.Results[0].Vulnerabilities {
		statuses[f.VulnerabilityID] = f.Status
	}
	if statuses["CVE-2099-0001"] != "under_investigation" || statuses["CVE-2099-0002"] != "affected" || r.Total() != 1 {
		t.Errorf("--include-untriaged: %v, total %d", statuses, r.Total())
	}
	out := l.ok("scan", "--db", db, "--include-untriaged", img)
	if !strings.Contains(out, "Total: 1 (UNKNOWN: 0, LOW: 0, MEDIUM: 0, HIGH: 1, CRITICAL: 0); 1 under investigation, not counted") {
		t.Errorf("table:\n%s", out)
	}
	// Only the untriaged finding: no exit code.
	only := buildDB(t, map[string]string{"active/CVE-2099-0001": uctFile("CVE-2099-0001", "medium", "bionic_openssl: needs-triage")})
	if _, _, code := l.run("scan", "--db", only, "--include-untriaged", "--exit-code", "5", img); code != 0 {
		t.Errorf("an untriaged finding set the exit code: %d", code)
	}
}

// A Go finding, whose feed rates nothing, takes the rating of a record of
// the same vulnerability in another feed (here the CVE's Ubuntu record),
// and JSON says where it came from.
func TestGoSeverityFromAlias(t *testing.T) {
	goRecord := `{"id": "GO-2099-0001", "aliases": ["CVE-2099-0009"], "summary": "a flaw in example.com/mod",
  "affected": [{"package": {"ecosystem": "Go", "name": "example.com/mod"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}]}`
	db := buildDB(t, map[string]string{
		"osv/GO-2099-0001.json": goRecord,
		"active/CVE-2099-0009":  uctFile("CVE-2099-0009", "high", "bionic_openssl: needed"),
	})
	sbom := filepath.Join(t.TempDir(), "app.cdx.json")
	os.WriteFile(sbom, []byte(`{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
  "components": [{"type": "library", "name": "example.com/mod", "version": "v1.1.0", "purl": "pkg:golang/example.com/mod@v1.1.0"}]}`), 0o644)
	l := newLading(t)
	r := scanJSON(t, l.ok("scan", "--db", db, "--format", "json", "--sbom", sbom))
	var got []report.Finding
	for _, res := range r.Results {
		got = append(got, res.Vulnerabilities...)
	}
	if len(got) != 1 || got[0].Severity != "HIGH" || got[0].SeveritySource != "ubuntu-cve-tracker" || got[0].SeverityFrom != "alias" {
		t.Errorf("findings %+v; want HIGH from the alias record of ubuntu-cve-tracker", got)
	}
}
