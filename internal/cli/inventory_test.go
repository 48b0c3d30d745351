package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-cmp/cmp"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/registrytest"
	"github.com/lading-dev/lading/internal/sbom"
)

// summary is what an inventory says, for comparing across transports.
func inventorySummary(t *testing.T, out string) []string {
	t.Helper()
	var doc sbom.Document
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("inventory JSON: %v\n%s", err, out)
	}
	var s []string
	if doc.OS != nil {
		s = append(s, "os "+doc.OS.ID+" "+doc.OS.VersionID)
	}
	for _, tg := range doc.Targets {
		for _, p := range tg.Packages {
			s = append(s, tg.Path+" "+p.Name+" "+p.Version+" "+layerOf(p.Layer))
		}
	}
	for _, r := range doc.Removed {
		s = append(s, "removed "+r.Name+" "+r.Version)
	}
	return s
}

// The inventory is the same whatever transport the image comes through.
func TestInventoryTransports(t *testing.T) {
	corpus := corpustest.Dir(t)
	l := newLading(t)
	oci := filepath.Join(corpus, "images", "alpine-3.20-app.oci.tar")
	want := inventorySummary(t, l.ok("inventory", "--format", "json", "oci-archive:"+oci))
	// The OS, 12 apk, 81 in node_modules, the Go binary's 15 modules and
	// stdlib, 2 removed apk; no package-lock.json, no go.mod (image mode).
	if len(want) != 1+12+81+16+2 {
		t.Fatalf("%d lines:\n%s", len(want), strings.Join(want, "\n"))
	}

	layout := t.TempDir()
	if out, err := exec.Command("tar", "-xf", oci, "-C", layout).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	refs := []string{
		"docker-archive:" + filepath.Join(corpus, "images", "alpine-3.20-app.docker.tar.gz"),
		"oci:" + layout + ":latest",
	}
	l.ok("pull", "oci-archive:"+oci, "corpus/app:1")
	refs = append(refs, "local:corpus/app:1", "corpus/app:1")
	for _, ref := range refs {
		if diff := cmp.Diff(want, inventorySummary(t, l.ok("inventory", "--format", "json", ref))); diff != "" {
			t.Errorf("%s differs from the oci-archive (-oci-archive +%s):\n%s", ref, ref, diff)
		}
	}
	reg := registrytest.Start(t, registrytest.None)
	l.ok("push", "corpus/app:1", reg.Host+"/corpus/app:1")
	if diff := cmp.Diff(want, inventorySummary(t, l.ok("inventory", "--format", "json", "--no-cache", "docker://"+reg.Host+"/corpus/app:1"))); diff != "" {
		t.Errorf("registry differs (-oci-archive +registry):\n%s", diff)
	}

	// dir: a root filesystem directory is a one-layer image.
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "lib/apk/db"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/alpine-release"), []byte("3.20.3\n"), 0o644)
	os.WriteFile(filepath.Join(root, "lib/apk/db/installed"), []byte("P:musl\nV:1.2.5-r0\nA:x86_64\n\n"), 0o644)
	got := inventorySummary(t, l.ok("inventory", "--format", "json", "dir:"+root))
	if diff := cmp.Diff([]string{"os alpine 3.20.3", "/lib/apk/db/installed musl 1.2.5-r0 0"}, got); diff != "" {
		t.Errorf("dir: (-want +got):\n%s", diff)
	}
}

