package analyze

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

// Crafted layers, built in memory.

type ent struct {
	h    tar.Header
	body string
}

var testTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func file(name, body string) ent {
	return ent{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: testTime}, body}
}
func exe(name, body string) ent {
	e := file(name, body)
	e.h.Mode = 0o755
	return e
}
func dir(name string) ent {
	return ent{tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: testTime}, ""}
}
func symlink(name, target string) ent {
	return ent{tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: testTime}, ""}
}
func hardlink(name, target string) ent {
	return ent{tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: testTime}, ""}
}
func whiteout(p string) ent { return file(path.Join(path.Dir(p), ".wh."+path.Base(p)), "") }
func opaque(d string) ent   { return file(path.Join(d, ".wh..wh..opq"), "") }

func tarOf(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := e.h
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("fixture %q: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// sourcesOf returns LayerSources over uncompressed tar layers, with their
// digests (the blob is the tar) and diffIDs.
func sourcesOf(layers [][]byte) []LayerSource {
	srcs := make([]LayerSource, len(layers))
	for i, data := range layers {
		srcs[i] = LayerSource{
			Digest: digestOf(data),
			DiffID: digestOf(data),
			Open: func(context.Context) (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(data)), nil
			},
		}
	}
	return srcs
}

func stack(t testing.TB, layers ...[]ent) [][]byte {
	out := make([][]byte, len(layers))
	for i, l := range layers {
		out[i] = tarOf(t, l...)
	}
	return out
}

// echo is a test analyzer: for every file it wants it reports one package
// named after the path whose version is the content's digest (or the
// content itself when short and printable).
type echo struct {
	want func(string) bool
	ver  int
}

func (echo) Name() string   { return "echo" }
func (e echo) Version() int { return e.ver }
func (e echo) Wants(p string, _ fs.FileInfo) bool {
	return e.want == nil || e.want(p)
}
func (echo) Analyze(_ context.Context, f *analyzer.File) (*analyzer.Result, error) {
	b, err := f.ReadAll(1 << 30)
	if err != nil {
		return nil, err
	}
	return &analyzer.Result{Packages: []pkg.Package{{Name: f.Path, Version: contentVersion(b), Ecosystem: "echo"}}}, nil
}

func contentVersion(b []byte) string {
	if len(b) <= 16 && !bytes.ContainsAny(b, "\x00\n ") {
		return string(b)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// view lists the echo packages of an inventory as "path=version@layer".
func view(inv *Inventory) []string {
	var out []string
	for _, p := range inv.Packages() {
		if p.Ecosystem != "echo" {
			continue
		}
		out = append(out, fmt.Sprintf("%s=%s@%d", strings.TrimPrefix(p.Location, "/"), p.Version, p.Layer.Changed.Index))
	}
	slices.Sort(out)
	return out
}
