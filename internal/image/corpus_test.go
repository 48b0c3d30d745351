package image

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/store"
	"github.com/lading-dev/lading/internal/testenv"
	"github.com/lading-dev/lading/internal/verify"
)

// corpusImage is one corpus file and how skopeo names the image in it.
type corpusImage struct {
	file     string // under images/
	skopeo   string // skopeo transport reference, with FILE for the path
	platform string
}

var corpusImages = []corpusImage{
	{"alpine-3.10.docker-save.tar.gz", "", ""}, // skopeo cannot read a gzipped archive
	{"alpine-3.10.oci.tar", "oci-archive:FILE:3.10", ""},
	{"alpine-3.9.docker.tar", "docker-archive:FILE", ""},
	{"alpine-3.9.oci.tar", "oci-archive:FILE:3.9.6", ""},
	{"alpine-3.20-app.docker.tar.gz", "", ""},
	{"alpine-3.20-app.oci.tar", "oci-archive:FILE:latest", ""},
	{"debian-12-app.oci.tar", "oci-archive:FILE:latest", ""},
	{"ubuntu-18.04-pkgdb.docker.tar", "docker-archive:FILE", ""},
	{"ubuntu-18.04-pkgdb.oci.tar", "oci-archive:FILE:latest", ""},
	{"mariner-2.0-rpmdb.docker.tar", "docker-archive:FILE", ""},
	{"mariner-2.0-rpmdb.oci.tar", "oci-archive:FILE:latest", ""},
	{"rhel-8-rpmdb-bdb.docker.tar", "docker-archive:FILE", ""},
	{"rhel-8-rpmdb-bdb.oci.tar", "oci-archive:FILE:latest", ""},
	{"debian-12-distroless.docker.tar.gz", "", ""},
	{"debian-12-distroless.oci.tar", "oci-archive:FILE:latest", ""},
	{"alpine-3.20-multiarch.oci.tar", "oci-archive:FILE:latest", "linux/amd64"},
	{"alpine-3.20-multiarch.oci.tar", "oci-archive:FILE:latest", "linux/arm64/v8"},
}

// corpusSet is corpusImages, or with -short (the race pass of .ci/run) the
// small Alpine ones, which cover every kind of archive.
func corpusSet() []corpusImage {
	if !testing.Short() {
		return corpusImages
	}
	var small []corpusImage
	for _, ci := range corpusImages {
		if strings.HasPrefix(ci.file, "alpine-3.9.") || strings.HasPrefix(ci.file, "alpine-3.10.") || ci.file == "alpine-3.20-multiarch.oci.tar" {
			small = append(small, ci)
		}
	}
	return small
}

// corpusRef is the lading reference of a corpus file.
func corpusRef(path string) Reference {
	if strings.Contains(path, ".oci.") {
		return Reference{Transport: OCIArchive, Path: path}
	}
	return Reference{Transport: DockerArchive, Path: path}
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	return testenv.Tool(t, name, "")
}

