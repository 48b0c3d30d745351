//go:build linux

package rootfs

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/layer"
)

// cache is the directory of unpacked layers (see the package documentation
// for its layout).
type cache struct {
	dir string
	log *slog.Logger
}

func (c *cache) init() error {
	for _, d := range []string{"sha256", "chains/sha256", "tmp", "empty"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			return fmt.Errorf("rootfs: cache: %w", err)
		}
	}
	c.cleanTmp()
	return nil
}

// tmpDir makes a directory under tmp/ named for this process, so that
// what a killed process left can be told from work in progress.
func (c *cache) tmpDir(kind string) (string, error) {
	return os.MkdirTemp(filepath.Join(c.dir, "tmp"), fmt.Sprintf("%s-%d-", kind, os.Getpid()))
}

// cleanTmp removes what processes that no longer run left under tmp/
// (unpacking cut short, file systems never removed).
func (c *cache) cleanTmp() {
	es, err := os.ReadDir(filepath.Join(c.dir, "tmp"))
	if err != nil {
		return
	}
	for _, e := range es {
		parts := strings.SplitN(e.Name(), "-", 3)
		if len(parts) != 3 {
			continue
		}
		pid, err := strconv.Atoi(parts[1])
		if err != nil || pid <= 0 || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		p := filepath.Join(c.dir, "tmp", e.Name())
		unmount(filepath.Join(p, "merged"))
		os.RemoveAll(p)
	}
}

func (c *cache) empty() string { return filepath.Join(c.dir, "empty") }

func (c *cache) layerPath(diffID v1.Hash) string {
	return filepath.Join(c.dir, diffID.Algorithm, diffID.Hex)
}

func (c *cache) chainPath(chainID v1.Hash) string {
	return filepath.Join(c.dir, "chains", chainID.Algorithm, chainID.Hex)
}

// cachedLayers returns the unpacked directories of diffIDs, top first.
func (c *cache) cachedLayers(diffIDs []v1.Hash) ([]string, error) {
	var out []string
	for i := len(diffIDs) - 1; i >= 0; i-- {
		d := c.layerPath(diffIDs[i])
		if _, err := os.Stat(d); err != nil {
			return nil, errdefs.NotFound(fmt.Errorf("rootfs: layer %s is no longer unpacked in %s", diffIDs[i], c.dir))
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		out = []string{c.empty()}
	}
	return out, nil
}

func (c *cache) cachedChain(diffIDs []v1.Hash) (string, error) {
	d := c.chainPath(chainID(diffIDs))
	if _, err := os.Stat(d); err != nil {
		return "", errdefs.NotFound(fmt.Errorf("rootfs: the merged layers %s are no longer in %s", chainID(diffIDs), c.dir))
	}
	return d, nil
}

// chainID is the OCI chain ID of a stack of diffIDs (bottom first).
func chainID(diffIDs []v1.Hash) v1.Hash {
	if len(diffIDs) == 0 {
		return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(make([]byte, 32))}
	}
	id := diffIDs[0]
	for _, d := range diffIDs[1:] {
		sum := sha256.Sum256([]byte(id.String() + " " + d.String()))
		id = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	}
	return id
}

// layer returns the directory of l unpacked in overlayfs form, unpacking
// it first when the cache does not hold it.
func (c *cache) layer(ctx context.Context, l v1.Layer, name string) (string, error) {
	diffID, err := l.DiffID()
	if err != nil {
		return "", fmt.Errorf("rootfs: %s: %w", name, err)
	}
	if diffID.Algorithm != "sha256" || len(diffID.Hex) != 64 {
		return "", errdefs.InvalidArgument(fmt.Errorf("rootfs: %s: diffID %s: want sha256", name, diffID))
	}
	dst := c.layerPath(diffID)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	tmp, err := c.tmpDir("layer")
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	defer os.RemoveAll(tmp)
	name = fmt.Sprintf("%s %s", name, diffID)
	if err := c.unpack(ctx, l, diffID, tmp, name, false); err != nil {
		return "", err
	}
	return dst, place(tmp, dst)
}

// chain returns the directory of the merged tree of layers, making it
// first when the cache does not hold it.
func (c *cache) chain(ctx context.Context, layers []v1.Layer) (string, error) {
	diffIDs := make([]v1.Hash, len(layers))
	for i, l := range layers {
		var err error
		if diffIDs[i], err = l.DiffID(); err != nil {
			return "", fmt.Errorf("rootfs: layer %d: %w", i+1, err)
		}
	}
	dst := c.chainPath(chainID(diffIDs))
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	tmp, err := c.tmpDir("chain")
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	defer os.RemoveAll(tmp)
	for i, l := range layers {
		name := fmt.Sprintf("layer %d/%d %s", i+1, len(layers), diffIDs[i])
		if err := c.unpack(ctx, l, diffIDs[i], tmp, name, true); err != nil {
			return "", err
		}
	}
	return dst, place(tmp, dst)
}

