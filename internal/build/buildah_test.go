package build_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/build"
	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/store"
	"github.com/lading-dev/lading/internal/testenv"
)

// buildahCase is a directory of testdata/buildah built by both buildah and
// lading. fixup adds what git cannot hold (hard links, modes, xattrs,
// generated archives). skip lists paths whose difference is justified, with
// the reason.
type buildahCase struct {
	name  string
	fixup func(t testing.TB, dir string)
	skip  map[string]string
	// layers, when set, says why the number of layers differs.
	layers string
}

// workdirOwner is why WORKDIR directories differ: Docker (BuildKit)
// creates a missing WORKDIR as a layer of its own, owned by USER; buildah
// 1.28 with --layers does not create it, and the COPY that follows creates
// it owned by root.
const workdirOwner = "WORKDIR creates the directory owned by USER, as BuildKit does; buildah 1.28 leaves it to the next COPY, owned by root"

var buildahCases = []buildahCase{
	{name: "multistage"},
	{name: "args"},
	{name: "chown", fixup: func(t testing.TB, dir string) {
		must(t, os.Chmod(filepath.Join(dir, "tree/secret.txt"), 0o600))
		must(t, os.Chmod(filepath.Join(dir, "tree/sub"), 0o750))
		must(t, os.Chmod(filepath.Join(dir, "tree/file.txt"), 0o4755))
		must(t, unix.Setxattr(filepath.Join(dir, "tree/file.txt"), "user.origin", []byte("context"), 0))
	}},
	{name: "dockerignore"},
	{name: "symlinks"},
	{name: "hardlinks", fixup: func(t testing.TB, dir string) {
		must(t, os.Link(filepath.Join(dir, "tree/a.txt"), filepath.Join(dir, "tree/b.txt")))
		must(t, os.MkdirAll(filepath.Join(dir, "tree/sub"), 0o755))
		must(t, os.Link(filepath.Join(dir, "tree/a.txt"), filepath.Join(dir, "tree/sub/c.txt")))
	}},
	{name: "userworkdir", layers: workdirOwner, skip: map[string]string{
		"user-owned":                 workdirOwner,
		"user-owned/deeper":          workdirOwner,
		"user-owned/deeper/relative": workdirOwner,
		"nobody-owned":               workdirOwner,
	}},
	{name: "whiteouts", skip: map[string]string{
		"etc/resolv.conf": "buildah's chroot isolation leaves the empty file it mounted resolv.conf on (mode 0755) in the image; lading removes the mount points its sandbox made, as BuildKit does",
	}},
	{name: "addtar", fixup: func(t testing.TB, dir string) {
		writeTar(t, filepath.Join(dir, "payload.tar.gz"), true)
		writeTar(t, filepath.Join(dir, "payload.tar"), false)
	}},
}

