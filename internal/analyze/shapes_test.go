package analyze

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/overlaytest"
	"github.com/lading-dev/lading/internal/pkg"
	"github.com/lading-dev/lading/internal/testenv"
)

// Shapes of real images that the corpus does not have, built by the tests
// from the corpus's real package databases and binaries: databases behind
// symlinked directories (apk, dpkg, rpm), usrmerge, a directory replaced by
// a symlink in a later layer, node_modules deleted with its lockfile left,
// a go.mod beside a binary, two Go binaries of which one is deleted. Each
// inventory is checked against the distribution's and the ecosystem's own
// tools on the root filesystem the kernel's overlayfs makes of the layers
// (the checker of the accuracy tests), and against lading's inventory of
// the same tree as a dir: root filesystem.

// corpusLayer returns layer i of a corpus image, uncompressed.
func corpusLayer(t *testing.T, name string, i int) []byte {
	t.Helper()
	ls, err := openCorpus(t, name)[0].Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ls[i].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// moved copies the entries of a layer below from (a directory, or "." for
// all) to below to, with their content; symlink targets are kept, hard link
// targets moved with them. keep, when not nil, picks the entries.
func moved(t *testing.T, layer []byte, from, to string, keep func(name string) bool) []ent {
	t.Helper()
	var out []ent
	tr := tar.NewReader(bytes.NewReader(layer))
	rename := func(n string) (string, bool) {
		n = path.Clean(n)
		if from == "." {
			return path.Join(to, n), true
		}
		if n != from && !strings.HasPrefix(n, from+"/") {
			return "", false
		}
		return path.Join(to, strings.TrimPrefix(n, from)), true
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		name, ok := rename(h.Name)
		if !ok || keep != nil && !keep(path.Clean(h.Name)) {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		hh := *h
		hh.Name = name
		if h.Typeflag == tar.TypeDir {
			hh.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			if hh.Linkname, ok = rename(h.Linkname); !ok {
				continue
			}
		}
		out = append(out, ent{hh, string(body)})
	}
}

// shape is a stack of layers, analyzed in both modes, and its merged root.
type shape struct {
	layers [][]byte
	inv    *Inventory
	fs     *Inventory
	root   string
	c      *checker
}

func newShape(t *testing.T, layers ...[]byte) *shape {
	t.Helper()
	s := &shape{layers: layers}
	var err error
	if s.inv, err = Layers(context.Background(), sourcesOf(layers)); err != nil {
		t.Fatal(err)
	}
	if s.fs, err = Layers(context.Background(), sourcesOf(layers), WithMode(ModeFS)); err != nil {
		t.Fatal(err)
	}
	if len(s.inv.Warnings) > 0 {
		t.Errorf("warnings: %v", s.inv.Warnings)
	}
	st := overlaytest.New(t)
	for _, l := range layers {
		if err := st.Add(bytes.NewReader(l), false); err != nil {
			t.Fatal(err)
		}
	}
	s.root, _ = st.Mount(true)
	s.c = &checker{t: t, root: s.root, inv: s.inv, fs: s.fs, hostRoot: s.root, native: runtime.GOARCH == "amd64"}
	return s
}

// sameAsDir checks that a dir: root filesystem of the merged tree has the
// packages the image has: symlinks are resolved the same way in both.
func (s *shape) sameAsDir(t *testing.T) {
	t.Helper()
	ref, err := image.Parse("dir:" + s.root)
	if err != nil {
		t.Fatal(err)
	}
	src, err := image.Open(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	inv, err := Image(context.Background(), src.Image)
	if err != nil {
		t.Fatal(err)
	}
	ignore := cmpopts.IgnoreFields(pkg.Package{}, "Layer")
	if diff := cmp.Diff(s.inv.Targets, inv.Targets, ignore, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("dir: of the merged tree differs from the image (-image +dir):\n%s", diff)
	}
}

func (s *shape) noneRemoved(t *testing.T) {
	t.Helper()
	if len(s.inv.Removed) > 0 {
		var rs []string
		for _, r := range s.inv.Removed {
			rs = append(rs, r.Name+" "+r.Version+" "+r.Location)
		}
		t.Errorf("listed as removed, but installed: %v", rs)
	}
}

func TestShapeSymlinkedDatabases(t *testing.T) {
	testenv.Root(t, "mounts overlayfs to build the root filesystem the tools read")
	overlaytest.Require(t)
	dbFile := func(name string) func(string) bool { return func(n string) bool { return n == name } }
	for _, tc := range []struct {
		name   string
		layers func(t *testing.T) [][]byte
		checks []func(c *checker, t *testing.T)
	}{
		{"apk database moved, absolute link left in a later layer", func(t *testing.T) [][]byte {
			base := corpusLayer(t, "alpine-3.20-app.oci.tar", 0)
			l1 := append(moved(t, base, "lib/apk/db", "data/apkdb", nil), symlink("lib/apk/db", "/data/apkdb"))
			return [][]byte{base, tarOf(t, l1...)}
		}, []func(*checker, *testing.T){(*checker).os, (*checker).apk}},
		{"apk link first, database written through it by a later layer", func(t *testing.T) [][]byte {
			base := corpusLayer(t, "alpine-3.20-app.oci.tar", 0)
			l1 := append(moved(t, base, "lib/apk/db", "srv/apk", nil), whiteout("lib/apk/db"))
			return [][]byte{base, tarOf(t, append(l1, symlink("lib/apk/db", "../../srv/apk"))...)}
		}, []func(*checker, *testing.T){(*checker).apk}},
		{"dpkg database moved, relative link", func(t *testing.T) [][]byte {
			base := corpusLayer(t, "ubuntu-18.04-pkgdb.oci.tar", 0)
			l1 := append(moved(t, base, "var/lib/dpkg", "data/dpkg", nil), symlink("var/lib/dpkg", "../../data/dpkg"))
			return [][]byte{base, tarOf(t, l1...)}
		}, []func(*checker, *testing.T){(*checker).os, (*checker).dpkg}},
		{"rpm sqlite database, Fedora's var/lib/rpm link", func(t *testing.T) [][]byte {
			base := corpusLayer(t, "mariner-2.0-rpmdb.oci.tar", 0)
			l1 := append(moved(t, base, "var/lib/rpm", "usr/lib/sysimage/rpm", dbFile("var/lib/rpm/rpmdb.sqlite")),
				symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm"))
			return [][]byte{base, tarOf(t, l1...)}
		}, []func(*checker, *testing.T){(*checker).rpm}},
		{"rpm Berkeley DB moved elsewhere, link in the same layer", func(t *testing.T) [][]byte {
			base := corpusLayer(t, "rhel-8-rpmdb-bdb.oci.tar", 0)
			l0 := moved(t, base, ".", ".", func(n string) bool { return !strings.HasPrefix(n, "var/lib/rpm") })
			l0 = append(l0, moved(t, base, "var/lib/rpm", "srv/rpmdb", nil)...)
			l0 = append(l0, symlink("var/lib/rpm", "../../srv/rpmdb"))
			return [][]byte{tarOf(t, l0...)}
		}, []func(*checker, *testing.T){(*checker).rpm}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newShape(t, tc.layers(t)...)
			if len(s.inv.Packages()) == 0 {
				t.Fatal("no packages found")
			}
			s.sameAsDir(t)
			s.noneRemoved(t)
			for _, check := range tc.checks {
				check(s.c, t)
			}
		})
	}
}

// goBinary is the Go binary of the corpus's alpine-3.20-app.
func goBinary(t *testing.T) ent {
	for _, e := range moved(t, corpusLayer(t, "alpine-3.20-app.oci.tar", 4), "usr/local/bin", "x", nil) {
		if e.h.Name == "x/corpus-p3-server" {
			return e
		}
	}
	t.Fatal("no Go binary in alpine-3.20-app")
	return ent{}
}

func renamed(e ent, name string) ent {
	e.h.Name = name
	return e
}

func TestShapeUsrmerge(t *testing.T) {
	testenv.Root(t, "mounts overlayfs to build the root filesystem the tools read")
	overlaytest.Require(t)
	base := corpusLayer(t, "alpine-3.20-app.oci.tar", 0)
	// usrmerge: /lib and /bin move below /usr, and links take their place.
	merged := moved(t, base, "lib", "usr/lib", nil)
	merged = append(merged, moved(t, base, "bin", "usr/bin", nil)...)
	merged = append(merged, symlink("lib", "usr/lib"), symlink("bin", "usr/bin"))
	// The application: node_modules with its lockfile, a Go binary with a
	// go.mod beside it, below the merged directories.
	app := moved(t, corpusLayer(t, "alpine-3.20-app.oci.tar", 3), "app", "usr/lib/app", nil)
	src := corpusLayer(t, "alpine-3.20-app.oci.tar", 4)
	app = append(app, renamed(goBinary(t), "usr/lib/goapp/server"))
	app = append(app, moved(t, src, "app-src/go.mod", "usr/lib/goapp/go.mod", nil)...)
	s := newShape(t, base, tarOf(t, merged...), tarOf(t, app...))
	s.sameAsDir(t)
	s.noneRemoved(t)
	t.Run("os", s.c.os)
	t.Run("apk", s.c.apk)
	t.Run("npm", s.c.npm)
	t.Run("go", s.c.golang)
	if got := len(s.inv.Targets); got != 3 {
		t.Errorf("%d targets, want 3 (apk, node_modules, the binary): %v", got, targetNames(s.inv))
	}
}

func targetNames(inv *Inventory) []string {
	var out []string
	for _, t := range inv.Targets {
		out = append(out, t.Path+" ("+t.Type+")")
	}
	return out
}

// npmLs lists name@version of every package npm ls --all shows in dir.
func npmLs(t *testing.T, dir string) []string {
	out := tool(t, dir, "npm", "ls", "--all", "--json")
	var tree struct {
		Dependencies map[string]json.RawMessage `json:"dependencies"`
	}
	if err := json.Unmarshal([]byte(out), &tree); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	var walk func(deps map[string]json.RawMessage)
	walk = func(deps map[string]json.RawMessage) {
		for name, raw := range deps {
			var n struct {
				Version      string                     `json:"version"`
				Dependencies map[string]json.RawMessage `json:"dependencies"`
			}
			json.Unmarshal(raw, &n)
			set[name+" "+n.Version] = true
			walk(n.Dependencies)
		}
	}
	walk(tree.Dependencies)
	var want []string
	for k := range set {
		want = append(want, k)
	}
	slices.Sort(want)
	return want
}

func TestShapeNodeModulesDeleted(t *testing.T) {
	testenv.Root(t, "mounts overlayfs to build the root filesystem the tools read")
	overlaytest.Require(t)
	var layers [][]byte
	for i := range 5 {
		layers = append(layers, corpusLayer(t, "alpine-3.20-app.oci.tar", i))
	}
	before := newShape(t, layers...)
	installed := npmLs(t, filepath.Join(before.root, "app"))
	s := newShape(t, append(layers, tarOf(t, whiteout("app/node_modules")))...)
	for _, tg := range s.inv.Targets {
		if tg.Type == "npm" || tg.Type == "node_modules" {
			t.Errorf("%s (%s) listed, but node_modules is gone", tg.Path, tg.Type)
		}
	}
	var removed []string
	for _, r := range s.inv.Removed {
		if r.Ecosystem == pkg.Npm {
			removed = append(removed, r.Name+" "+r.Version)
		}
	}
	if diff := cmp.Diff(installed, removed); diff != "" {
		t.Errorf("removed npm packages differ from what npm ls listed before (-npm ls +removed):\n%s", diff)
	}
	locks, _ := targetsOf(s.fs, "npm", nameVersion)
	if len(locks["/app/package-lock.json"]) == 0 {
		t.Error("a filesystem scan does not list the lockfile")
	}
}

// buildGo builds a Go program that uses the standard library only, with
// the toolchain running the tests.
func buildGo(t *testing.T) []byte {
	goTool := testenv.Tool(t, "go", "golang-go")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/tiny\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"tiny\") }\n"), 0o644)
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", "tiny", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "tiny"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestShapeGoBinaryDeleted(t *testing.T) {
	testenv.Root(t, "mounts overlayfs to build the root filesystem the tools read")
	overlaytest.Require(t)
	base := corpusLayer(t, "alpine-3.20-app.oci.tar", 0)
	server := goBinary(t)
	tiny := exe("usr/bin/tiny", string(buildGo(t)))
	bins := tarOf(t, renamed(server, "usr/bin/server"), renamed(server, "opt/server-copy"), tiny)
	before := newShape(t, base, bins)
	t.Run("go before", before.c.golang)
	// Two copies of one binary and a third binary: one SBOM entry per
	// module, with every place it is in.
	s := newShape(t, base, bins, tarOf(t, whiteout("usr/bin/server"), whiteout("opt/server-copy")))
	t.Run("go after", s.c.golang)
	// What the deleted binaries had and no binary left has: their
	// modules, once each; not the standard library, which tiny has.
	var want []string
	tinyHas := map[string]bool{}
	for _, tg := range before.inv.Targets {
		for _, p := range tg.Packages {
			if tg.Path == "/usr/bin/tiny" {
				tinyHas[p.Name+" "+p.Version] = true
			}
		}
	}
	for _, tg := range before.inv.Targets {
		if tg.Path != "/usr/bin/server" {
			continue
		}
		for _, p := range tg.Packages {
			if !tinyHas[p.Name+" "+p.Version] {
				want = append(want, p.Name+" "+p.Version)
			}
		}
	}
	if len(tinyHas) == 0 || len(want) == 0 {
		t.Fatalf("fixture: tiny has %v, server %v", tinyHas, want)
	}
	var got []string
	for _, r := range s.inv.Removed {
		if r.Ecosystem != pkg.Go {
			continue
		}
		got = append(got, r.Name+" "+r.Version)
		if diff := cmp.Diff([]string{"/opt/server-copy", "/usr/bin/server"}, r.Locations); diff != "" {
			t.Errorf("%s %s removed from (-want +got):\n%s", r.Name, r.Version, diff)
		}
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("removed Go modules (-want +got):\n%s", diff)
	}
}
