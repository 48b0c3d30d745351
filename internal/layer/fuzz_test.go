package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// Fuzz targets. Run one with, for example,
//
//	go test ./internal/layer -run '^$' -fuzz FuzzWalk -fuzztime 60s
//
// Without -fuzz they run their seeds as unit tests.

// hostileSeeds are small layers that break the rules.
func hostileSeeds(t testing.TB) [][]byte {
	long := strings.Repeat("x/", MaxNameLen/2) + "x"
	good := tarOf(t, file("etc/passwd", strings.Repeat("r", 1000)), file("etc/shadow", "s"))
	return [][]byte{
		tarOf(t, file("../etc/passwd", "x")),
		tarOf(t, file("/etc/passwd", "x")),
		tarOf(t, file(long, "x")),
		tarOf(t, hardlink("x", "../../etc/shadow")),
		tarOf(t, symlink("evil", "/etc"), file("evil/passwd", "x")),
		tarOf(t, symlink("evil", "/etc"), hardlink("x", "evil/shadow")),
		tarOf(t, file("a", "1"), file("a", "2")),
		tarOf(t, file("a/b", "1"), file("a", "2")),
		tarOf(t, chardev("dev/null", 1, 3)),
		tarOf(t, file(".wh.a/b", "")),
		truncate(good, 512+300),
		truncate(good, 512+1024+100),
		bytes.Repeat([]byte("garbage!"), 100),
	}
}

func FuzzWalk(f *testing.F) {
	for _, tc := range stackCases() {
		for _, l := range stackOf(f, tc.layers...) {
			f.Add(l, false)
		}
	}
	for _, l := range hostileSeeds(f) {
		f.Add(l, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, devices bool) {
		var opts []Option
		if devices {
			opts = append(opts, AllowDevices())
		}
		for _, read := range []bool{true, false} {
			n := 0
			err := Walk(context.Background(), bytes.NewReader(data), func(e *Entry) error {
				n++
				if e.Name == "" || e.Name == ".." || strings.HasPrefix(e.Name, "../") || strings.HasPrefix(e.Name, "/") || strings.Contains(e.Name, "//") {
					t.Fatalf("entry %q: name %q is not normalized", e.Header.Name, e.Name)
				}
				if e.Kind == KindHardlink && (strings.HasPrefix(e.Linkname, "/") || strings.HasPrefix(e.Linkname, "..")) {
					t.Fatalf("entry %q: hard link target %q", e.Header.Name, e.Linkname)
				}
				if read {
					m, err := io.Copy(io.Discard, e)
					if err != nil {
						return err
					}
					if m != e.Size() {
						t.Fatalf("entry %q: read %d of %d bytes", e.Header.Name, m, e.Size())
					}
				}
				return nil
			}, opts...)
			if err != nil {
				var le *Error
				if !errors.As(err, &le) {
					t.Fatalf("error %v (%T) is not an *Error", err, err)
				}
			}
		}
	})
}

// encodeStack packs layers into one fuzz input: each layer as a 4-byte
// length and its bytes.
func encodeStack(layers [][]byte) []byte {
	var b []byte
	for _, l := range layers {
		b = binary.BigEndian.AppendUint32(b, uint32(len(l)))
		b = append(b, l...)
	}
	return b
}

func decodeStack(data []byte) [][]byte {
	var layers [][]byte
	for len(data) >= 4 && len(layers) < 8 {
		n := int(binary.BigEndian.Uint32(data))
		data = data[4:]
		if n > len(data) {
			n = len(data)
		}
		layers = append(layers, data[:n])
		data = data[n:]
	}
	return layers
}

// checkOnlyRoot fails t if parent holds anything but root.
func checkOnlyRoot(t *testing.T, parent string) {
	des, err := os.ReadDir(parent)
	if err != nil || len(des) != 1 || des[0].Name() != "root" {
		t.Fatalf("something was written beside the target: %v %v", des, err)
	}
}

// FuzzExportExtract feeds stacks of (mutated) layer tars to Export, checks
// that what it writes is a valid layer, and extracts it.
func FuzzExportExtract(f *testing.F) {
	for _, tc := range stackCases() {
		f.Add(encodeStack(stackOf(f, tc.layers...)))
	}
	for _, l := range hostileSeeds(f) {
		f.Add(encodeStack([][]byte{tarOf(f, file("a", "a")), l}))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		layers := decodeStack(data)
		merged, err := export(t, layers, AllowDevices())
		if err != nil {
			return
		}
		exportOutputOK(t, merged)
	})
}

