package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// sample is a small report covering an OS target, a lockfile, base and
// added layers, an unfixed finding and a removed package.
func sample() *Report {
	base := &Layer{Index: 0, DiffID: "sha256:c13d5b9c", CreatedBy: "ADD rootfs.tar.gz /", Base: true}
	app := &Layer{Index: 3, DiffID: "sha256:e50746e9", CreatedBy: "COPY app/ /app/"}
	r := &Report{
		SchemaVersion: SchemaVersion,
		CreatedAt:     time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC),
		ArtifactName:  "oci-archive:app.oci.tar",
		ArtifactType:  "container_image",
		Metadata:      Metadata{OS: &OS{Family: "alpine", Name: "3.10.4"}, Layers: []Layer{*base, *app}},
		Results: []Result{
			{Target: "alpine 3.10.4 (alpine)", Class: "os-pkgs", Type: "alpine", Packages: 14, Vulnerabilities: []Finding{
				{VulnerabilityID: "CVE-2019-1549", PkgName: "libcrypto1.1", PkgPURL: "pkg:apk/alpine/libcrypto1.1@1.1.1d-r2?arch=x86_64", PkgPath: "/lib/apk/db/installed", SrcName: "openssl",
					InstalledVersion: "1.1.1d-r2", FixedVersion: "1.1.1d-r3", Status: "fixed", Severity: Medium, Title: "openssl: information disclosure in fork()",
					PrimaryURL: "https://avd.example/CVE-2019-1549", CVSS: []CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N", Score: 5.3}}, Layer: base},
				{VulnerabilityID: "CVE-2020-1967", Aliases: []string{"DSA-4661-1"}, PkgName: "libssl1.1", PkgPURL: "pkg:apk/alpine/libssl1.1@1.1.1d-r2?arch=x86_64", PkgPath: "/lib/apk/db/installed",
					InstalledVersion: "1.1.1d-r2", FixedVersion: "1.1.1g-r0", Status: "fixed", Severity: High, Title: "openssl: Segmentation fault in SSL_check_chain", Layer: base},
				{VulnerabilityID: "CVE-2021-9999", PkgName: "musl", PkgPURL: "pkg:apk/alpine/musl@1.1.22-r3", InstalledVersion: "1.1.22-r3", Status: "affected", Severity: Low, Layer: base},
			}},
			{Target: "/app/package-lock.json", Class: "lang-pkgs", Type: "npm", Packages: 81, Vulnerabilities: []Finding{
				{VulnerabilityID: "CVE-2018-3721", Aliases: []string{"GHSA-fvqr-27wr-82fm"}, PkgName: "lodash", PkgPURL: "pkg:npm/lodash@4.17.4", PkgPath: "/app/package-lock.json",
					InstalledVersion: "4.17.4", FixedVersion: "4.17.5", Status: "fixed", Severity: Critical, Title: "Prototype pollution in lodash", Layer: app},
			}},
		},
		Removed: []RemovedPackage{
			{PkgName: "scanelf", Version: "1.2.3-r0", Ecosystem: "apk", PkgPath: "/lib/apk/db/installed", InstalledIn: base, RemovedIn: &Layer{Index: 2, CreatedBy: "RUN apk del libc-utils"},
				Vulnerabilities: []Finding{{VulnerabilityID: "CVE-2019-0001", PkgName: "scanelf", InstalledVersion: "1.2.3-r0", FixedVersion: "1.2.4-r0", Status: "fixed", Severity: Medium, Layer: base}}},
			{PkgName: "musl-utils", Version: "1.1.22-r3", Ecosystem: "apk", PkgPath: "/lib/apk/db/installed", InstalledIn: base, RemovedIn: &Layer{Index: 2, CreatedBy: "RUN apk del libc-utils"}, Vulnerabilities: []Finding{}},
		},
	}
	r.Sort()
	return r
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, diff)
	}
}

