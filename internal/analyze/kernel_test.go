package analyze

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/overlaytest"
)

// The kernel is the truth about overlay rules. These tests mount layer
// stacks with overlayfs (internal/overlaytest) and check that the files the
// merge keeps results of are exactly the regular files of the merged tree,
// with the same content: an analyzer that wants every file (echo) reports
// one package per file whose version is the file's content.

// kernelFiles lists the regular files of a merged tree as
// "path=contentVersion".
func kernelFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, filepath.ToSlash(rel)+"="+contentVersion(b))
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", root, err)
	}
	slices.Sort(out)
	return out
}

// withoutLayers drops the "@layer" of view lines.
func withoutLayers(v []string) []string {
	var out []string
	for _, s := range v {
		out = append(out, s[:strings.LastIndexByte(s, '@')])
	}
	return out
}

func kernelView(t testing.TB, layers [][]byte, gz bool) ([]string, error) {
	st := overlaytest.New(t)
	for _, l := range layers {
		if err := st.Add(bytes.NewReader(l), gz); err != nil {
			return nil, err
		}
	}
	merged, unmount := st.Mount(false)
	defer unmount()
	return kernelFiles(t, merged), nil
}

func TestKernelMerge(t *testing.T) {
	overlaytest.Require(t)
	for _, tc := range mergeCases() {
		t.Run(tc.name, func(t *testing.T) {
			layers := stack(t, tc.layers...)
			// Where the kernel is not the truth (it says why), the case's
			// expectation is: the merge is still checked against it.
			kernel := withoutLayers(tc.want)
			if tc.noKernel != "" {
				t.Logf("not compared with the kernel: %s", tc.noKernel)
			} else {
				var err error
				if kernel, err = kernelView(t, layers, false); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(withoutLayers(tc.want), kernel); diff != "" {
					t.Errorf("the test's expectation differs from the kernel (-want +kernel):\n%s", diff)
				}
			}
			inv, err := Layers(context.Background(), sourcesOf(layers), WithAnalyzers(echo{}))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(kernel, withoutLayers(view(inv))); diff != "" {
				t.Errorf("merge differs from the kernel (-kernel +merge):\n%s", diff)
			}
		})
	}
}

// randomStack makes layers from a random sequence of operations on a small
// set of names, so that they collide: files, directories, symlinks,
// whiteouts, opaque markers and hard links.
func randomStack(r *rand.Rand) [][]ent {
	names := []string{"a", "b", "a/x", "a/y", "b/x", "a/x/z", "a/x/w", "c", "c/d", "c/d/e"}
	var layers [][]ent
	var files []string // regular files of earlier layers, for hard links
	for range 2 + r.IntN(4) {
		var l []ent
		used := map[string]bool{}
		for range 1 + r.IntN(6) {
			n := names[r.IntN(len(names))]
			if used[n] {
				continue
			}
			// Entries below a non-directory of this layer are not allowed.
			clash := false
			for u := range used {
				if strings.HasPrefix(n, u+"/") || strings.HasPrefix(u, n+"/") {
					clash = true
				}
			}
			if clash {
				continue
			}
			used[n] = true
			switch r.IntN(7) {
			case 0, 1:
				l = append(l, file(n, fmt.Sprintf("%s-%d", strings.ReplaceAll(n, "/", ""), r.IntN(3))))
			case 2:
				l = append(l, dir(n), file(n+"/f", "f"+fmt.Sprint(r.IntN(2))))
			case 3:
				l = append(l, symlink(n, "c"))
			case 4:
				l = append(l, whiteout(n))
			case 5:
				l = append(l, opaque(n), file(n+"/g", "g"))
			case 6:
				if len(files) > 0 {
					l = append(l, hardlink(n, files[r.IntN(len(files))]))
				}
			}
		}
		for _, e := range l {
			if e.h.Typeflag == tar.TypeReg && !strings.Contains(e.h.Name, ".wh.") {
				files = append(files, e.h.Name)
			}
		}
		layers = append(layers, l)
	}
	return layers
}

