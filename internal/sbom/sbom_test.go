package sbom

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-cmp/cmp"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/pkg"
)

func sample() (Image, *analyze.Inventory) {
	at := func(i int) *pkg.Attribution {
		r := pkg.LayerRef{Index: i, DiffID: "sha256:" + strings.Repeat("ab", 32)}
		return &pkg.Attribution{Introduced: r, Changed: r}
	}
	inv := &analyze.Inventory{
		OS: &pkg.OS{ID: "alpine", VersionID: "3.20.3", Name: "Alpine Linux v3.20", Family: "alpine", Source: "/etc/os-release"},
		Targets: []analyze.Target{
			{Path: "/lib/apk/db/installed", Type: "apk", Class: analyze.ClassOS, Packages: []pkg.Package{
				{Name: "musl", Version: "1.2.5-r0", Ecosystem: pkg.Apk, Arch: "x86_64", Licenses: []string{"MIT"}, Location: "/lib/apk/db/installed",
					Source: &pkg.Source{Name: "musl", Version: "1.2.5-r0"}, PURL: "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3", Layer: at(0)},
				{Name: "busybox", Version: "1.36.1-r29", Ecosystem: pkg.Apk, Licenses: []string{"GPL-2.0-only"}, Location: "/lib/apk/db/installed",
					PURL: "pkg:apk/alpine/busybox@1.36.1-r29", Layer: at(0)},
			}},
			{Path: "/app/node_modules", Type: "node_modules", Class: analyze.ClassLang, Packages: []pkg.Package{
				{Name: "a", Version: "1.0.0", Ecosystem: pkg.Npm, Licenses: []string{"(MIT OR Apache-2.0)"}, Location: "/app/node_modules/a/package.json", PURL: "pkg:npm/a@1.0.0", Layer: at(1)},
				{Name: "b", Version: "2.0.0", Ecosystem: pkg.Npm, Licenses: []string{"GPL-2+", "Artistic or GPL-1+", "mit"}, Location: "/app/node_modules/b/package.json", PURL: "pkg:npm/b@2.0.0", Layer: at(1)},
				{Name: "c", Version: "3.0.0", Ecosystem: pkg.Npm, Licenses: []string{"GPL 2+"}, Location: "/app/node_modules/c/package.json", PURL: "pkg:npm/c@3.0.0", Layer: at(1)},
				{Name: "d", Version: "4.0.0", Ecosystem: pkg.Npm, Location: "/app/node_modules/d/package.json", Layer: at(1)},
			}},
		},
		Layers: []analyze.LayerInfo{{Index: 0, DiffID: "sha256:" + strings.Repeat("ab", 32)}, {Index: 1, DiffID: "sha256:" + strings.Repeat("cd", 32)}},
	}
	return Image{Name: "oci-archive:app.tar", Digest: "sha256:" + strings.Repeat("ef", 32), ID: "sha256:" + strings.Repeat("12", 32), Platform: "linux/amd64"}, inv
}

var opts = Options{ToolVersion: "v1.0.0", Time: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Serial: "6ba7b810-9dad-41d1-80b4-00c04fd430c8"}