// exportOutputOK checks that Export's output walks cleanly, names every
// path once, and extracts inside its target only.
func exportOutputOK(t *testing.T, merged []byte) {
	t.Helper()
	names := map[string]bool{}
	err := Walk(context.Background(), bytes.NewReader(merged), func(e *Entry) error {
		if e.Kind.isMarker() {
			t.Fatalf("Export wrote marker %q", e.Header.Name)
		}
		if names[e.Name] {
			t.Fatalf("Export wrote %q twice", e.Name)
		}
		names[e.Name] = true
		return nil
	}, AllowDevices())
	if err != nil {
		t.Fatalf("Export output does not walk: %v", err)
	}
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	os.Mkdir(root, 0o755)
	if err := Extract(context.Background(), root, bytes.NewReader(merged), AllowDevices()); err != nil {
		t.Fatalf("Extract of Export output: %v", err)
	}
	checkOnlyRoot(t, parent)
}

// opStack turns fuzz bytes into a layer stack over a small set of names, so
// that the fuzzer explores overlay rules rather than tar checksums: three
// bytes per entry (kind, name, target); kind 0 ends a layer. An entry that
// would make its layer fail Walk (a duplicate, a file below a file, a
// hostile name) is left out.
var (
	opNames = []string{
		"a", "b", "c", "a/b", "a/c", "b/a", "a/b/c", "c/d/e", ".", "./a/", "b/",
		".wh.a", ".wh.b", "a/.wh.b", "a/.wh.c", "b/.wh.a", ".wh..wh..opq", "a/.wh..wh..opq", "b/.wh..wh..opq",
		".wh..wh.plnk/1",
	}
	opHostile = []string{"../x", "/abs", "a/b/../../../y", "a/.wh.b/c", "a/.wh."}
	opTargets = []string{"a", "b", "a/b", "c", "a/c", "b/a", "a/b/c", "x", "/etc", "../..", "."}
)

func opStack(t testing.TB, data []byte) [][]byte {
	var layers [][]ent
	var cur []ent
	for i := 0; i+2 < len(data) && len(layers) < 5; i += 3 {
		name := opNames[int(data[i+1])%len(opNames)]
		if data[i+1] >= 250 {
			name = opHostile[int(data[i+1])%len(opHostile)]
		}
		target := opTargets[int(data[i+2])%len(opTargets)]
		body := string(rune('A' + data[i+2]%26))
		var e ent
		switch data[i] % 10 {
		case 0:
			layers, cur = append(layers, cur), nil
			continue
		case 1, 2, 3:
			e = file(name, body, mode(0o644|int64(data[i+2]&0o111)))
		case 4, 5:
			e = dir(name, mode(0o700|int64(data[i+2]&0o55)))
		case 6:
			e = symlink(name, target)
		case 7:
			e = hardlink(name, target)
		case 8:
			e = fifo(name)
		case 9:
			e = chardev(name, 1, int64(data[i+2]%8))
		}
		if strings.HasPrefix(path.Base(name), whPrefix) {
			e = file(name, "") // whiteouts are empty files in practice
		}
		if strings.HasSuffix(e.h.Name, "/") && e.h.Typeflag != tar.TypeDir {
			e.h.Name = strings.TrimSuffix(e.h.Name, "/")
		}
		cur = append(cur, e)
		if err := Walk(context.Background(), bytes.NewReader(tarOf(t, cur...)), func(*Entry) error { return nil }, AllowDevices()); err != nil {
			cur = cur[:len(cur)-1]
		}
	}
	layers = append(layers, cur)
	return stackOf(t, layers...)
}

// FuzzOverlay generates stacks of entries over a few names and compares
// Export+Extract with Extract applying the layers one by one: two
// independent implementations of the overlay rules.
func FuzzOverlay(f *testing.F) {
	f.Add([]byte{1, 0, 0, 3, 3, 1, 0, 0, 0, 1, 11, 0, 1, 3, 2})
	f.Add([]byte{3, 0, 0, 1, 3, 3, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 6, 4})
	f.Add([]byte{1, 0, 0, 5, 1, 0, 0, 0, 0, 1, 0, 9})
	f.Add([]byte{4, 0, 1, 0, 0, 0, 1, 3, 2, 1, 13, 1})
	f.Add([]byte{1, 3, 0, 5, 2, 2, 0, 0, 0, 1, 11, 0, 0, 0, 0, 5, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 120 {
			return
		}
		layers := opStack(t, data)
		merged, err := export(t, layers, AllowDevices())
		if err != nil {
			return
		}
		exportOutputOK(t, merged)
		ours := extractTree(t, merged, AllowDevices())

		parent := t.TempDir()
		root := filepath.Join(parent, "root")
		os.Mkdir(root, 0o755)
		if err := extractLayers(root, layers, ApplyWhiteouts(), AllowDevices()); err != nil {
			return // for example a hard link to a name only a later entry makes
		}
		checkOnlyRoot(t, parent)
		if diff := cmpLines(listDir(t, root), ours); diff != "" {
			t.Fatalf("Export+Extract differs from Extract layer by layer (-layerwise +export):\n%s", diff)
		}
	})
}
