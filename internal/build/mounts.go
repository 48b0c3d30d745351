package build

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/lading-dev/lading/internal/errdefs"
)

// cacheMountPath is where RUN --mount=type=cache keeps the directory of id.
func cacheMountPath(root, id string) string {
	h := sha256.Sum256([]byte(id))
	return filepath.Join(root, "cache", "build-mounts", hex.EncodeToString(h[:16]))
}

func mkdirMount(dir string, m *instructions.Mount) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	mode := os.FileMode(0o755)
	if m.Mode != nil {
		mode = os.FileMode(*m.Mode) & os.ModePerm
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, mode); err != nil {
		return err
	}
	if m.UID != nil || m.GID != nil {
		uid, gid := 0, 0
		if m.UID != nil {
			uid = int(*m.UID)
		}
		if m.GID != nil {
			gid = int(*m.GID)
		}
		if err := os.Lchown(dir, uid, gid); err != nil && os.Geteuid() == 0 {
			return err
		}
	}
	return nil
}

// realPath resolves the context path rel component by component inside
// the context: symlinks are followed as if the context were the root, and
// one that leaves it is refused. The result has no symlink on the way (so
// the kernel, mounting it, cannot be led outside).
func (c *Context) realPath(rel string) (string, error) {
	todo := splitPathRaw(rel)
	var done []string
	links := 0
	for len(todo) > 0 {
		comp := todo[0]
		todo = todo[1:]
		if comp == ".." {
			if len(done) == 0 {
				return "", errdefs.InvalidArgument(fmt.Errorf("%q: points outside the build context", rel))
			}
			done = done[:len(done)-1]
			continue
		}
		p := path.Join(append(done, comp)...)
		fi, err := c.root.Lstat(p)
		if err != nil {
			return "", c.notFound(rel, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, comp)
			continue
		}
		if links++; links > maxLinks {
			return "", errdefs.InvalidArgument(fmt.Errorf("%q: too many levels of symbolic links", rel))
		}
		t, err := c.root.Readlink(p)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(t, "/") {
			return "", errdefs.InvalidArgument(fmt.Errorf("%q: symlink to %s points outside the build context", rel, t))
		}
		todo = append(splitPathRaw(t), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

func joinHost(dir, rel string) string {
	if rel == "." {
		return dir
	}
	return filepath.Join(dir, filepath.FromSlash(rel))
}