// writeTar writes a small archive with owners, modes, a symlink and a hard
// link, as a person would ship one to ADD.
func writeTar(t testing.TB, p string, gz bool) {
	f, err := os.Create(p)
	must(t, err)
	defer f.Close()
	var w = any(f).(interface{ Write([]byte) (int, error) })
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(f)
		w = zw
	}
	tw := tar.NewWriter(w)
	mt := time.Unix(1600000000, 0)
	for _, h := range []*tar.Header{
		{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 10, Gid: 20, ModTime: mt},
		{Name: "pkg/bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt},
		{Name: "pkg/bin/tool", Typeflag: tar.TypeReg, Mode: 0o755, Size: 5, Uid: 10, Gid: 20, ModTime: mt},
		{Name: "pkg/bin/alias", Typeflag: tar.TypeSymlink, Linkname: "tool", ModTime: mt},
		{Name: "pkg/bin/hard", Typeflag: tar.TypeLink, Linkname: "pkg/bin/tool", Mode: 0o755, Uid: 10, Gid: 20, ModTime: mt},
		{Name: "pkg/readme", Typeflag: tar.TypeReg, Mode: 0o600, Size: 5, ModTime: mt},
	} {
		must(t, tw.WriteHeader(h))
		if h.Size > 0 {
			tw.Write([]byte("data\n"))
		}
	}
	must(t, tw.Close())
	if zw != nil {
		must(t, zw.Close())
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestAgainstBuildah builds each testdata/buildah Dockerfile with Debian's
// buildah (chroot isolation, one layer per instruction) and with lading,
// from the corpus's alpine 3.9 given to both as oci-archive:, unpacks both
// images with umoci, and compares the root file systems (type, mode,
// owner, content, symlink target, xattrs, hard link groups) and the
// configs.
//
// Differences that are justified and not compared:
//   - modification times: buildah stamps what it creates with the build's
//     time, lading clamps to the context's times or SOURCE_DATE_EPOCH;
//   - the history: lading writes BuildKit's created_by strings ("COPY a /b #
//     buildkit"), buildah the classic builder's ("/bin/sh -c #(nop) COPY
//     file:<hash> in /b"); both have one entry per instruction;
//   - the label io.buildah.version, which buildah adds;
//   - Config.User after USER root: both say "root".
func TestAgainstBuildah(t *testing.T) {
	testenv.Root(t, "buildah bud and umoci unpack keep owners only as root")
	buildah := testenv.Tool(t, "buildah", "buildah")
	umoci := testenv.Tool(t, "umoci", "umoci")
	base := corpustest.Image(t, "alpine-3.9.oci.tar")
	broot := t.TempDir()
	bh := func(args ...string) []byte {
		t.Helper()
		all := append([]string{"--root", filepath.Join(broot, "root"), "--runroot", filepath.Join(broot, "run"), "--storage-driver", "vfs"}, args...)
		cmd := exec.Command(buildah, all...)
		cmd.Env = append(os.Environ(), "TMPDIR="+broot)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("buildah %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	t.Cleanup(func() {
		exec.Command(buildah, "--root", filepath.Join(broot, "root"), "--runroot", filepath.Join(broot, "run"), "--storage-driver", "vfs", "rm", "--all").Run()
	})
	for _, c := range buildahCases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ctx")
			copyTree(t, filepath.Join("testdata", "buildah", c.name), dir)
			if c.fixup != nil {
				c.fixup(t, dir)
			}
			arg := "BASE=oci-archive:" + base
			bOut := filepath.Join(t.TempDir(), "buildah")
			bh("bud", "--isolation", "chroot", "--layers", "--build-arg", arg, "-t", "localhost/lading-test/"+c.name+":x", dir)
			bh("push", "localhost/lading-test/"+c.name+":x", "oci:"+bOut+":x")

			lOut := filepath.Join(t.TempDir(), "lading")
			runner, err := build.NewRunner("native", filepath.Join(broot, "layers"), nil)
			must(t, err)
			ladingBuild(t, dir, lOut, map[string]string{"BASE": "oci-archive:" + base}, build.WithRunner(runner))

			want := unpackTree(t, umoci, bOut)
			got := unpackTree(t, umoci, lOut)
			for p, why := range c.skip {
				t.Logf("not compared: %s: %s", p, why)
				delete(want, p)
				delete(got, p)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("root file systems differ (-buildah +lading):\n%s", d)
			}
			bc, lc := readConfig(t, bOut), readConfig(t, lOut)
			if c.layers != "" {
				t.Logf("layers not compared (buildah %d, lading %d): %s", bc.Layers, lc.Layers, c.layers)
				bc.Layers, lc.Layers = 0, 0
			}
			if d := cmp.Diff(bc, lc); d != "" {
				t.Errorf("configs differ (-buildah +lading):\n%s", d)
			}
		})
	}
}

// ladingBuild builds dir into a fresh store and writes the image to the
// OCI layout out, tag x.
func ladingBuild(t *testing.T, dir, out string, args map[string]string, opts ...build.Option) *build.Result {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "root"))
	must(t, err)
	defer st.Close()
	in, err := build.OpenInput(ctx, dir, "", nil, t.TempDir())
	must(t, err)
	defer in.Close()
	opts = append([]build.Option{build.WithBuildArgs(args), build.WithTempDir(t.TempDir())}, opts...)
	res, err := build.New(st, opts...).Build(ctx, in.Dockerfile, in.Context)
	must(t, err)
	_, err = image.Write(ctx, image.Reference{Transport: image.OCI, Path: out, Name: "x"}, image.Artifact{Image: res.Image}, image.WithStore(st))
	must(t, err)
	return res
}

// unpackTree unpacks layout:x with umoci and reads its rootfs.
func unpackTree(t *testing.T, umoci, layout string) map[string]fsEntry {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command(umoci, "unpack", "--image", layout+":x", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack %s: %v\n%s", layout, err, out)
	}
	return readTree(t, filepath.Join(bundle, "rootfs"))
}

// compared is the part of a config the comparison looks at.
type compared struct {
	Env          []string
	Cmd          []string
	Entrypoint   []string
	WorkingDir   string
	User         string
	ExposedPorts map[string]struct{}
	Volumes      map[string]struct{}
	Labels       map[string]string
	StopSignal   string
	Healthcheck  *dockerspec.HealthcheckConfig
	OnBuild      []string
	Shell        []string
	Layers       int
	OS, Arch     string
}

func readConfig(t *testing.T, layout string) compared {
	t.Helper()
	src, err := image.Open(context.Background(), image.Reference{Transport: image.OCI, Path: layout, Name: "x"})
	must(t, err)
	defer src.Close()
	raw, err := src.Image.RawConfigFile()
	must(t, err)
	var cfg dockerspec.DockerOCIImage
	must(t, json.Unmarshal(raw, &cfg))
	c := cfg.Config
	labels := c.Labels
	delete(labels, "io.buildah.version")
	if len(labels) == 0 {
		labels = nil
	}
	return compared{
		Env: c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, WorkingDir: c.WorkingDir, User: c.User,
		ExposedPorts: c.ExposedPorts, Volumes: c.Volumes, Labels: labels, StopSignal: c.StopSignal,
		Healthcheck: c.Healthcheck, OnBuild: c.OnBuild, Shell: c.Shell, Layers: len(cfg.RootFS.DiffIDs),
		OS: cfg.OS, Arch: cfg.Architecture,
	}
}
