package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-cmp/cmp"
	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/report"
)

var scanDB struct {
	once sync.Once
	path string
	err  error
}

// testScanDB builds, once per test binary, a database from the corpus
// feeds the alpine-3.20-app image needs (npm, Go, Alpine), through the CLI.
func testScanDB(t *testing.T) string {
	t.Helper()
	corpus := corpustest.Dir(t)
	scanDB.once.Do(func() {
		dir, err := os.MkdirTemp("", "lading-scan-db-")
		if err != nil {
			scanDB.err = err
			return
		}
		scanDB.path = filepath.Join(dir, "vuln.db")
		l := &lading{t: t, root: dir}
		feeds := filepath.Join(corpus, "feeds")
		l.ok("db", "build", "--from", filepath.Join(feeds, "alpine-secdb"), "--from", filepath.Join(feeds, "npm"),
			"--from", filepath.Join(feeds, "osv", "Go.zip"), "-o", scanDB.path)
	})
	if scanDB.err != nil {
		t.Fatal(scanDB.err)
	}
	return scanDB.path
}

// findingSet is (target, package, version, vulnerability) of every finding.
func findingSet(t *testing.T, out string) []string {
	t.Helper()
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%.500s", err, out)
	}
	var s []string
	for _, res := range r.Results {
		for _, f := range res.Vulnerabilities {
			s = append(s, res.Target+" "+f.PkgName+" "+f.InstalledVersion+" "+f.VulnerabilityID)
		}
	}
	sort.Strings(s)
	return s
}