func TestCycloneDX(t *testing.T) {
	img, inv := sample()
	var b bytes.Buffer
	if err := CycloneDX(&b, img, inv, opts); err != nil {
		t.Fatal(err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b.Bytes()), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("the library cannot read its own output: %v\n%s", err, b.String())
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || bom.BOMFormat != "CycloneDX" || bom.SerialNumber != "urn:uuid:"+opts.Serial {
		t.Errorf("spec %v format %q serial %q", bom.SpecVersion, bom.BOMFormat, bom.SerialNumber)
	}
	if !strings.Contains(b.String(), `"specVersion": "1.6"`) || !strings.Contains(b.String(), `"$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json"`) {
		t.Errorf("not a 1.6 document:\n%s", b.String()[:300])
	}
	if m := bom.Metadata; m == nil || m.Component == nil || m.Component.Type != cdx.ComponentTypeContainer || m.Component.Version != img.Digest || m.Timestamp != "2024-01-01T00:00:00Z" {
		t.Errorf("metadata %+v", bom.Metadata)
	}
	type comp struct {
		Ref, Type, Name, Version, PURL string
		Licenses                       string
	}
	var got []comp
	refs := map[string]bool{}
	for _, c := range *bom.Components {
		if refs[c.BOMRef] {
			t.Errorf("bom-ref %q repeats", c.BOMRef)
		}
		refs[c.BOMRef] = true
		var ls []string
		if c.Licenses != nil {
			for _, l := range *c.Licenses {
				switch {
				case l.Expression != "":
					ls = append(ls, "expr:"+l.Expression)
				case l.License.ID != "":
					ls = append(ls, "id:"+l.License.ID)
				default:
					ls = append(ls, "name:"+l.License.Name)
				}
			}
		}
		got = append(got, comp{c.BOMRef, string(c.Type), c.Name, c.Version, c.PackageURL, strings.Join(ls, ",")})
	}
	want := []comp{
		{"os", "operating-system", "alpine", "3.20.3", "", ""},
		{"pkg-1", "library", "musl", "1.2.5-r0", "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3", "id:MIT"},
		{"pkg-2", "library", "busybox", "1.36.1-r29", "pkg:apk/alpine/busybox@1.36.1-r29", "id:GPL-2.0-only"},
		{"pkg-3", "library", "a", "1.0.0", "pkg:npm/a@1.0.0", "expr:(MIT OR Apache-2.0)"},
		{"pkg-4", "library", "b", "2.0.0", "pkg:npm/b@2.0.0", "name:GPL-2+,name:Artistic or GPL-1+,id:MIT"},
		{"pkg-5", "library", "c", "3.0.0", "pkg:npm/c@3.0.0", "name:GPL 2+"},
		{"pkg-6", "library", "d", "4.0.0", "", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("components (-want +got):\n%s", diff)
	}
	props := map[string]string{}
	for _, p := range *(*bom.Components)[1].Properties {
		props[p.Name] = p.Value
	}
	for k, v := range map[string]string{"lading:location": "/lib/apk/db/installed", "lading:layer:introduced": "0", "lading:source:name": "musl", "lading:target": "/lib/apk/db/installed"} {
		if props[k] != v {
			t.Errorf("property %s = %q, want %q", k, props[k], v)
		}
	}
	if deps := *bom.Dependencies; len(deps) != 1 || deps[0].Ref != "image" || len(*deps[0].Dependencies) != 7 {
		t.Errorf("dependencies %+v", deps)
	}
}

func TestSPDX(t *testing.T) {
	img, inv := sample()
	var b bytes.Buffer
	if err := SPDX(&b, img, inv, opts); err != nil {
		t.Fatal(err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("the SPDX tools cannot read the output: %v\n%s", err, b.String())
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("ValidateDocument: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.CreationInfo.Created != "2024-01-01T00:00:00Z" {
		t.Errorf("header %q %q %+v", doc.SPDXVersion, doc.DataLicense, doc.CreationInfo)
	}
	described, err := spdxlib.GetDescribedPackageIDs(doc)
	if err != nil || len(described) != 1 || described[0] != "Image" {
		t.Errorf("described %v, %v", described, err)
	}
	type p struct{ Name, Version, Purpose, Declared, PURL string }
	var got []p
	for _, sp := range doc.Packages {
		purl := ""
		for _, r := range sp.PackageExternalReferences {
			purl = r.Locator
		}
		got = append(got, p{sp.PackageName, sp.PackageVersion, sp.PrimaryPackagePurpose, sp.PackageLicenseDeclared, purl})
	}
	want := []p{
		{"oci-archive:app.tar", img.Digest, "CONTAINER", "NOASSERTION", ""},
		{"alpine", "3.20.3", "OPERATING-SYSTEM", "NOASSERTION", ""},
		{"musl", "1.2.5-r0", "LIBRARY", "MIT", "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3"},
		{"busybox", "1.36.1-r29", "LIBRARY", "GPL-2.0-only", "pkg:apk/alpine/busybox@1.36.1-r29"},
		{"a", "1.0.0", "LIBRARY", "(MIT OR Apache-2.0)", "pkg:npm/a@1.0.0"},
		{"b", "2.0.0", "LIBRARY", "LicenseRef-GPL-2 AND LicenseRef-Artistic-or-GPL-1 AND MIT", "pkg:npm/b@2.0.0"},
		{"c", "3.0.0", "LIBRARY", "LicenseRef-GPL-2-2", "pkg:npm/c@3.0.0"},
		{"d", "4.0.0", "LIBRARY", "NOASSERTION", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
	var others []string
	for _, o := range doc.OtherLicenses {
		others = append(others, o.LicenseIdentifier+"="+o.ExtractedText)
	}
	if diff := cmp.Diff([]string{"LicenseRef-GPL-2=GPL-2+", "LicenseRef-Artistic-or-GPL-1=Artistic or GPL-1+", "LicenseRef-GPL-2-2=GPL 2+"}, others); diff != "" {
		t.Errorf("other licenses (-want +got):\n%s", diff)
	}
	if len(doc.Relationships) != 1+7 {
		t.Errorf("%d relationships", len(doc.Relationships))
	}
}

func TestJSON(t *testing.T) {
	img, inv := sample()
	var b bytes.Buffer
	if err := JSON(&b, img, inv); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Schema  string
		Image   Image
		OS      *pkg.OS
		Targets []analyze.Target
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != Schema || doc.Image != img || doc.OS.ID != "alpine" || len(doc.Targets) != 2 {
		t.Errorf("%+v", doc)
	}
}

func TestLicenseClassification(t *testing.T) {
	for raw, want := range map[string][2]string{
		"MIT":                                  {"MIT", "MIT"},
		"mit":                                  {"MIT", "MIT"},
		"Apache-2.0":                           {"Apache-2.0", "Apache-2.0"},
		"MIT OR Apache-2.0":                    {"", "MIT OR Apache-2.0"},
		"(mit or apache-2.0) AND bsd-3-clause": {"", "(MIT OR Apache-2.0) AND BSD-3-Clause"},
		"GPL-2.0-or-later WITH Classpath-exception-2.0": {"", "GPL-2.0-or-later WITH Classpath-exception-2.0"},
		"LicenseRef-custom AND MIT":                     {"", "LicenseRef-custom AND MIT"},
		"GPL-2+":                                        {"", ""},
		"Apache 2.0":                                    {"", ""},
		"MIT AND":                                       {"", ""},
		"(MIT":                                          {"", ""},
		"MIT WITH Apache-2.0":                           {"", ""},
		"":                                              {"", ""},
	} {
		l := classify(raw)
		if l.id != want[0] || l.expr != want[1] {
			t.Errorf("classify(%q) = id %q expr %q, want %q %q", raw, l.id, l.expr, want[0], want[1])
		}
	}
}