// place renames the finished tmp to dst; when another process placed dst
// first, its copy is kept.
func place(tmp, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	err := os.Rename(tmp, dst)
	if err != nil && (errors.Is(err, fs.ErrExist) || errors.Is(err, unix.ENOTEMPTY)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return nil
}

// unpack extracts l into dir and checks that its content hashes to
// diffID. With merge, the layer is applied on what dir holds (whiteouts
// remove); otherwise dir is empty and whiteouts are turned into overlayfs
// form.
func (c *cache) unpack(ctx context.Context, l v1.Layer, diffID v1.Hash, dir, name string, merge bool) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("rootfs: %s: %w", name, err)
	}
	defer rc.Close()
	h := sha256.New()
	// A second reader of the same bytes collects the names that need work
	// after extraction: whiteout markers and trusted.overlay.* xattrs,
	// which a layer must not be able to set on the overlay's lower layers.
	pr, pw := io.Pipe()
	found := make(chan marks, 1)
	go func() { found <- scanMarks(pr) }()
	r := io.TeeReader(rc, io.MultiWriter(h, pw))
	opts := []layer.Option{layer.WithName(name), layer.WithXattrs(), layer.WithLogger(c.log)}
	if os.Geteuid() == 0 {
		opts = append(opts, layer.AllowDevices())
	}
	if merge {
		opts = append(opts, layer.ApplyWhiteouts())
	}
	err = layer.Extract(ctx, dir, r, opts...)
	if err == nil {
		_, err = io.Copy(io.Discard, r) // the end-of-archive padding, for the hash
	}
	pw.CloseWithError(err)
	m := <-found
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != diffID.Hex {
		return errdefs.Corrupt(fmt.Errorf("rootfs: %s: content hashes to sha256:%s", name, got))
	}
	if err := stripOverlayXattrs(dir, m.xattrs); err != nil {
		return fmt.Errorf("rootfs: %s: %w", name, err)
	}
	if merge {
		return nil
	}
	if err := overlayForm(dir, m.whiteouts); err != nil {
		return fmt.Errorf("rootfs: %s: %w", name, err)
	}
	return nil
}

type marks struct {
	whiteouts []string // whiteout and opaque markers, cleaned relative names, archive order
	xattrs    []string // entries that set trusted.overlay.* xattrs
}

// scanMarks reads tar headers from r until it ends, and drains it.
func scanMarks(r *io.PipeReader) marks {
	var m marks
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		p := cleanName(h.Name)
		if p == "" {
			continue
		}
		if strings.HasPrefix(path.Base(p), ".wh.") {
			m.whiteouts = append(m.whiteouts, p)
		}
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.trusted.overlay.") {
				m.xattrs = append(m.xattrs, p)
				break
			}
		}
	}
	io.Copy(io.Discard, r)
	return m
}

func cleanName(n string) string {
	p := path.Clean("/" + n)
	if p == "/" {
		return ""
	}
	return p[1:]
}

// openBeneath opens p below dirfd without following any symlink.
func openBeneath(dirfd int, p string, flags int) (int, error) {
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, p, how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 100 {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, nil
	}
}

func stripOverlayXattrs(dir string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	for _, p := range names {
		pfd, err := openBeneath(dfd, parentOf(p), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			continue // gone, or replaced by a later entry
		}
		proc := fmt.Sprintf("/proc/self/fd/%d/%s", pfd, path.Base(p))
		for _, k := range listXattrs(proc) {
			if strings.HasPrefix(k, "trusted.overlay.") {
				if err := unix.Lremovexattr(proc, k); err != nil && !errors.Is(err, unix.ENODATA) {
					unix.Close(pfd)
					return fmt.Errorf("%s: remove xattr %s: %w", p, k, err)
				}
			}
		}
		unix.Close(pfd)
	}
	return nil
}

// overlayForm turns the whiteout markers the extraction wrote as plain
// files into what overlayfs reads: ".wh.NAME" into a 0/0 character device
// NAME (or, when the layer has a directory NAME, that directory opaque),
// ".wh..wh..opq" into trusted.overlay.opaque=y on its directory (ignored at
// the root, as overlayfs ignores it); other ".wh..wh." names are dropped.
func overlayForm(dir string, markers []string) error {
	if len(markers) == 0 {
		return nil
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	for _, m := range markers {
		parent, base := parentOf(m), path.Base(m)
		pfd, err := openBeneath(dfd, parent, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			continue // its directory was replaced by a later entry
		}
		err = convertMarker(pfd, parent, base)
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("whiteout %s: %w", m, err)
		}
	}
	return nil
}

func convertMarker(pfd int, parent, base string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil // already handled (a duplicate name) or not ours
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil {
		return err
	}
	switch {
	case base == ".wh..wh..opq":
		if parent == "." {
			return nil
		}
		return unix.Fsetxattr(pfd, "trusted.overlay.opaque", []byte("y"), 0)
	case strings.HasPrefix(base, ".wh..wh."):
		return nil
	}
	name := base[len(".wh."):]
	err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Fsetxattr(fd, "trusted.overlay.opaque", []byte("y"), 0)
	case err == nil:
		return nil // the layer made NAME again: it hides the lower one anyway
	}
	return unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
}

func parentOf(p string) string {
	d := path.Dir(p)
	if d == "" {
		return "."
	}
	return d
}