func TestScanCommand(t *testing.T) {
	db := testScanDB(t)
	app := "oci-archive:" + corpustest.Image(t, "alpine-3.20-app.oci.tar")
	l := newLading(t)

	var r report.Report
	out := l.ok("scan", "--db", db, "-f", "json", app)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	byTarget := map[string]int{}
	for _, res := range r.Results {
		byTarget[res.Target] = len(res.Vulnerabilities)
	}
	// The corpus README names these advisories: lodash, handlebars, morgan
	// and moment in the Node Security WG feed; gin and x/text in Go's.
	ids := strings.Join(findingSet(t, out), "\n")
	for _, want := range []string{"lodash 4.17.4", "handlebars 4.0.11", "morgan 1.9.0", "moment 2.11.1", "GO-2023-1737", "CVE-2021-38561"} {
		if !strings.Contains(ids, want) && !strings.Contains(out, want) {
			t.Errorf("no finding for %s", want)
		}
	}
	if _, ok := byTarget["/app/package-lock.json"]; ok {
		t.Error("the lockfile beside node_modules was scanned too")
	}
	if r.SchemaVersion != report.SchemaVersion || r.Metadata.OS == nil || r.Metadata.OS.Name != "3.20.3" {
		t.Errorf("metadata: %+v", r.Metadata)
	}
	for _, res := range r.Results {
		for _, f := range res.Vulnerabilities {
			if f.Layer == nil || f.Layer.DiffID == "" || f.Layer.CreatedBy == "" {
				t.Fatalf("finding %s %s lacks its layer: %+v", f.PkgName, f.VulnerabilityID, f.Layer)
			}
			if res.Target == "/app/node_modules" && (f.Layer.Index != 3 || f.Layer.Base) {
				t.Errorf("npm package %s from layer %d (base %v), want 3 (COPY app/)", f.PkgName, f.Layer.Index, f.Layer.Base)
			}
		}
	}
	var removed []string
	for _, p := range r.Removed {
		removed = append(removed, p.PkgName+" "+p.Version+" "+p.RemovedIn.CreatedBy)
	}
	sort.Strings(removed)
	if len(removed) != 2 || !strings.HasPrefix(removed[0], "musl-utils 1.2.5-r0") || !strings.Contains(removed[0], "apk del") || !strings.HasPrefix(removed[1], "scanelf 1.3.7-r2") {
		t.Errorf("removed packages: %q", removed)
	}

	table := l.ok("scan", "--db", db, app)
	// The corpus's Alpine secdb ends at 3.11: 3.20's packages cannot be
	// checked, which is no clean total.
	for _, want := range []string{"alpine 3.20.3 (alpine)\n======================\nTotal: unknown. The vulnerability database has no advisories for alpine:3.20 (the image is alpine 3.20.3); it covers alpine:3.3, alpine:3.4, alpine:3.5, alpine:3.6, alpine:3.7, alpine:3.8, alpine:3.9, alpine:3.10, alpine:3.11.", "/app/node_modules", "Removed packages (informational)", "musl-utils"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	byLayer := l.ok("scan", "--db", db, "--group-by", "layer", app)
	if !strings.Contains(byLayer, "Base image layers: 0 findings") || !strings.Contains(byLayer, "Layer 3 (added)") || !strings.Contains(byLayer, "Layer 4 (added)") {
		t.Errorf("group-by layer:\n%.1500s", byLayer)
	}

	// Exit codes.
	if _, _, code := l.run("scan", "--db", db, "--exit-code", "4", "-q", app); code != 4 {
		t.Errorf("--exit-code 4 with findings: exit %d", code)
	}
	if _, _, code := l.run("scan", "--db", db, "--exit-code", "4", "--pkg-types", "os", app); code != 0 {
		t.Errorf("--exit-code 4 without findings: exit %d", code)
	}
	if _, _, code := l.run("scan", "--db", db, "--exit-code", "1", app); code != exitUsage {
		t.Errorf("--exit-code 1: exit %d, want a usage error", code)
	}
	if _, _, code := l.run("scan", "--db", filepath.Join(t.TempDir(), "none.db"), app); code != exitError {
		t.Errorf("missing database: exit %d, want %d", code, exitError)
	}

	// Filters: severity and ignore file.
	high := findingSet(t, l.ok("scan", "--db", db, "-f", "json", "--severity", "HIGH,CRITICAL", app))
	for _, f := range high {
		if strings.Contains(f, "GO-") {
			t.Errorf("an UNKNOWN-severity Go finding passed --severity HIGH,CRITICAL: %s", f)
		}
	}
	ignore := filepath.Join(t.TempDir(), "ignore")
	os.WriteFile(ignore, []byte("CVE-2017-16137 pkg:npm/debug\nGO-2023-1737\n"), 0o644)
	kept := strings.Join(findingSet(t, l.ok("scan", "--db", db, "-f", "json", "--ignorefile", ignore, app)), "\n")
	if strings.Contains(kept, "GO-2023-1737") || strings.Contains(kept, "CVE-2023-29401") {
		t.Errorf("the ignore file's rule did not apply:\n%s", kept)
	}

	// Formats, each checked with its own library.
	sf, err := sarif.FromBytes([]byte(l.ok("scan", "--db", db, "-f", "sarif", app)))
	if err != nil {
		t.Fatal(err)
	}
	if err := sf.Validate(); err != nil {
		t.Errorf("SARIF does not validate: %v", err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(strings.NewReader(l.ok("scan", "--db", db, "-f", "cyclonedx", app)), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || bom.Vulnerabilities == nil || len(*bom.Vulnerabilities) == 0 {
		t.Errorf("CycloneDX: spec %v, vulnerabilities %v", bom.SpecVersion, bom.Vulnerabilities)
	}
	refs := map[string]bool{}
	for _, c := range *bom.Components {
		refs[c.BOMRef] = true
	}
	for _, v := range *bom.Vulnerabilities {
		for _, a := range *v.Affects {
			if !refs[a.Ref] {
				t.Errorf("vulnerability %s affects %s, which is no component", v.ID, a.Ref)
			}
		}
	}
	doc, err := spdxjson.Read(strings.NewReader(l.ok("scan", "--db", db, "-f", "spdx", app)))
	if err != nil {
		t.Fatal(err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("SPDX does not validate: %v", err)
	}
	tpl := l.ok("scan", "--db", db, "-f", "template", "--template", "{{len .Results}} targets", app)
	if strings.TrimSpace(tpl) != "3 targets" { // apk, node_modules, the Go binary
		t.Errorf("template: %q", tpl)
	}
}

// TestScanSBOM scans the SBOM lading writes of an image and finds what
// scanning the image finds.
func TestScanSBOM(t *testing.T) {
	db := testScanDB(t)
	app := "oci-archive:" + corpustest.Image(t, "alpine-3.20-app.oci.tar")
	l := newLading(t)
	want := findingSet(t, l.ok("scan", "--db", db, "-f", "json", app))
	for _, format := range []string{"cyclonedx", "spdx"} {
		p := filepath.Join(t.TempDir(), "sbom.json")
		os.WriteFile(p, []byte(l.ok("sbom", "--format", format, app)), 0o644)
		var got []string
		for _, f := range findingSet(t, l.ok("scan", "--db", db, "-f", "json", "--sbom", p)) {
			got = append(got, f[strings.Index(f, " ")+1:]) // targets are named differently
		}
		var wantNoTarget []string
		for _, f := range want {
			wantNoTarget = append(wantNoTarget, f[strings.Index(f, " ")+1:])
		}
		if strings.HasPrefix(want[0], "alpine") {
			t.Fatalf("unexpected OS finding %s", want[0])
		}
		if diff := cmp.Diff(dedupe(wantNoTarget), dedupe(got)); diff != "" {
			t.Errorf("%s: scanning the SBOM differs from scanning the image (-image +sbom):\n%s", format, diff)
		}
	}
}

func dedupe(s []string) []string {
	sort.Strings(s)
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// TestScanReadsNoLayerTwice scans an image from an OCI layout, deletes its
// layer blobs, and scans it again: the second scan must give the same
// findings from the per-layer cache alone. Then an image that shares its
// base layer (the multi-arch alpine, amd64) is scanned with that layer's
// blob deleted too.
func TestScanReadsNoLayerTwice(t *testing.T) {
	db := testScanDB(t)
	l := newLading(t)
	dir := t.TempDir()
	layout := filepath.Join(dir, "app")
	l.ok("copy", "oci-archive:"+corpustest.Image(t, "alpine-3.20-app.oci.tar")+":latest", "oci:"+layout+":app")
	first := l.ok("scan", "--db", db, "-f", "json", "oci:"+layout+":app")

	// The blobs stay (a warm scan checks that the image has them) but hold
	// garbage: reading one would fail its digest.
	var insp inspectOutput
	json.Unmarshal([]byte(l.ok("inspect", "oci:"+layout+":app")), &insp)
	for _, layer := range insp.Layers {
		if err := os.WriteFile(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(layer.Digest, "sha256:")), []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	second := l.ok("scan", "--db", db, "-f", "json", "oci:"+layout+":app")
	if diff := cmp.Diff(findingSet(t, first), findingSet(t, second)); diff != "" {
		t.Errorf("warm scan differs (-cold +warm):\n%s", diff)
	}
	// Without the cache the layers must be read: the first one fails the
	// scan, named.
	_, errs, code := l.run("scan", "--db", db, "--no-cache", "-f", "json", "oci:"+layout+":app")
	if code != exitError || !strings.Contains(errs, "layer 1/5 "+insp.Layers[0].Digest) {
		t.Errorf("--no-cache with garbage blobs: exit %d, stderr %q", code, errs)
	}
	// A warm scan of an image whose blob is gone fails too: the image is
	// not whole.
	os.Remove(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(insp.Layers[2].Digest, "sha256:")))
	if _, errs, code := l.run("scan", "--db", db, "oci:"+layout+":app"); code != exitError || !strings.Contains(errs, insp.Layers[2].Digest+" is missing") {
		t.Errorf("warm scan without a blob: exit %d, stderr %q", code, errs)
	}

	multi := filepath.Join(dir, "multi")
	l.ok("copy", "--platform", "linux/amd64", "oci-archive:"+corpustest.Image(t, "alpine-3.20-multiarch.oci.tar")+":latest", "oci:"+multi+":m")
	json.Unmarshal([]byte(l.ok("inspect", "oci:"+multi+":m")), &insp)
	if len(insp.Layers) != 1 || insp.Layers[0].DiffID != "sha256:c13d5b9c4b7e7a2eaffcf2407fa11c85bbb5a7497a2886038386cfb9c5c25bd7" {
		t.Fatalf("the amd64 image should share the app's base layer: %+v", insp.Layers)
	}
	os.WriteFile(filepath.Join(multi, "blobs", "sha256", strings.TrimPrefix(insp.Layers[0].Digest, "sha256:")), []byte("garbage"), 0o644)
	var r report.Report
	if err := json.Unmarshal([]byte(l.ok("scan", "--db", db, "-f", "json", "oci:"+multi+":m")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Metadata.PackageSize != 14 {
		t.Errorf("the shared layer's cached result gave %d packages, want 14 apk", r.Metadata.PackageSize)
	}
}
