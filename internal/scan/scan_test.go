package scan

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/pkg"
	"github.com/lading-dev/lading/internal/report"
	"github.com/lading-dev/lading/internal/vulndb"
	"github.com/lading-dev/lading/internal/vulndb/feed"
)

// testDB builds a database from the hand-written feeds in testdata.
func testDB(t *testing.T) (*vulndb.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vuln.db")
	if _, err := feed.Build(context.Background(), nil, path, []string{"testdata/feeds"}); err != nil {
		t.Fatal(err)
	}
	db, err := vulndb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func attr(intro, changed int) *pkg.Attribution {
	return &pkg.Attribution{Introduced: pkg.LayerRef{Index: intro}, Changed: pkg.LayerRef{Index: changed}}
}

// inventory is what the analysis of a small Alpine image with an npm app
// would give.
func inventory() *analyze.Inventory {
	apk := func(name, ver, src string, a *pkg.Attribution) pkg.Package {
		return pkg.Package{Name: name, Version: ver, Ecosystem: pkg.Apk, Source: &pkg.Source{Name: src}, Location: "/lib/apk/db/installed", Layer: a}
	}
	return &analyze.Inventory{
		OS: &pkg.OS{ID: "alpine", VersionID: "3.10.4", Family: "alpine"},
		Targets: []analyze.Target{
			{Path: "/lib/apk/db/installed", Type: "apk", Class: analyze.ClassOS, Packages: []pkg.Package{
				apk("libcrypto1.1", "1.1.1d-r2", "openssl", attr(0, 2)),
				apk("libssl1.1", "1.1.1d-r2", "openssl", attr(0, 0)),
				apk("musl", "1.1.22-r3", "musl", attr(0, 0)),
				apk("zlib", "1.2.11-r1", "zlib", attr(0, 0)),
			}},
			{Path: "/app/package-lock.json", Type: "npm", Class: analyze.ClassLang, Packages: []pkg.Package{
				{Name: "lodash", Version: "4.17.4", Ecosystem: pkg.Npm, Location: "/app/package-lock.json", Layer: attr(3, 3)},
				{Name: "lodash", Version: "4.17.10", Ecosystem: pkg.Npm, Location: "/app/node_modules/x/node_modules/lodash/package.json", Layer: attr(3, 3)},
			}},
		},
		Removed: []analyze.Removed{{Package: apk("scanelf", "1.2.3-r0", "scanelf", attr(0, 0)), RemovedIn: pkg.LayerRef{Index: 2}}},
		Layers: []analyze.LayerInfo{
			{Index: 0, DiffID: "sha256:l0", CreatedBy: "ADD rootfs /"},
			{Index: 1, DiffID: "sha256:l1", CreatedBy: "RUN rm -f /etc/motd"},
			{Index: 2, DiffID: "sha256:l2", CreatedBy: "RUN apk del libc-utils"},
			{Index: 3, DiffID: "sha256:l3", CreatedBy: "COPY app/ /app/"},
		},
	}
}

type got struct {
	Pkg, Version, ID, Fixed, Status, Severity string
	Layer, Changed                            int
	Base                                      bool
}

func flatten(fs []report.Finding) []got {
	var out []got
	for _, f := range fs {
		g := got{Pkg: f.PkgName, Version: f.InstalledVersion, ID: f.VulnerabilityID, Fixed: f.FixedVersion, Status: f.Status, Severity: f.Severity, Layer: -1, Changed: -1}
		if f.Layer != nil {
			g.Layer, g.Base = f.Layer.Index, f.Layer.Base
		}
		if f.ChangedIn != nil {
			g.Changed = f.ChangedIn.Index
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pkg+out[i].ID < out[j].Pkg+out[j].ID })
	return out
}

// TestInventory checks what a scan finds against what the hand-written
// feeds say: Alpine's secdb keyed by origin (openssl's fix reaches
// libcrypto1.1 and libssl1.1; a fix older than the installed version does
// not apply) and an OSV npm range.
func TestInventory(t *testing.T) {
	db, path := testDB(t)
	s := New(db, path, nil)
	s.now = func() time.Time { return time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC) }
	r, err := s.Inventory(context.Background(), inventory(), "container_image", ImageInfo{Name: "test", BaseLayers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Results[0].Target != "alpine 3.10.4 (alpine)" || r.Results[1].Target != "/app/package-lock.json" {
		t.Fatalf("targets: %q, %q", r.Results[0].Target, r.Results[1].Target)
	}
	wantOS := []got{
		{"libcrypto1.1", "1.1.1d-r2", "CVE-2019-1551", "1.1.1d-r3", "fixed", "UNKNOWN", 0, 2, true},
		{"libssl1.1", "1.1.1d-r2", "CVE-2019-1551", "1.1.1d-r3", "fixed", "UNKNOWN", 0, -1, true},
		{"musl", "1.1.22-r3", "CVE-2020-28928", "1.1.22-r4", "fixed", "UNKNOWN", 0, -1, true},
	}
	if diff := cmp.Diff(wantOS, flatten(r.Results[0].Vulnerabilities)); diff != "" {
		t.Errorf("OS findings (-want +got):\n%s", diff)
	}
	wantLang := []got{{"lodash", "4.17.4", "CVE-2018-3721", "4.17.5", "fixed", "MEDIUM", 3, -1, false}}
	if diff := cmp.Diff(wantLang, flatten(r.Results[1].Vulnerabilities)); diff != "" {
		t.Errorf("npm findings (-want +got):\n%s", diff)
	}
	if f := r.Results[1].Vulnerabilities[0]; f.Layer.CreatedBy != "COPY app/ /app/" || f.Layer.DiffID != "sha256:l3" || len(f.CVSS) != 1 || f.CVSS[0].Score != 6.5 {
		t.Errorf("lodash finding: layer %+v, CVSS %+v", f.Layer, f.CVSS)
	}
	if len(r.Removed) != 1 || r.Removed[0].PkgName != "scanelf" || r.Removed[0].RemovedIn.Index != 2 ||
		len(r.Removed[0].Vulnerabilities) != 1 || r.Removed[0].Vulnerabilities[0].VulnerabilityID != "CVE-2019-99999" {
		t.Errorf("removed: %+v", r.Removed)
	}
	if r.Total() != 4 || r.Metadata.PackageSize != 6 {
		t.Errorf("total %d, packages %d", r.Total(), r.Metadata.PackageSize)
	}
}

func TestFromSBOM(t *testing.T) {
	db, path := testDB(t)
	s := New(db, path, nil)
	for _, file := range []string{"testdata/sbom/app.cdx.json", "testdata/sbom/app.spdx.json"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			inv, err := FromSBOM(f, file)
			if err != nil {
				t.Fatal(err)
			}
			if inv.OS == nil || inv.OS.ID != "alpine" || inv.OS.VersionID != "3.10.4" {
				t.Fatalf("OS %+v", inv.OS)
			}
			r, err := s.Inventory(context.Background(), inv, "sbom", ImageInfo{Name: file})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, res := range r.Results {
				for _, v := range res.Vulnerabilities {
					ids = append(ids, v.PkgName+" "+v.VulnerabilityID)
				}
			}
			sort.Strings(ids)
			want := []string{"lodash CVE-2018-3721", "musl CVE-2020-28928"}
			if file == "testdata/sbom/app.cdx.json" {
				// libcrypto1.1's origin comes from a property.
				want = []string{"libcrypto1.1 CVE-2019-1551", "lodash CVE-2018-3721", "musl CVE-2020-28928"}
			}
			if diff := cmp.Diff(want, ids); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := FromSBOM(stringsReader(`{"hello":1}`), "x"); err == nil {
		t.Error("a JSON document that is no SBOM was accepted")
	}
}

func TestBaseLayers(t *testing.T) {
	h := func(createdBy string, empty bool) v1.History {
		return v1.History{CreatedBy: createdBy, EmptyLayer: empty}
	}
	tests := []struct {
		name    string
		history []v1.History
		want    int
	}{
		{"docker build FROM alpine", []v1.History{
			h("/bin/sh -c #(nop) ADD file:abc in / ", false), h(`/bin/sh -c #(nop)  CMD ["/bin/sh"]`, true),
			h("/bin/sh -c apk add curl", false), h("/bin/sh -c #(nop) COPY dir:x in /app", false), h(`/bin/sh -c #(nop)  CMD ["/app/run"]`, true),
		}, 1},
		{"buildkit ENTRYPOINT in the base", []v1.History{
			h("ADD rootfs.tar.gz /", false), h("RUN apt-get install -y x", false), h(`ENTRYPOINT ["/bin/x"]`, true),
			h("COPY . /src", false),
		}, 2},
		{"the image's own CMD only", []v1.History{h("ADD rootfs /", false), h(`CMD ["sh"]`, true)}, 0},
		{"no history", nil, 0},
		{"FROM scratch, several layers", []v1.History{h("ADD a /", false), h("ADD b /", false)}, 0},
	}
	for _, tt := range tests {
		if got := BaseLayers(tt.history); got != tt.want {
			t.Errorf("%s: BaseLayers = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func FuzzFromSBOM(f *testing.F) {
	for _, p := range []string{"testdata/sbom/app.cdx.json", "testdata/sbom/app.spdx.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		FromSBOM(bytesReader(b), "fuzz")
	})
}
