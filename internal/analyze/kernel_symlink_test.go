package analyze

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/overlaytest"
	"github.com/lading-dev/lading/internal/pkg"
)

// The kernel is the truth about symlinks in the merged filesystem too:
// these tests mount stacks with overlayfs and open the file an anchored
// analyzer wants with openat2(RESOLVE_IN_ROOT), which resolves every
// symlink on the way within the merged root, as a chroot would. The merge
// must report that file's content under the path the analyzer wants, and
// nothing when the kernel finds no file there.

// anchoredEcho wants var/db/installed, reached through any symlinks, and
// reports its content as the version of a package named "db".
type anchoredEcho struct{}

func (anchoredEcho) Name() string                            { return "anchored" }
func (anchoredEcho) Version() int                            { return 1 }
func (anchoredEcho) Wants(p string, _ fs.FileInfo) bool      { return p == "var/db/installed" }
func (anchoredEcho) Anchors() []string                       { return []string{"var/db"} }
func (anchoredEcho) WantsMoved(p string, _ fs.FileInfo) bool { return path.Base(p) == "installed" }
func (anchoredEcho) Analyze(_ context.Context, f *analyzer.File) (*analyzer.Result, error) {
	b, err := f.ReadAll(1 << 20)
	if err != nil {
		return nil, err
	}
	return &analyzer.Result{Packages: []pkg.Package{{Name: "db", Version: contentVersion(b), Ecosystem: "anchored"}}}, nil
}

const wantedPath = "var/db/installed"