// TestKernelRandomStacks compares the merge with the kernel on stacks made
// from a fixed random sequence.
func TestKernelRandomStacks(t *testing.T) {
	overlaytest.Require(t)
	n := 300
	if testing.Short() {
		n = 20
	}
	r := rand.New(rand.NewPCG(3, 1))
	var compared, refused, notApplicable int
	for i := range n {
		ents := randomStack(r)
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
		kernel, err := kernelView(t, layers, false)
		if errors.Is(err, overlaytest.ErrNotApplicable) {
			notApplicable++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		compared++
		inv, err := Layers(context.Background(), sourcesOf(layers), WithAnalyzers(echo{}))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(kernel, withoutLayers(view(inv))); diff != "" {
			t.Errorf("stack %d differs from the kernel (-kernel +merge):\n%s\nlayers: %s", i, diff, describe(ents))
		}
	}
	t.Logf("%d stacks: %d compared with the kernel, %d refused by the walker, %d not applicable", n, compared, refused, notApplicable)
	if compared < n/2 {
		t.Errorf("only %d of %d stacks compared", compared, n)
	}
}

func describe(layers [][]ent) string {
	var b strings.Builder
	for i, l := range layers {
		fmt.Fprintf(&b, "\n  %d:", i)
		for _, e := range l {
			switch e.h.Typeflag {
			case tar.TypeSymlink:
				fmt.Fprintf(&b, " %s->%s", e.h.Name, e.h.Linkname)
			case tar.TypeLink:
				fmt.Fprintf(&b, " %s=>%s", e.h.Name, e.h.Linkname)
			default:
				fmt.Fprintf(&b, " %s(%c)", e.h.Name, e.h.Typeflag)
			}
		}
	}
	return b.String()
}

// TestKernelCorpus compares, for every layer of every corpus image, the
// files the merge keeps with the files of the kernel's merged tree.
func TestKernelCorpus(t *testing.T) {
	overlaytest.Require(t)
	for _, name := range corpusOCIImages(t) {
		t.Run(name, func(t *testing.T) {
			for _, img := range openCorpus(t, name) {
				ls, err := img.Layers()
				if err != nil {
					t.Fatal(err)
				}
				var blobs [][]byte
				for _, l := range ls {
					rc, err := l.Compressed()
					if err != nil {
						t.Fatal(err)
					}
					b, err := io.ReadAll(rc)
					rc.Close()
					if err != nil {
						t.Fatal(err)
					}
					blobs = append(blobs, b)
				}
				kernel, err := kernelView(t, blobs, true)
				if err != nil {
					t.Fatal(err)
				}
				inv, err := Image(context.Background(), img, WithAnalyzers(echo{}))
				if err != nil {
					t.Fatal(err)
				}
				if len(inv.Warnings) > 0 {
					t.Errorf("warnings: %v", inv.Warnings)
				}
				got := withoutLayers(view(inv))
				if diff := cmp.Diff(kernel, got); diff != "" {
					t.Errorf("merge differs from the kernel (-kernel +merge):\n%s", diff)
				}
				t.Logf("%d layers, %d files agree", len(ls), len(got))
			}
		})
	}
}

// corpusOCIImages lists the corpus's OCI archives.
func corpusOCIImages(t testing.TB) []string {
	dir := corpustest.Dir(t)
	files, err := filepath.Glob(filepath.Join(dir, "images", "*.oci.tar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no OCI archives in %s: %v", dir, err)
	}
	var out []string
	for _, f := range files {
		out = append(out, filepath.Base(f))
	}
	return out
}

type imageOf = v1.Image

// openCorpus opens a corpus image file and returns its images: every
// platform of an index.
func openCorpus(t testing.TB, name string) []imageOf {
	p := corpustest.Image(t, name)
	transport := "oci-archive:"
	if !strings.HasSuffix(name, ".oci.tar") {
		transport = "docker-archive:"
	}
	ref, err := image.Parse(transport + p)
	if err != nil {
		t.Fatal(err)
	}
	src, err := image.Open(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	if src.Image != nil {
		return []imageOf{src.Image}
	}
	var out []imageOf
	for _, plat := range []string{"linux/amd64", "linux/arm64/v8"} {
		pl, _ := image.ParsePlatform(plat)
		img, err := src.Select(pl)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, img)
	}
	return out
}