func TestTable(t *testing.T) {
	for _, tc := range []struct {
		file string
		o    TableOptions
	}{
		{"table.golden", TableOptions{}},
		{"table-by-layer.golden", TableOptions{GroupByLayer: true}},
	} {
		var buf bytes.Buffer
		if err := WriteTable(&buf, sample(), tc.o); err != nil {
			t.Fatal(err)
		}
		golden(t, tc.file, buf.Bytes())
	}
	var buf bytes.Buffer
	WriteTable(&buf, sample(), TableOptions{})
	out := buf.String()
	for _, want := range []string{
		"alpine 3.10.4 (alpine)\n======================\nTotal: 3 (UNKNOWN: 0, LOW: 1, MEDIUM: 1, HIGH: 1, CRITICAL: 0)",
		"Total: 1 (UNKNOWN: 0, LOW: 0, MEDIUM: 0, HIGH: 0, CRITICAL: 1)",
		"Removed packages (informational)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	buf.Reset()
	WriteTable(&buf, sample(), TableOptions{Color: true})
	if !strings.Contains(buf.String(), "\x1b[1;31mCRITICAL\x1b[0m") {
		t.Error("no colour on CRITICAL")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sample(), &back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	golden(t, "report.json.golden", buf.Bytes())
}

// TestSARIFValidates checks the SARIF log against the SARIF 2.1.0 JSON
// schema (the one go-sarif embeds, from the OASIS specification).
func TestSARIFValidates(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, sample(), "test"); err != nil {
		t.Fatal(err)
	}
	back, err := sarif.FromBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(); err != nil {
		t.Fatalf("SARIF does not validate: %v", err)
	}
	if n := len(back.Runs[0].Results); n != 4 {
		t.Errorf("%d results, want 4 (removed packages are not alerts)", n)
	}
	if n := len(back.Runs[0].Tool.Driver.Rules); n != 4 {
		t.Errorf("%d rules, want 4", n)
	}
	for _, res := range back.Runs[0].Results {
		if len(res.Locations) == 0 || res.Locations[0].PhysicalLocation.ArtifactLocation.URI == nil {
			t.Errorf("result %s has no location (GitHub code scanning needs one)", *res.RuleID)
		}
	}
}

func TestTemplate(t *testing.T) {
	tpl, err := ParseTemplate(`{{range .Results}}{{.Target}}:{{range .Vulnerabilities}} {{.VulnerabilityID}}{{end}}
{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tpl.Execute(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	want := "alpine 3.10.4 (alpine): CVE-2019-1549 CVE-2020-1967 CVE-2021-9999\n/app/package-lock.json: CVE-2018-3721\n"
	if buf.String() != want {
		t.Errorf("got %q", buf.String())
	}
}

func ids(r *Report) []string {
	var out []string
	for _, res := range r.Results {
		for _, f := range res.Vulnerabilities {
			out = append(out, f.VulnerabilityID)
		}
	}
	return out
}

func TestFilters(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	ignore, err := ParseIgnoreFile(strings.NewReader(`# comment
GHSA-fvqr-27wr-82fm pkg:npm/lodash   # by alias and purl, any version
CVE-2021-9999 exp:2026-11-22          # expires today: still applies
CVE-2020-1967 exp:2020-01-01          # expired
CVE-2019-1549 libssl1.1               # wrong package: no effect
`), ".ladingignore")
	if err != nil {
		t.Fatal(err)
	}
	openvex := `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[
		{"vulnerability":{"name":"CVE-2019-1549"},"products":[{"@id":"pkg:oci/app","subcomponents":[{"@id":"pkg:apk/alpine/libcrypto1.1@1.1.1d-r2"}]}],"status":"not_affected","justification":"vulnerable_code_not_in_execute_path"},
		{"vulnerability":{"name":"CVE-2020-1967"},"products":[{"@id":"pkg:oci/app"}],"status":"under_investigation"}]}`
	openvex00 := `{"@context":"https://openvex.dev/ns","statements":[{"vulnerability":"CVE-2020-1967","products":["pkg:apk/alpine/libssl1.1"],"status":"fixed"}]}`
	cdx := `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"bom-ref":"lodash","purl":"pkg:npm/lodash@4.17.4"}],
		"vulnerabilities":[{"id":"CVE-2018-3721","analysis":{"state":"false_positive"},"affects":[{"ref":"lodash"}]},
		{"id":"CVE-2021-9999","analysis":{"state":"exploitable"},"affects":[{"ref":"urn:cdx:image"}]}]}`
	vex := func(s string) *VEX {
		x, err := ParseVEX(strings.NewReader(s), "vex.json")
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	tests := []struct {
		name string
		f    Filter
		want []string
		sup  int
	}{
		{"none", Filter{}, []string{"CVE-2019-1549", "CVE-2020-1967", "CVE-2021-9999", "CVE-2018-3721"}, 0},
		{"severity", Filter{Severities: []string{High, Critical}}, []string{"CVE-2020-1967", "CVE-2018-3721"}, 0},
		{"unfixed", Filter{IgnoreUnfixed: true}, []string{"CVE-2019-1549", "CVE-2020-1967", "CVE-2018-3721"}, 0},
		{"os only", Filter{PkgTypes: []string{"os"}}, []string{"CVE-2019-1549", "CVE-2020-1967", "CVE-2021-9999"}, 0},
		{"library only", Filter{PkgTypes: []string{"library"}}, []string{"CVE-2018-3721"}, 0},
		{"ignore file", Filter{Ignore: ignore, Now: now}, []string{"CVE-2019-1549", "CVE-2020-1967"}, 2},
		{"openvex 0.2", Filter{VEX: []*VEX{vex(openvex)}}, []string{"CVE-2020-1967", "CVE-2021-9999", "CVE-2018-3721"}, 1},
		{"openvex 0.0", Filter{VEX: []*VEX{vex(openvex00)}}, []string{"CVE-2019-1549", "CVE-2021-9999", "CVE-2018-3721"}, 1},
		{"cyclonedx vex", Filter{VEX: []*VEX{vex(cdx)}}, []string{"CVE-2019-1549", "CVE-2020-1967", "CVE-2021-9999"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sample()
			sup := tt.f.Apply(r)
			if diff := cmp.Diff(tt.want, ids(r)); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
			if len(sup) != tt.sup {
				t.Errorf("%d suppressed, want %d: %+v", len(sup), tt.sup, sup)
			}
		})
	}
	if exp := ignore.Expired(now); len(exp) != 1 || exp[0].ID != "CVE-2020-1967" {
		t.Errorf("expired rules: %+v", exp)
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := ParseIgnoreFile(strings.NewReader("CVE-1 exp:tomorrow\n"), "x"); err == nil || !strings.Contains(err.Error(), "x line 1") {
		t.Errorf("bad expiry: %v", err)
	}
	if _, err := ParseIgnoreFile(strings.NewReader("CVE-1 a b\n"), "x"); err == nil {
		t.Error("two packages accepted")
	}
	for _, doc := range []string{`{}`, `not json`, `{"@context":"https://openvex.dev/ns","statements":[{"products":["x"]}]}`} {
		if _, err := ParseVEX(strings.NewReader(doc), "v"); err == nil {
			t.Errorf("ParseVEX(%s) accepted", doc)
		}
	}
	if _, err := ParseSeverities([]string{"HIGH,bogus"}); err == nil {
		t.Error("bogus severity accepted")
	}
	if s, err := ParseSeverities([]string{"high,Critical"}); err != nil || len(s) != 2 {
		t.Errorf("ParseSeverities = %v, %v", s, err)
	}
}

func FuzzParseIgnoreFile(f *testing.F) {
	f.Add("CVE-1 exp:2020-01-01 pkg:npm/x@1\n# c\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		ig, err := ParseIgnoreFile(strings.NewReader(s), "f")
		if err == nil {
			ig.Match(sample().Results[0].Vulnerabilities[0], time.Now())
		}
	})
}

func FuzzParseVEX(f *testing.F) {
	f.Add(`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"CVE-1"},"products":[{"@id":"pkg:npm/a"}],"status":"fixed"}]}`)
	f.Add(`{"bomFormat":"CycloneDX","vulnerabilities":[{"id":"CVE-1","analysis":{"state":"resolved"},"affects":[{"ref":"x"}]}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		x, err := ParseVEX(strings.NewReader(s), "f")
		if err == nil {
			Filter{VEX: []*VEX{x}}.Apply(sample())
		}
	})
}
