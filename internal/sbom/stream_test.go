package sbom

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-cmp/cmp"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"
	"github.com/xeipuuv/gojsonschema"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/pkg"
	"github.com/lading-dev/lading/internal/report"
	"github.com/lading-dev/lading/internal/testenv"
)

// duplicated is the sample with one npm package in two places and one Go
// module in two binaries.
func duplicated() (Image, *analyze.Inventory) {
	img, inv := sample()
	at := func(i int) *pkg.Attribution {
		r := pkg.LayerRef{Index: i, DiffID: inv.Layers[i].DiffID}
		return &pkg.Attribution{Introduced: r, Changed: r}
	}
	nested := pkg.Package{Name: "a", Version: "1.0.0", Ecosystem: pkg.Npm, Licenses: []string{"(MIT OR Apache-2.0)"},
		Location: "/app/node_modules/b/node_modules/a/package.json", PURL: "pkg:npm/a@1.0.0", Layer: at(1)}
	inv.Targets[1].Packages = append(inv.Targets[1].Packages, nested)
	mod := func(bin string) pkg.Package {
		return pkg.Package{Name: "golang.org/x/text", Version: "v0.3.6", Ecosystem: pkg.Go, Location: bin, PURL: "pkg:golang/golang.org/x/text@v0.3.6", Layer: at(1)}
	}
	inv.Targets = append(inv.Targets,
		analyze.Target{Path: "/usr/bin/a", Type: "gobinary", Class: analyze.ClassLang, Packages: []pkg.Package{mod("/usr/bin/a")}},
		analyze.Target{Path: "/usr/bin/b", Type: "gobinary", Class: analyze.ClassLang, Packages: []pkg.Package{mod("/usr/bin/b")}},
	)
	return img, inv
}

// scanned is a report of duplicated with findings in both places of each
// duplicated package.
func scanned() *report.Report {
	f := func(path, name, version, id string) report.Finding {
		return report.Finding{VulnerabilityID: id, PkgName: name, PkgPath: path, InstalledVersion: version, Severity: "HIGH", FixedVersion: "9"}
	}
	return &report.Report{Results: []report.Result{
		{Target: "/app/node_modules", Vulnerabilities: []report.Finding{
			f("/app/node_modules/a/package.json", "a", "1.0.0", "GHSA-1"),
			f("/app/node_modules/b/node_modules/a/package.json", "a", "1.0.0", "GHSA-1"),
		}},
		{Target: "/usr/bin/a", Vulnerabilities: []report.Finding{f("/usr/bin/a", "golang.org/x/text", "v0.3.6", "GO-2021-0113")}},
		{Target: "/usr/bin/b", Vulnerabilities: []report.Finding{f("/usr/bin/b", "golang.org/x/text", "v0.3.6", "GO-2021-0113")}},
	}}
}