func TestInventoryTable(t *testing.T) {
	corpus := corpustest.Dir(t)
	l := newLading(t)
	out := l.ok("inventory", "oci-archive:"+filepath.Join(corpus, "images", "debian-12-app.oci.tar"))
	for _, want := range []string{
		"OS:        Debian GNU/Linux 12 (bookworm) (debian 12.15)",
		"/var/lib/dpkg/status (dpkg, 96)",
		"libssl3                       3.0.22-1~deb12u2        openssl                    3",
		"/usr/lib/python3/dist-packages (python-packages, 5)",
		"/usr/share/java/jackson-core.jar (jar, 1)",
		"e2fsprogs  1.47.0-2+b2  0             2           /var/lib/dpkg/status",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if _, errs, code := l.run("inventory", "--format", "xml", "x"); code != exitUsage || !strings.Contains(errs, "table or json") {
		t.Errorf("bad format: exit %d, %q", code, errs)
	}
}

func TestSBOMFormats(t *testing.T) {
	corpus := corpustest.Dir(t)
	l := newLading(t)
	img := "oci-archive:" + filepath.Join(corpus, "images", "alpine-3.20-app.oci.tar")
	dir := t.TempDir()

	l.ok("sbom", img, "--format", "cyclonedx", "-o", filepath.Join(dir, "bom.cdx.json"))
	b, _ := os.ReadFile(filepath.Join(dir, "bom.cdx.json"))
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || len(*bom.Components) != 1+12+81+16 {
		t.Errorf("CycloneDX: spec %v, %d components", bom.SpecVersion, len(*bom.Components))
	}
	purls := map[string]bool{}
	for _, c := range *bom.Components {
		if purls[c.PackageURL] && c.PackageURL != "" {
			t.Errorf("CycloneDX: %s is two components", c.PackageURL)
		}
		purls[c.PackageURL] = true
	}
	for _, p := range []string{"pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3", "pkg:npm/lodash@4.17.4", "pkg:golang/github.com/gin-gonic/gin@v1.8.1", "pkg:golang/stdlib@v1.26.8"} {
		if !purls[p] {
			t.Errorf("CycloneDX lacks %s", p)
		}
	}

	out := l.ok("sbom", img, "--format", "spdx")
	doc, err := spdxjson.Read(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("SPDX: %v", err)
	}
	if len(doc.Packages) != 1+1+12+81+16 {
		t.Errorf("SPDX: %d packages", len(doc.Packages))
	}

	out = l.ok("sbom", img, "--format", "json")
	if s := inventorySummary(t, out); len(s) != 1+12+81+16+2 {
		t.Errorf("json: %d lines", len(s))
	}
	if _, errs, code := l.run("sbom", img); code != exitUsage || !strings.Contains(errs, "format") {
		t.Errorf("no format: exit %d, %q", code, errs)
	}
}

func TestCacheCommand(t *testing.T) {
	corpus := corpustest.Dir(t)
	l := newLading(t)
	l.ok("inventory", "oci-archive:"+filepath.Join(corpus, "images", "alpine-3.9.oci.tar"))
	if out := l.ok("cache", "info"); !strings.Contains(out, ": 1 layers,") {
		t.Errorf("cache info: %q", out)
	}
	if out := l.ok("cache", "clean"); !strings.Contains(out, "Removed the results of 1 layers") {
		t.Errorf("cache clean: %q", out)
	}
	if out := l.ok("cache", "info"); !strings.Contains(out, ": 0 layers,") {
		t.Errorf("cache info after clean: %q", out)
	}
	l.ok("inventory", "--no-cache", "oci-archive:"+filepath.Join(corpus, "images", "alpine-3.9.oci.tar"))
	if out := l.ok("cache", "info"); !strings.Contains(out, ": 0 layers,") {
		t.Errorf("--no-cache wrote to the cache: %q", out)
	}
}

// --mode fs reports a source tree's declarations; the default image mode
// reports what is installed only.
func TestInventoryModes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package-lock.json", `{"name": "app", "lockfileVersion": 3, "packages": {
		"": {"name": "app", "dependencies": {"a": "1.0.0"}},
		"node_modules/a": {"version": "1.0.0"},
		"node_modules/b": {"version": "2.0.0"}}}`)
	write("node_modules/a/package.json", `{"name": "a", "version": "1.0.0"}`)
	write("go.mod", "module example.com/app\n\ngo 1.22\n\nrequire (\n\tgolang.org/x/text v0.3.6\n\tgolang.org/x/sys v0.1.0 // indirect\n)\n")
	l := newLading(t)
	targets := func(out string) []string {
		var doc sbom.Document
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("inventory JSON: %v\n%s", err, out)
		}
		var s []string
		for _, tg := range doc.Targets {
			s = append(s, fmt.Sprintf("%s %s %d", tg.Path, tg.Type, len(tg.Packages)))
		}
		return s
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"dir:" + dir}, []string{"/node_modules node_modules 1"}},
		{[]string{"--mode", "image", "dir:" + dir}, []string{"/node_modules node_modules 1"}},
		{[]string{"--mode", "fs", dir}, []string{"/go.mod gomod 2", "/node_modules node_modules 1", "/package-lock.json npm 2"}},
		{[]string{"--mode", "fs", "dir:" + dir}, []string{"/go.mod gomod 2", "/node_modules node_modules 1", "/package-lock.json npm 2"}},
	} {
		got := targets(l.ok(append([]string{"inventory", "--no-cache", "--format", "json"}, tc.args...)...))
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tc.args, diff)
		}
	}
	for _, args := range [][]string{
		{"inventory", "--mode", "fs", filepath.Join(dir, "go.mod")},
		{"inventory", "--mode", "fs", filepath.Join(dir, "missing")},
		{"sbom", "--format", "json", "--mode", "src", dir},
	} {
		if _, errs, code := l.run(args...); code != exitUsage || !strings.Contains(errs, "--mode") {
			t.Errorf("%v: exit %d, %q", args, code, errs)
		}
	}
}