func skopeo(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(needTool(t, "skopeo"), append([]string{"--insecure-policy", "--override-os", "linux"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("skopeo %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

func openCorpus(t *testing.T, ci corpusImage) (*Source, v1.Image) {
	t.Helper()
	path := corpustest.Image(t, ci.file)
	src, err := Open(context.Background(), corpusRef(path), WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	var p *v1.Platform
	if ci.platform != "" {
		p, _ = ParsePlatform(ci.platform)
	}
	img, err := src.Select(p)
	if err != nil {
		t.Fatal(err)
	}
	return src, img
}

// TestCorpusReadsLikeSkopeo checks that lading sees every corpus image as
// skopeo does: the same config bytes and, for OCI layouts, the same
// manifest bytes.
func TestCorpusReadsLikeSkopeo(t *testing.T) {
	for _, ci := range corpusSet() {
		t.Run(ci.file+ci.platform, func(t *testing.T) {
			_, img := openCorpus(t, ci)
			if ci.skopeo == "" {
				// No skopeo on a gzipped archive: check the layers verify.
				identityOf(t, img)
				return
			}
			ref := strings.Replace(ci.skopeo, "FILE", corpustest.Image(t, ci.file), 1)
			var plat []string
			if ci.platform != "" {
				parts := strings.Split(ci.platform, "/")
				plat = []string{"--override-arch", parts[1]}
				if len(parts) == 3 {
					plat = append(plat, "--override-variant", parts[2])
				}
			}
			cfg, _ := img.RawConfigFile()
			if got := skopeo(t, append(append([]string{}, plat...), "inspect", "--config", "--raw", ref)...); !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(cfg)) {
				t.Errorf("config differs from skopeo's:\nskopeo: %.200s\nlading: %.200s", got, cfg)
			}
			if strings.HasPrefix(ci.skopeo, "oci-archive:") {
				raw, _ := img.RawManifest()
				got := skopeo(t, append(append([]string{}, plat...), "inspect", "--raw", ref)...)
				if ci.platform == "" && !bytes.Equal(got, raw) {
					t.Errorf("manifest differs from skopeo's")
				}
			}
		})
	}
}

// TestCorpusWritesForSkopeoAndUmoci writes every corpus image with lading
// to an OCI layout, an oci-archive and a docker-archive, and has skopeo read
// each back (config bytes must match) and umoci unpack the layout.
func TestCorpusWritesForSkopeoAndUmoci(t *testing.T) {
	needTool(t, "skopeo")
	umoci := needTool(t, "umoci")
	ctx := context.Background()
	for _, ci := range corpusSet() {
		t.Run(ci.file+ci.platform, func(t *testing.T) {
			_, img := openCorpus(t, ci)
			cfg, _ := img.RawConfigFile()
			dir := t.TempDir()
			for _, dst := range []string{
				"oci:" + filepath.Join(dir, "layout") + ":t",
				"oci-archive:" + filepath.Join(dir, "o.tar") + ":t",
				"docker-archive:" + filepath.Join(dir, "d.tar") + ":lading/t:1",
			} {
				ref, _ := Parse(dst)
				if _, err := Write(ctx, ref, Artifact{Image: img}, WithTempDir(dir)); err != nil {
					t.Fatalf("write %s: %v", dst, err)
				}
				got := skopeo(t, "inspect", "--config", "--raw", dst)
				if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(cfg)) {
					t.Errorf("%s: skopeo reads another config", dst)
				}
			}
			out, err := exec.Command(umoci, "unpack", "--rootless", "--image", filepath.Join(dir, "layout")+":t", filepath.Join(dir, "bundle")).CombinedOutput()
			if err != nil {
				t.Fatalf("umoci unpack: %v\n%s", err, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "bundle", "rootfs")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCorpusSkopeoWritesLadingReads has skopeo convert each corpus image
// and checks that lading reads what it wrote with the same config and
// layer contents.
func TestCorpusSkopeoWritesLadingReads(t *testing.T) {
	needTool(t, "skopeo")
	ctx := context.Background()
	for _, ci := range corpusSet() {
		if ci.skopeo == "" || ci.platform != "" {
			continue
		}
		t.Run(ci.file, func(t *testing.T) {
			_, img := openCorpus(t, ci)
			want := identityOf(t, img)
			src := strings.Replace(ci.skopeo, "FILE", corpustest.Image(t, ci.file), 1)
			dir := t.TempDir()
			for _, dst := range []string{
				"oci:" + filepath.Join(dir, "layout") + ":x",
				"docker-archive:" + filepath.Join(dir, "d.tar") + ":skopeo/x:1",
				"oci-archive:" + filepath.Join(dir, "o.tar") + ":x",
			} {
				skopeo(t, "copy", "-q", src, dst)
				ref, _ := Parse(dst)
				s, err := Open(ctx, ref)
				if err != nil {
					t.Fatalf("lading cannot read skopeo's %s: %v", dst, err)
				}
				got := identityOf(t, s.Image)
				s.Close()
				// skopeo may rewrite a docker config as an OCI one (the
				// corpus README says so for alpine-3.10): compare layers.
				if diff := cmp.Diff(want.DiffIDs, got.DiffIDs); diff != "" {
					t.Errorf("%s: diffIDs (-want +got):\n%s", dst, diff)
				}
				if diff := cmp.Diff(want.Files, got.Files); diff != "" {
					t.Errorf("%s: layer contents differ", dst)
				}
			}
		})
	}
}

// TestCorpusStoreIsALayout pulls every corpus image into a store and has
// skopeo read it straight from the store directory.
func TestCorpusStoreIsALayout(t *testing.T) {
	needTool(t, "skopeo")
	ctx := context.Background()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, ci := range corpusSet() {
		_, img := openCorpus(t, ci)
		name := "docker.io/corpus/img:" + string(rune('a'+i))
		if _, err := Write(ctx, Reference{Transport: Local, Name: name}, Artifact{Image: img}, WithStore(st)); err != nil {
			t.Fatalf("%s: %v", ci.file, err)
		}
		raw, _ := img.RawManifest()
		got := skopeo(t, "inspect", "--raw", "oci:"+st.Root()+":"+name)
		if !bytes.Equal(got, raw) {
			t.Errorf("%s: skopeo reads another manifest from the store", ci.file)
		}
		d, _ := verify.FromBytes(raw, "sha256")
		if _, err := st.Stat(ctx, d); err != nil {
			t.Errorf("%s: manifest blob: %v", ci.file, err)
		}
	}
	assertStoreVerifies(t, st)
}