// kernelAnchored opens wantedPath in the merged tree of layers as a chroot
// would and returns "path=content", "" when there is no such file, or
// "loop" when the kernel gives up on a symlink loop.
func kernelAnchored(t testing.TB, layers [][]byte) (string, error) {
	st := overlaytest.New(t)
	for _, l := range layers {
		if err := st.Add(bytes.NewReader(l), false); err != nil {
			return "", err
		}
	}
	merged, unmount := st.Mount(false)
	defer unmount()
	f, err := overlaytest.OpenInRoot(merged, wantedPath)
	switch {
	case errors.Is(err, unix.ELOOP):
		return "loop", nil
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return "", nil
	case err != nil:
		t.Fatal(err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", nil // a directory, a whiteout device
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return wantedPath + "=" + contentVersion(b), nil
}

// mergedAnchored is what the merge says of wantedPath, in the same form.
func mergedAnchored(t testing.TB, layers [][]byte) string {
	inv, err := Layers(context.Background(), sourcesOf(layers), WithAnalyzers(anchoredEcho{}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range inv.Packages() {
		got = append(got, strings.TrimPrefix(p.Location, "/")+"="+p.Version)
	}
	for _, w := range inv.Warnings {
		if strings.Contains(w.Message, "too many levels of symbolic links") {
			got = append(got, "loop")
		}
	}
	return strings.Join(got, ",")
}

func symlinkCases() []struct {
	name   string
	layers [][]ent
	want   string
} {
	db := wantedPath + "="
	return []struct {
		name   string
		layers [][]ent
		want   string
	}{
		{"literal path", [][]ent{{file(wantedPath, "a")}}, db + "a"},
		{"directory moved, symlink left behind", [][]ent{
			{file("data/installed", "moved"), dir("var"), symlink("var/db", "../data")},
		}, db + "moved"},
		{"absolute link within the root", [][]ent{
			{file("data/installed", "abs"), dir("var"), symlink("var/db", "/data")},
		}, db + "abs"},
		{"link that climbs above the root stays in it", [][]ent{
			{file("data/installed", "clamped"), dir("var"), symlink("var/db", "../../../../../data")},
		}, db + "clamped"},
		{"usrmerge: a parent directory is the link", [][]ent{
			{file("usr/var/db/installed", "usr"), symlink("var", "usr/var")},
		}, db + "usr"},
		{"a chain of links", [][]ent{
			{file("srv/x/installed", "chain"), symlink("data", "srv/x"), dir("var"), symlink("var/db", "/data")},
		}, db + "chain"},
		{"a later layer replaces the directory by a link", [][]ent{
			{file(wantedPath, "old")},
			{file("data/installed", "new"), dir("var"), symlink("var/db", "../data")},
		}, db + "new"},
		{"a later layer replaces the directory by a link to nothing", [][]ent{
			{file(wantedPath, "old")},
			{dir("var"), symlink("var/db", "../nowhere")},
		}, ""},
		{"the link comes before what it points at", [][]ent{
			{dir("var"), symlink("var/db", "/data")},
			{file("data/installed", "later")},
		}, db + "later"},
		{"a later layer replaces the link by a directory", [][]ent{
			{file("data/installed", "via link"), dir("var"), symlink("var/db", "/data")},
			{file(wantedPath, "real")},
		}, db + "real"},
		{"a whiteout removes the link", [][]ent{
			{file("data/installed", "via link"), dir("var"), symlink("var/db", "/data")},
			{whiteout("var/db")},
		}, ""},
		{"a later layer rewrites the target", [][]ent{
			{file("data/installed", "v1"), dir("var"), symlink("var/db", "/data")},
			{file("data/installed", "v2")},
		}, db + "v2"},
		{"a later layer repoints the link", [][]ent{
			{file("data/installed", "one"), file("other/installed", "two"), dir("var"), symlink("var/db", "/data")},
			{dir("var"), symlink("var/db", "/other")},
		}, db + "two"},
		{"an opaque directory hides the target", [][]ent{
			{file("data/installed", "hidden"), dir("var"), symlink("var/db", "/data")},
			{opaque("data"), file("data/other", "x")},
		}, ""},
		{"a loop", [][]ent{
			{dir("var"), symlink("var/db", "loop"), symlink("var/loop", "db"), file("data/installed", "x")},
		}, "loop"},
		{"a file of that name that no link reaches", [][]ent{
			{file("data/installed", "stray"), file("var/x", "x")},
		}, ""},
	}
}

// TestKernelSymlinks checks crafted shapes: databases behind symlinked
// directories, links and directories replacing each other across layers.
func TestKernelSymlinks(t *testing.T) {
	overlaytest.Require(t)
	for _, tc := range symlinkCases() {
		t.Run(tc.name, func(t *testing.T) {
			layers := stack(t, tc.layers...)
			kernel, err := kernelAnchored(t, layers)
			if err != nil {
				t.Fatal(err)
			}
			if kernel != tc.want {
				t.Errorf("the test's expectation %q differs from the kernel's %q", tc.want, kernel)
			}
			if got := mergedAnchored(t, layers); got != kernel {
				t.Errorf("merge says %q, the kernel %q", got, kernel)
			}
		})
	}
}

// randomSymlinkStack makes layers from a random sequence of files,
// directories, symlinks, whiteouts and opaque markers over names around
// var/db/installed.
func randomSymlinkStack(r *rand.Rand) [][]ent {
	names := []string{"var", "var/db", "var/db/installed", "data", "data/installed", "data/db",
		"data/db/installed", "usr", "usr/var", "usr/var/db", "usr/var/db/installed", "x"}
	targets := []string{"data", "/data", "../data", "../../data", "usr/var", "/usr/var", "../usr/var",
		"db", "/var/db", "var", "x", "data/db", "/", "..", "../var/db"}
	// A file the analyzer reads keeps the name it wants: a link named
	// installed points at a file named installed.
	fileTargets := []string{"/data/installed", "../../data/installed", "../db/installed", "installed",
		"/usr/var/db/installed", "../../data/db/installed", "/var/db/installed", "../../usr/var/db/installed"}
	var layers [][]ent
	for range 1 + r.IntN(4) {
		var l []ent
		used := map[string]bool{}
		for range 1 + r.IntN(5) {
			n := names[r.IntN(len(names))]
			clash := used[n]
			for u := range used {
				if strings.HasPrefix(n, u+"/") || strings.HasPrefix(u, n+"/") {
					clash = true
				}
			}
			if clash {
				continue
			}
			used[n] = true
			switch r.IntN(6) {
			case 0, 1:
				l = append(l, file(n, fmt.Sprintf("%s-%d", strings.ReplaceAll(n, "/", ""), r.IntN(3))))
			case 2:
				l = append(l, dir(n), file(n+"/installed", "f"+fmt.Sprint(r.IntN(2))))
			case 3, 4:
				if path.Base(n) == "installed" {
					l = append(l, symlink(n, fileTargets[r.IntN(len(fileTargets))]))
				} else {
					l = append(l, symlink(n, targets[r.IntN(len(targets))]))
				}
			case 5:
				if r.IntN(2) == 0 {
					l = append(l, whiteout(n))
				} else {
					l = append(l, opaque(n), file(n+"/g", "g"))
				}
			}
		}
		layers = append(layers, l)
	}
	return layers
}

// TestKernelRandomSymlinks compares the merge with the kernel on random
// stacks of symlinks and directories.
func TestKernelRandomSymlinks(t *testing.T) {
	overlaytest.Require(t)
	n := 300
	if testing.Short() {
		n = 30
	}
	r := rand.New(rand.NewPCG(11, 7))
	var compared, found, notApplicable, refused int
	for i := range n {
		ents := randomSymlinkStack(r)
		layers := make([][]byte, len(ents))
		ok := true
		for k, l := range ents {
			layers[k] = tarOf(t, l...)
			if layer.Walk(context.Background(), bytes.NewReader(layers[k]), func(*layer.Entry) error { return nil }) != nil {
				ok = false
			}
		}
		if !ok {
			refused++
			continue
		}
		kernel, err := kernelAnchored(t, layers)
		if errors.Is(err, overlaytest.ErrNotApplicable) {
			notApplicable++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		compared++
		if kernel != "" {
			found++
		}
		got := mergedAnchored(t, layers)
		if kernel == "loop" && got == "" {
			continue // no package; the loop is not on the way to a file
		}
		if got != kernel {
			t.Errorf("stack %d: merge says %q, the kernel %q\nlayers: %s", i, got, kernel, describe(ents))
		}
	}
	t.Logf("%d stacks: %d compared (%d with a file at %s), %d refused by the walker, %d not applicable",
		n, compared, found, wantedPath, refused, notApplicable)
	if compared < n/2 || found < compared/10 {
		t.Errorf("only %d of %d stacks compared, %d with a file", compared, n, found)
	}
}