// cdxSchema returns the CycloneDX 1.6 JSON schema that the CycloneDX Go
// library ships, from the module cache.
func cdxSchema(t *testing.T) *gojsonschema.Schema {
	goTool := testenv.Tool(t, "go", "golang-go")
	out, err := exec.Command(goTool, "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		testenv.Skip(t, "cannot find the CycloneDX module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	file := func(name string) gojsonschema.JSONLoader {
		return gojsonschema.NewReferenceLoader("file://" + filepath.ToSlash(filepath.Join(dir, name)))
	}
	// The schema refers to the others by their $id (http://cyclonedx.org/
	// schema/...): register them, so that nothing is fetched.
	sl := gojsonschema.NewSchemaLoader()
	if err := sl.AddSchemas(file("spdx.schema.json"), file("jsf-0.82.schemax.json")); err != nil {
		t.Fatal(err)
	}
	schema, err := sl.Compile(file("bom-1.6.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	return schema
}

func validateCDX(t *testing.T, schema *gojsonschema.Schema, doc []byte) {
	t.Helper()
	res, err := schema.Validate(gojsonschema.NewBytesLoader(doc))
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	for _, e := range res.Errors() {
		t.Errorf("CycloneDX 1.6 schema: %s", e)
	}
}

func TestCycloneDXOneComponentPerPackage(t *testing.T) {
	schema := cdxSchema(t)
	if res, err := schema.Validate(gojsonschema.NewStringLoader(`{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": 1}]}`)); err != nil || res.Valid() {
		t.Fatalf("the schema accepts an invalid BOM (%v)", err)
	}
	img, inv := duplicated()
	var b bytes.Buffer
	if err := WriteCycloneDX(&b, img, inv, scanned(), opts); err != nil {
		t.Fatal(err)
	}
	validateCDX(t, schema, b.Bytes())
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b.Bytes()), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("the library cannot read the output: %v", err)
	}
	places := map[string][]string{}
	for _, c := range *bom.Components {
		if c.Evidence == nil || c.Evidence.Occurrences == nil {
			continue
		}
		for _, o := range *c.Evidence.Occurrences {
			places[c.PackageURL] = append(places[c.PackageURL], o.Location)
		}
	}
	if n := len(*bom.Components); n != 1+6+1 {
		t.Errorf("%d components, want the OS and 7 packages", n)
	}
	for purl, want := range map[string][]string{
		"pkg:npm/a@1.0.0":                     {"/app/node_modules/a/package.json", "/app/node_modules/b/node_modules/a/package.json"},
		"pkg:golang/golang.org/x/text@v0.3.6": {"/usr/bin/a", "/usr/bin/b"},
	} {
		if diff := cmp.Diff(want, places[purl]); diff != "" {
			t.Errorf("%s occurrences (-want +got):\n%s", purl, diff)
		}
	}
	var affects []string
	for _, v := range *bom.Vulnerabilities {
		for _, a := range *v.Affects {
			affects = append(affects, v.ID+" "+a.Ref)
		}
	}
	if diff := cmp.Diff([]string{"GHSA-1 pkg-3", "GO-2021-0113 pkg-7"}, affects); diff != "" {
		t.Errorf("vulnerabilities (-want +got):\n%s", diff)
	}
}

func TestSPDXOnePackagePerPackage(t *testing.T) {
	img, inv := duplicated()
	var b bytes.Buffer
	if err := WriteSPDX(&b, img, inv, scanned(), opts); err != nil {
		t.Fatal(err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("the SPDX tools cannot read the output: %v\n%s", err, b.String())
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("ValidateDocument: %v", err)
	}
	var names []string
	for _, p := range doc.Packages {
		names = append(names, p.PackageName)
		if p.PackageName == "golang.org/x/text" {
			if !strings.Contains(p.PackageSourceInfo, "/usr/bin/a (") || !strings.Contains(p.PackageSourceInfo, "/usr/bin/b (") {
				t.Errorf("source info %q does not name both binaries", p.PackageSourceInfo)
			}
			n := 0
			for _, r := range p.PackageExternalReferences {
				if r.RefType == "advisory" {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d advisories, want 1", n)
			}
		}
	}
	want := []string{"oci-archive:app.tar", "alpine", "musl", "busybox", "a", "b", "c", "d", "golang.org/x/text"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
}

// The streamed documents are the JSON the libraries would write.
func TestStreamIsJSON(t *testing.T) {
	img, inv := duplicated()
	for name, write := range map[string]func(*bytes.Buffer) error{
		"cyclonedx": func(b *bytes.Buffer) error { return WriteCycloneDX(b, img, inv, scanned(), opts) },
		"spdx":      func(b *bytes.Buffer) error { return WriteSPDX(b, img, inv, scanned(), opts) },
		"empty":     func(b *bytes.Buffer) error { return CycloneDX(b, Image{}, &analyze.Inventory{}, opts) },
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b.Bytes(), &v); err != nil {
			t.Errorf("%s: not JSON: %v\n%s", name, err, b.String())
		}
		var again bytes.Buffer
		if err := json.Indent(&again, b.Bytes(), "", "  "); err != nil || again.String() != b.String() {
			t.Errorf("%s: not indented as MarshalIndent would", name)
		}
	}
}
