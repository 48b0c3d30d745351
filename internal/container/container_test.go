package container_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/container"
	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/overlaytest"
	"github.com/lading-dev/lading/internal/rootfs"
	"github.com/lading-dev/lading/internal/sandbox"
	"github.com/lading-dev/lading/internal/store"
	"github.com/lading-dev/lading/internal/testenv"
	"github.com/lading-dev/lading/internal/treetest"
)

func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	os.Exit(m.Run())
}

// env is a lading root with the corpus image alpine-3.9 in its store.
type env struct {
	root string
	st   *store.Store
	cs   *container.Store
	img  v1.Image
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testenv.Root(t, "containers run in namespaces over overlayfs")
	src := corpustest.Image(t, "alpine-3.9.oci.tar")
	ctx := context.Background()
	root := t.TempDir()
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ref, _ := image.Parse("oci-archive:" + src + ":3.9.6")
	s, err := image.Open(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := image.Write(ctx, image.Reference{Transport: image.Local, Name: "docker.io/library/alpine:3.9"}, s.Artifact, image.WithStore(st)); err != nil {
		t.Fatal(err)
	}
	local, err := image.Open(ctx, image.Reference{Transport: image.Local, Name: "docker.io/library/alpine:3.9"}, image.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	img, err := local.Select(nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := container.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return &env{root: root, st: st, cs: cs, img: img}
}

func (e *env) create(t *testing.T, o container.CreateOptions) *container.Container {
	t.Helper()
	o.Image, o.ImageRef = e.img, "alpine:3.9"
	c, err := e.cs.Create(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cs.Remove(context.Background(), c, true) })
	return c
}

func (e *env) run(t *testing.T, c *container.Container) (int, string) {
	t.Helper()
	var out strings.Builder
	code, err := c.Run(context.Background(), container.Stdio{Out: &out, Err: &out})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	return code, out.String()
}

// changes is what the container of the tree tests does: every kind of change
// a layer has to carry.
const changes = `
set -e
rm /etc/motd
rm -rf /etc/apk && mkdir /etc/apk && echo new > /etc/apk/world
echo added > /added
mkdir -p /opt/a/b && echo deep > /opt/a/b/file
chmod 4711 /opt/a/b/file
chown 123:456 /opt/a/b
ln -s ../etc/passwd /opt/link
ln /etc/group /etc/group.hard
mkfifo /opt/fifo
echo changed >> /etc/hosts
rm -rf /usr/share/apk
touch -d @1700000000 /added
`

func TestRunCommitExport(t *testing.T) {
	for _, runtime := range []string{"native", "runc"} {
		t.Run(runtime, func(t *testing.T) {
			if runtime == "runc" {
				testenv.Tool(t, "runc", "runc")
			}
			e := newEnv(t)
			c := e.create(t, container.CreateOptions{Cmd: []string{"/bin/sh", "-c", changes}, Runtime: runtime, Env: []string{"FOO=bar"}})
			if code, out := e.run(t, c); code != 0 {
				t.Fatalf("exit %d: %s", code, out)
			}
			if st := c.State(); st.Status != container.Exited || st.ExitCode != 0 {
				t.Errorf("state %+v", st)
			}
			// An xattr set from outside, to see it travel.
			fsys := mount(t, e, c)
			if err := unix.Lsetxattr(filepath.Join(fsys.Dir(), "added"), "user.lading", []byte("yes"), 0); err != nil {
				t.Fatal(err)
			}
			want := treetest.Snapshot(t, fsys.Dir(), treetest.NoDirTimes())
			fsys.Close()

			ch, err := c.Changes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, x := range ch {
				got[x.String()] = true
			}
			for _, w := range []string{"D /etc/motd", "C /etc/apk", "C /etc/apk/world", "D /etc/apk/keys", "A /added", "A /opt/a/b/file", "C /etc/hosts", "D /usr/share/apk", "A /etc/group.hard"} {
				if !got[w] {
					t.Errorf("changes lack %q: %v", w, ch)
				}
			}

			res, err := c.Commit(context.Background(), e.st, container.CommitOptions{
				Name: "docker.io/library/committed:1", Message: "a test commit", Author: "tester",
				Changes: []string{`CMD ["/bin/cat", "/added"]`, "ENV LADING=1", "WORKDIR /opt"},
			})
			if err != nil {
				t.Fatal(err)
			}
			cf := committedConfig(t, e, res)
			if diff := cmp.Diff([]string{"/bin/cat", "/added"}, cf.Config.Cmd); diff != "" {
				t.Errorf("Cmd (-want +got):\n%s", diff)
			}
			if cf.Config.WorkingDir != "/opt" || !contains(cf.Config.Env, "FOO=bar") || !contains(cf.Config.Env, "LADING=1") || cf.Container != c.ID || cf.Author != "tester" {
				t.Errorf("config: %+v", cf)
			}
			h := cf.History[len(cf.History)-1]
			if h.Comment != "a test commit" || h.CreatedBy != "/bin/sh -c "+changes || h.EmptyLayer || h.Author != "tester" {
				t.Errorf("history: %+v", h)
			}

			// The truth: skopeo copies the committed image out of the
			// store and umoci unpacks it; the tree is the container's.
			bundle := umociUnpack(t, e.root, "docker.io/library/committed:1")
			treetest.Equal(t, want, treetest.Snapshot(t, filepath.Join(bundle, "rootfs"), treetest.NoDirTimes()), "umoci unpack of the committed image vs the container")

			// docker export of the container: the same tree, by GNU tar.
			exported := t.TempDir()
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(c.Export(context.Background(), pw, e.st)) }()
			tar := exec.Command("tar", "--numeric-owner", "--xattrs", "--xattrs-include=user.*", "-xpf", "-", "-C", exported)
			tar.Stdin = pr
			if out, err := tar.CombinedOutput(); err != nil {
				t.Fatalf("tar -x of the export: %v\n%s", err, out)
			}
			treetest.Equal(t, want, treetest.Snapshot(t, exported, treetest.NoDirTimes()), "export of the container vs the container")
		})
	}
}

func mount(t *testing.T, e *env, c *container.Container) *rootfs.FS {
	t.Helper()
	fsys, err := rootfs.Open(context.Background(), filepath.Join(e.root, "containers", c.ID, "rootfs"), rootfs.WithCache(e.cs.LayerCache()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() }) // never leave the mount behind, even when the test fails
	return fsys
}

func committedConfig(t *testing.T, e *env, res container.Committed) *v1.ConfigFile {
	t.Helper()
	src, err := image.Open(context.Background(), image.Reference{Transport: image.Local, Name: "docker.io/library/committed:1"}, image.WithStore(e.st))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	img, _ := src.Select(nil)
	id, _ := img.ConfigName()
	if id != res.ID {
		t.Errorf("image ID %s, commit returned %s", id, res.ID)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

// umociUnpack copies an image of the store with skopeo into a fresh layout
// and unpacks it with umoci; it returns the bundle.
func umociUnpack(t *testing.T, root, name string) string {
	t.Helper()
	skopeo := testenv.Tool(t, "skopeo", "skopeo")
	umoci := testenv.Tool(t, "umoci", "umoci")
	dir := t.TempDir()
	if out, err := exec.Command(skopeo, "copy", "--quiet", "oci:"+root+":"+name, "oci:"+filepath.Join(dir, "layout")+":x").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	bundle := filepath.Join(dir, "bundle")
	if out, err := exec.Command(umoci, "unpack", "--image", filepath.Join(dir, "layout")+":x", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	return bundle
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestExitCodeAndState(t *testing.T) {
	e := newEnv(t)
	c := e.create(t, container.CreateOptions{Cmd: []string{"/bin/sh", "-c", "exit 42"}})
	if st := c.State(); st.Status != container.Created {
		t.Errorf("new container: %+v", st)
	}
	if code, _ := e.run(t, c); code != 42 {
		t.Errorf("exit code %d, want 42", code)
	}
	if st := c.State(); st.Status != container.Exited || st.ExitCode != 42 {
		t.Errorf("state %+v", st)
	}
	// Run it again: same container, same changes kept.
	if code, _ := e.run(t, c); code != 42 {
		t.Errorf("second run: exit code %d", code)
	}
}

func TestNames(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// content's images cache their config unsynchronized: read it once
	// before the goroutines share the image.
	if _, err := e.img.ConfigFile(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := e.cs.Create(ctx, container.CreateOptions{Name: "same", Image: e.img, Cmd: []string{"true"}})
			errs[i] = err
			if err == nil {
				t.Cleanup(func() { e.cs.Remove(ctx, c, true) })
			}
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("create: %v, want a conflict", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d containers took the same name", ok)
	}
	c, err := e.cs.Get("same")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.cs.Get(c.ID[:6]); err != nil || got.ID != c.ID {
		t.Errorf("Get by ID prefix: %v", err)
	}
	if _, err := e.cs.Get("nothere"); !errdefs.IsNotFound(err) {
		t.Errorf("Get of a missing name: %v", err)
	}
	for _, bad := range []string{"-x", "a b", "a/b", strings.Repeat("a", 64)} {
		if _, err := e.cs.Create(ctx, container.CreateOptions{Name: bad, Image: e.img, Cmd: []string{"true"}}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
}

func TestCommitDir(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "rootfs")
	os.Mkdir(dir, 0o755)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(image.Export(ctx, pw, "alpine", e.img)) }()
	if err := layer.Extract(ctx, dir, pr); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "etc/motd"))
	os.WriteFile(filepath.Join(dir, "etc/new"), []byte("new\n"), 0o600)
	os.RemoveAll(filepath.Join(dir, "usr/share/apk"))
	want := treetest.Snapshot(t, dir, treetest.NoDirTimes())
	res, err := container.CommitDir(ctx, e.st, e.cs.LayerCache(), dir, e.img, container.CommitOptions{Name: "docker.io/library/committed:1", Changes: []string{"USER nobody"}})
	if err != nil {
		t.Fatal(err)
	}
	if cf := committedConfig(t, e, res); cf.Config.User != "nobody" || len(cf.RootFS.DiffIDs) != 2 {
		t.Errorf("config %+v", cf)
	}
	bundle := umociUnpack(t, e.root, "docker.io/library/committed:1")
	treetest.Equal(t, want, treetest.Snapshot(t, filepath.Join(bundle, "rootfs"), treetest.NoDirTimes()), "umoci unpack of the committed image vs the directory")
}

// TestDiffWhiteouts: what rm and rm -rf dir && mkdir dir do inside a
// container becomes whiteout and opaque entries, and the image's layers
// with the diff on top are, for the kernel's overlayfs, the container's
// file system.
func TestDiffWhiteouts(t *testing.T) {
	overlaytest.Require(t)
	e := newEnv(t)
	c := e.create(t, container.CreateOptions{Cmd: []string{"/bin/sh", "-c", "rm /etc/motd && rm -rf /etc/apk && mkdir /etc/apk && touch /etc/apk/new && rm -rf /usr/share/apk"}})
	if code, out := e.run(t, c); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	var diff bytes.Buffer
	if err := c.Diff(context.Background(), &diff, rootfs.DiffOptions{}); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(diff.Bytes()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	// In the order of the names they stand for, as docker's walk of the
	// upper directory writes them.
	want := []string{"etc/", "etc/apk/", "etc/apk/.wh..wh..opq", "etc/apk/new", "etc/.wh.motd", "usr/", "usr/share/", "usr/share/.wh.apk"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("diff entries (-want +got):\n%s", diff)
	}
	s := overlaytest.New(t)
	ls, _ := e.img.Layers()
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		err = s.Add(rc, false)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add(bytes.NewReader(diff.Bytes()), false); err != nil {
		t.Fatal(err)
	}
	merged, _ := s.Mount(false)
	fsys := mount(t, e, c)
	defer fsys.Close()
	noX := treetest.Xattrs(func(string) bool { return false })
	treetest.Equal(t, treetest.Snapshot(t, fsys.Dir(), treetest.NoDirTimes(), noX), treetest.Snapshot(t, merged, treetest.NoDirTimes(), noX), "the image's layers and the diff, by overlayfs, vs the container")
}
