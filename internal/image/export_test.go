package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/layer"
)

// node is one entry of a root filesystem, as compared between lading's
// export and umoci's unpack.
type node struct {
	Type   string // dir, file, symlink, char, block, fifo
	Mode   fs.FileMode
	Target string // symlink target
	SHA256 string // regular file content
	UID    int
	GID    int
}

func (n node) String() string {
	return fmt.Sprintf("%s %v %d:%d %s%s", n.Type, n.Mode, n.UID, n.GID, n.Target, n.SHA256)
}

// treeFromTar reads an export stream into a tree; hard links take their
// target's content.
func treeFromTar(t *testing.T, r io.Reader, owners bool) map[string]node {
	t.Helper()
	tree := map[string]node{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tree
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if name == "" || name == "." {
			continue
		}
		n := node{Mode: h.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)}
		if owners {
			n.UID, n.GID = h.Uid, h.Gid
		}
		switch h.Typeflag {
		case tar.TypeDir:
			n.Type = "dir"
		case tar.TypeReg:
			n.Type = "file"
			sum := sha256.New()
			io.Copy(sum, tr)
			n.SHA256 = hex.EncodeToString(sum.Sum(nil))
		case tar.TypeLink:
			target, ok := tree[strings.TrimPrefix(h.Linkname, "./")]
			if !ok {
				t.Fatalf("hard link %s to %s, which the stream has not shown", name, h.Linkname)
			}
			n = target
		case tar.TypeSymlink:
			n.Type, n.Target = "symlink", h.Linkname
		case tar.TypeChar:
			n.Type = "char"
		case tar.TypeBlock:
			n.Type = "block"
		case tar.TypeFifo:
			n.Type = "fifo"
		default:
			t.Fatalf("%s: unexpected type %c", name, h.Typeflag)
		}
		tree[name] = n
	}
}

// treeFromDir walks an unpacked root filesystem.
func treeFromDir(t *testing.T, root string, owners bool) map[string]node {
	t.Helper()
	tree := map[string]node{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		n := node{Mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && owners {
			n.UID, n.GID = int(st.Uid), int(st.Gid)
		}
		switch m := fi.Mode(); {
		case m.IsDir():
			n.Type = "dir"
		case m.IsRegular():
			n.Type = "file"
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			n.SHA256 = hex.EncodeToString(s[:])
		case m&fs.ModeSymlink != 0:
			n.Type = "symlink"
			n.Target, _ = os.Readlink(p)
		case m&fs.ModeCharDevice != 0:
			n.Type = "char"
		case m&fs.ModeDevice != 0:
			n.Type = "block"
		case m&fs.ModeNamedPipe != 0:
			n.Type = "fifo"
		}
		tree[rel] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// umociLayout returns an OCI layout dir and ref umoci can unpack for a
// corpus file: OCI tars are untarred, docker-archives converted by skopeo.
func umociLayout(t *testing.T, file string) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	path := corpustest.Image(t, file)
	if strings.Contains(file, ".oci.") {
		os.MkdirAll(dir, 0o755)
		if out, err := exec.Command("tar", "-xf", path, "-C", dir).CombinedOutput(); err != nil {
			t.Fatalf("tar: %v %s", err, out)
		}
		l, err := os.ReadFile(filepath.Join(dir, "index.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range []string{"latest", "3.10", "3.9.6"} {
			if strings.Contains(string(l), `"org.opencontainers.image.ref.name":"`+tag+`"`) {
				return dir, tag
			}
		}
		t.Fatalf("%s: no known tag in index.json", file)
	}
	if strings.HasSuffix(path, ".gz") {
		plain := filepath.Join(t.TempDir(), "plain.tar")
		out, err := exec.Command("sh", "-c", "gzip -dc '"+path+"' > '"+plain+"'").CombinedOutput()
		if err != nil {
			t.Fatalf("gunzip: %v %s", err, out)
		}
		path = plain
	}
	skopeo(t, "copy", "-q", "docker-archive:"+path, "oci:"+dir+":x")
	return dir, "x"
}

// TestCorpusExportMatchesUmoci checks, for every corpus image, that the
// tree lading export writes equals entry for entry (path, type, mode,
// symlink target, content hash, and owners when run as root) the rootfs
// umoci unpack makes of the same image.
func TestCorpusExportMatchesUmoci(t *testing.T) {
	umoci := needTool(t, "umoci")
	needTool(t, "skopeo")
	root := os.Geteuid() == 0
	for _, ci := range corpusSet() {
		t.Run(ci.file+ci.platform, func(t *testing.T) {
			_, img := openCorpus(t, ci)
			pr, pw := io.Pipe()
			go func() {
				pw.CloseWithError(Export(context.Background(), pw, ci.file, img, layer.AllowDevices(), layer.WithTempDir(t.TempDir())))
			}()
			got := treeFromTar(t, pr, root)

			var layout, tag string
			if ci.platform != "" {
				// umoci cannot pick a platform from a nested index: lay out
				// the selected manifest (its bytes unchanged) for it.
				layout, tag = filepath.Join(t.TempDir(), "layout"), "x"
				if _, err := Write(context.Background(), Reference{Transport: OCI, Path: layout, Name: tag}, Artifact{Image: img}); err != nil {
					t.Fatal(err)
				}
			} else {
				layout, tag = umociLayout(t, ci.file)
			}
			bundle := filepath.Join(t.TempDir(), "bundle")
			args := []string{"unpack", "--image", layout + ":" + tag, bundle}
			if !root {
				args = append([]string{"unpack", "--rootless"}, args[1:]...)
			}
			if out, err := exec.Command(umoci, args...).CombinedOutput(); err != nil {
				t.Fatalf("umoci unpack: %v\n%s", err, out)
			}
			want := treeFromDir(t, filepath.Join(bundle, "rootfs"), root)
			if !root {
				// umoci --rootless makes directories writable by their owner.
				for k, n := range want {
					if n.Type == "dir" {
						n.Mode &^= 0o200
						want[k] = n
					}
				}
				for k, n := range got {
					if n.Type == "dir" {
						n.Mode &^= 0o200
						got[k] = n
					}
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("export differs from umoci unpack (-umoci +lading):\n%s", truncate(diff, 4000))
			}
			t.Logf("%d entries compared", len(want))
		})
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n…"
}
