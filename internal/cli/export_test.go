package cli

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/lading-dev/lading/internal/testenv"
)

// layerOf writes a layer tar of the given headers; a regular file's body is
// body[name].
func tarOfHeaders(t testing.TB, hs []tar.Header, body map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hs {
		h.Size = int64(len(body[h.Name]))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1704067200, 0)
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body[h.Name])
	}
	tw.Close()
	return b.Bytes()
}

func exportTar(t *testing.T, l *lading, ref string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rootfs.tar")
	l.ok("export", "-o", out, ref)
	return out
}

// gnuList is GNU tar's verbose listing of an archive, numeric owners.
func gnuList(t *testing.T, archive string) string {
	t.Helper()
	gnu := testenv.Tool(t, "tar", "tar")
	out, err := exec.Command(gnu, "--numeric-owner", "-tvf", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("tar -tvf: %v\n%s", err, out)
	}
	// Columns are padded to what came before; one space apart is enough.
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		b.WriteString(strings.Join(strings.Fields(line), " ") + "\n")
	}
	return b.String()
}

// What docker export and containerd accept, export accepts, and GNU tar
// reads the result as they would write it.
func TestExportAcceptsWhatDockerAccepts(t *testing.T) {
	gnu := testenv.Tool(t, "tar", "tar")
	l := newLading(t)
	long := strings.Repeat("d123456789/", 450) + "f" // 4951 bytes: a PAX path
	reg := func(name string, mode int64) tar.Header {
		return tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}
	}
	base := tarOfHeaders(t, []tar.Header{
		reg("old", 0o644), {Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755}, reg("d/lower", 0o644),
	}, map[string]string{"old": "old", "d/lower": "lower"})
	top := tarOfHeaders(t, []tar.Header{
		{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600},
		reg("twice", 0o600), reg("twice", 0o640),
		{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o700}, reg("d/x", 0o644), reg("d", 0o644),
		reg(long, 0o644),
		{Typeflag: tar.TypeReg, Name: "bin/tool", Mode: 0o750, Uid: 5, Gid: 6, ModTime: time.Unix(1600000000, 0)},
		{Typeflag: tar.TypeLink, Name: "bin/alias", Linkname: "bin/tool"},
	}, map[string]string{"twice": "last", "d": "a file now", long: "deep", "bin/tool": "#!/bin/sh\n"})
	// tar.Writer writes "twice" twice; the first body is the last one's too,
	// which does not matter: the test reads sizes and the last content.
	ref := writeLayout(t, t.TempDir(), []testLayer{gzLayer(base), gzLayer(top)}, nil)
	archive := exportTar(t, l, ref)

	list := gnuList(t, archive)
	for _, want := range []string{
		"crw-rw-rw- 0/0 1,3 2024-01-01 00:00 dev/null\n",
		"prw------- 0/0 0 2024-01-01 00:00 run/fifo\n",
		"-rw-r----- 0/0 4 2024-01-01 00:00 twice\n",
		"-rw-r--r-- 0/0 4 2024-01-01 00:00 " + long + "\n",
		// The link carries the file's header, as GNU tar writes one.
		"hrwxr-x--- 5/6 0 2020-09-13 12:26 bin/alias link to bin/tool\n",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("tar -tv lacks %q:\n%s", want, list)
		}
	}
	if n := strings.Count(list, " twice\n"); n != 1 {
		t.Errorf("twice listed %d times", n)
	}
	if strings.Contains(list, "d/x") || strings.Contains(list, "d/lower") {
		t.Errorf("the directory a file replaced is still there:\n%s", list)
	}

	// GNU tar unpacks it to what docker shows: the last entries. (It
	// cannot create a path longer than PATH_MAX; neither can docker.)
	dir := t.TempDir()
	if out, err := exec.Command(gnu, "-xf", archive, "-C", dir, "--exclude", "d123456789").CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"twice": "last", "d": "a file now", "old": "old"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}

	// Unpacked by lading into a directory: the same, devices where allowed.
	out := filepath.Join(t.TempDir(), "rootfs") + "/"
	_, errs, code := l.run("export", "-o", out, ref)
	if code != 0 {
		t.Fatalf("export -o DIR/: exit %d: %s", code, errs)
	}
	fi, err := os.Lstat(filepath.Join(out, "run/fifo"))
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("run/fifo: %v %v", fi, err)
	}
	fi, err = os.Lstat(filepath.Join(out, "dev/null"))
	switch {
	case os.Geteuid() == 0 && (err != nil || fi.Mode()&os.ModeCharDevice == 0):
		t.Errorf("dev/null as root: %v %v", fi, err)
	case os.Geteuid() != 0 && (err == nil || !strings.Contains(errs, "dev/null")):
		t.Errorf("dev/null without the right to create it: %v, warning %q", err, errs)
	}
	if b, err := os.ReadFile(filepath.Join(out, "d")); err != nil || string(b) != "a file now" {
		t.Errorf("d: %q %v", b, err)
	}
	// A directory at a time, the long path is created too.
	find, err := exec.Command("find", out, "-name", "f", "-path", "*d123456789/f").Output()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(find)), long) {
		t.Errorf("find does not see the long path: %v %q", err, find)
	}
}

