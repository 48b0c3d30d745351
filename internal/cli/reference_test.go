package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/testenv"
)

// dockerArchiveFile writes a docker save archive of one image with the
// given layers (uncompressed tars), tagged tag.
func dockerArchiveFile(t *testing.T, path, tag string, layers ...[]byte) {
	t.Helper()
	var ids []string
	for _, l := range layers {
		ids = append(ids, sha256Of(l))
	}
	dockerArchiveClaiming(t, path, tag, ids, layers...)
}

// dockerArchiveClaiming is dockerArchiveFile with a config that gives the
// layers the diffIDs ids, whatever they hold.
func dockerArchiveClaiming(t *testing.T, path, tag string, ids []string, layers ...[]byte) {
	t.Helper()
	var files []tarFile
	var names []string
	for i, l := range layers {
		name := strings.Repeat(string(rune('a'+i)), 8) + "/layer.tar"
		names = append(names, name)
		files = append(files, tarFile{name, string(l)})
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": ids}})
	m, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{tag}, "Layers": names}})
	files = append(files, tarFile{"config.json", string(cfg)}, tarFile{"manifest.json", string(m)})
	if err := os.WriteFile(path, tarBytes(t, files...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A bare local path is read as what it is, and the choice is said; a name
// that is both a path and an image name says how to pick the other.
func TestBarePathSources(t *testing.T) {
	gnu := testenv.Tool(t, "tar", "tar")
	l := newLading(t)
	dir := t.TempDir()
	rootfs := tarBytes(t, alpineBase...)

	layout := filepath.Join(dir, "layout")
	writeLayout(t, layout, []testLayer{gzLayer(rootfs)}, nil)
	ociArchive := filepath.Join(dir, "app.oci.tar")
	if out, err := exec.Command(gnu, "-cf", ociArchive, "-C", layout, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	dockerArchive := filepath.Join(dir, "app.tar")
	dockerArchiveFile(t, dockerArchive, "example/app:1", rootfs)
	gzArchive := filepath.Join(dir, "app.tar.gz")
	os.WriteFile(gzArchive, gzipBytes(mustRead(t, dockerArchive)), 0o644)
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gnu, "-xf", dockerArchive, "-C", root, "aaaaaaaa/layer.tar", "-O").Output(); err != nil {
		t.Fatal(err)
	} else if out, err := runIn(gnu, out, "-xf", "-", "-C", root); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}

	for _, tc := range []struct{ arg, transport string }{
		{layout, "oci:" + layout},
		{ociArchive, "oci-archive:" + ociArchive},
		{dockerArchive, "docker-archive:" + dockerArchive},
		{gzArchive, "docker-archive:" + gzArchive},
		{root, "dir:" + root},
	} {
		for _, cmd := range [][]string{{"inventory"}, {"sbom", "--format", "json"}} {
			out, errs, code := l.run(append(cmd, tc.arg)...)
			if code != 0 || !strings.Contains(out, "musl") {
				t.Errorf("%s %s: exit %d, %s", cmd[0], tc.arg, code, errs)
			}
			if !strings.Contains(errs, "reading it as "+tc.transport) {
				t.Errorf("%s %s: stderr %q does not say %s", cmd[0], tc.arg, errs, tc.transport)
			}
		}
	}
	if _, errs, code := l.run("export", "-o", filepath.Join(dir, "out.tar"), dockerArchive); code != 0 || !strings.Contains(errs, "docker-archive:") {
		t.Errorf("export of a bare archive: exit %d, %q", code, errs)
	}

	// Both a directory here and an image name.
	t.Chdir(dir)
	if err := os.Rename(root, filepath.Join(dir, "alpine")); err != nil {
		t.Fatal(err)
	}
	out, errs, code := l.run("inventory", "alpine")
	if code != 0 || !strings.Contains(out, "musl") ||
		!strings.Contains(errs, "alpine names a directory here and an image too: reading the directory as dir:alpine; for the image, write docker://alpine:latest (a registry) or local:alpine:latest (the store)") {
		t.Errorf("ambiguous name: exit %d, stderr %q", code, errs)
	}

	// A path that names nothing is not sent to a registry.
	_, errs, code = l.run("sbom", "--format", "json", "./nothing.tar")
	if code != exitError || !strings.Contains(errs, "./nothing.tar: file does not exist (a local path must exist") {
		t.Errorf("missing path: exit %d, %q", code, errs)
	}
	// A tar that is no image says what to do with it.
	os.WriteFile("rootfs.tar", rootfs, 0o644)
	_, errs, code = l.run("inventory", "./rootfs.tar")
	if code == 0 || !strings.Contains(errs, "lading import") {
		t.Errorf("a plain tar: exit %d, %q", code, errs)
	}
	// A destination path without a transport says which to use.
	_, errs, code = l.run("copy", dockerArchive, "./copy.tar")
	if code != exitUsage || !strings.Contains(errs, "oci-archive:./copy.tar or docker-archive:./copy.tar") {
		t.Errorf("bare destination: exit %d, %q", code, errs)
	}
}

// docker-archive:FILE@N picks the Nth image, as docker-archive:FILE:@N does.
func TestDockerArchivePosition(t *testing.T) {
	l := newLading(t)
	dir := t.TempDir()
	one, two := filepath.Join(dir, "one.tar"), filepath.Join(dir, "two.tar")
	dockerArchiveFile(t, one, "example/one:1", tarBytes(t, alpineBase...))
	dockerArchiveFile(t, two, "example/two:1", tarBytes(t, tarFile{"etc/alpine-release", "3.20.3\n"}, tarFile{"lib/apk/db/installed", apkInstalled("zlib=1.3.1-r1")}))
	both := filepath.Join(dir, "both.tar")
	l.ok("save", "-o", both, "docker-archive:"+one, "docker-archive:"+two)
	for _, ref := range []string{"docker-archive:" + both + "@1", "docker-archive:" + both + ":@1"} {
		out, errs, code := l.run("inventory", ref)
		if code != 0 || !strings.Contains(out, "zlib") || strings.Contains(out, "musl") {
			t.Errorf("%s: exit %d, %s\n%s", ref, code, errs, out)
		}
	}
	_, errs, code := l.run("inventory", "docker-archive:"+both)
	if code == 0 || !strings.Contains(errs, "docker-archive:"+both+"@0") {
		t.Errorf("two images, none named: exit %d, %q does not say how to pick one", code, errs)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func runIn(name string, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(string(stdin))
	return cmd.CombinedOutput()
}