// An opaque marker at a layer's root hides every lower layer, in export and
// in the inventory.
func TestOpaqueRootHidesLowerLayers(t *testing.T) {
	l := newLading(t)
	base := tarBytes(t, alpineBase...)
	top := tarBytes(t, tarFile{".wh..wh..opq", ""}, tarFile{"etc/alpine-release", "3.20.3\n"}, tarFile{"new", "n"})
	ref := writeLayout(t, t.TempDir(), []testLayer{gzLayer(base), gzLayer(top)}, nil)
	list := gnuList(t, exportTar(t, l, ref))
	if strings.Contains(list, "lib/apk") || !strings.Contains(list, " new\n") {
		t.Errorf("export shows the layer below an opaque root:\n%s", list)
	}
	var inv struct {
		Targets []struct {
			Packages []struct{ Name string }
		}
		Removed []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(l.ok("inventory", "--format", "json", ref)), &inv); err != nil {
		t.Fatal(err)
	}
	if len(inv.Targets) != 0 || len(inv.Removed) != 1 || inv.Removed[0].Name != "musl" {
		t.Errorf("inventory: targets %+v, removed %+v; want musl removed by the opaque root", inv.Targets, inv.Removed)
	}
}

// Export refuses a layer whose media type is not a layer type, or whose
// blob is compressed otherwise than its media type says, as containerd
// does; scan reads it as its bytes say, with a warning. A blob that does not
// match its digest is reported as that.
func TestExportRefusesMislabelledLayers(t *testing.T) {
	db := tinyDB(t)
	tarball := tarBytes(t, alpineBase...)
	var zs bytes.Buffer
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(tarball)
	zw.Close()
	relabel := func(blob []byte, mt string) testLayer {
		return testLayer{blob: blob, digest: sha256Of(blob), mediaType: mt, diffID: sha256Of(tarball)}
	}
	flipped := gzLayer(tarball)
	flipped.blob = bytes.Clone(flipped.blob)
	flipped.blob[len(flipped.blob)/2] ^= 0xff
	for _, tc := range []struct {
		name   string
		layer  testLayer
		export string // the error of export
		scan   string // the warning of scan, "" when it fails too
	}{
		{"unknown media type", relabel(gzipBytes(tarball), "application/vnd.example.layer.v1+gzip"),
			`media type "application/vnd.example.layer.v1+gzip" is not a layer type`, "read as gzip"},
		{"zstd bytes, gzip media type", relabel(zs.Bytes(), "application/vnd.oci.image.layer.v1.tar+gzip"),
			`media type "application/vnd.oci.image.layer.v1.tar+gzip" says gzip, but the blob is zstd`, "read as zstd"},
		{"plain tar, gzip media type", relabel(tarball, "application/vnd.docker.image.rootfs.diff.tar.gzip"),
			"says gzip, but the blob is uncompressed", "read as uncompressed"},
		{"flipped byte", flipped, "got digest " + sha256Of(flipped.blob), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLading(t)
			ref := writeLayout(t, t.TempDir(), []testLayer{tc.layer}, nil)
			_, errs, code := l.run("export", "-o", filepath.Join(t.TempDir(), "x.tar"), ref)
			if code != exitError || !strings.Contains(errs, tc.export) || !strings.Contains(errs, "layer 1/1 "+tc.layer.digest) {
				t.Errorf("export: exit %d, %q; want an error naming the layer and %q", code, errs, tc.export)
			}
			if strings.Contains(errs, "flate") {
				t.Errorf("export blames the compression: %q", errs)
			}
			_, errs, code = l.run("scan", "--db", db, ref)
			if tc.scan == "" {
				if code != exitError || !strings.Contains(errs, tc.export) {
					t.Errorf("scan: exit %d, %q", code, errs)
				}
				return
			}
			if code != 0 || !strings.Contains(errs, "warning: layer 0: ") || !strings.Contains(errs, tc.scan) {
				t.Errorf("scan: exit %d, %q; want 0 and a warning with %q", code, errs, tc.scan)
			}
		})
	}
}
