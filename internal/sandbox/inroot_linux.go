//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// openInRoot opens p, a path inside the root open as rootFD, as if rootFD
// were "/": symlinks (absolute ones too) and ".." never lead out of it
// (openat2 with RESOLVE_IN_ROOT; magic links of /proc are refused).
func openInRoot(rootFD int, p string, flags int) (int, error) {
	rel := strings.TrimLeft(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	how := &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(rootFD, rel, how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 100 {
			continue // a concurrent rename or mount: try again
		}
		if err == unix.ENOSYS {
			return -1, fmt.Errorf("%w: openat2 (Linux 5.6) is needed to resolve paths inside a root safely", ErrUnsupported)
		}
		if err != nil {
			return -1, &os.PathError{Op: "open in root", Path: p, Err: err}
		}
		return fd, nil
	}
}

// ensureInRoot returns an O_PATH descriptor of p inside the root, creating
// it (a directory, or with file an empty regular file) and its missing
// parents (directories, mode 0755) first. Every step resolves inside the
// root; a symlink to a missing path gets its target made (inside the root),
// as runc's securejoin.MkdirAll does.
func ensureInRoot(rootFD int, p string, file bool) (int, error) {
	return ensure(rootFD, path.Clean("/"+p), file, 0)
}

func ensure(rootFD int, p string, file bool, depth int) (int, error) {
	if depth > 40 {
		return -1, &os.PathError{Op: "create in root", Path: p, Err: unix.ELOOP}
	}
	fd, err := openInRoot(rootFD, p, unix.O_PATH)
	if err == nil || !errors.Is(err, unix.ENOENT) || p == "/" {
		return fd, err
	}
	parent, err := ensure(rootFD, path.Dir(p), false, depth+1)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	name := path.Base(p)
	if file {
		var f int
		f, err = unix.Openat(parent, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(f)
		}
	} else {
		err = unix.Mkdirat(parent, name, 0o755)
	}
	if errors.Is(err, unix.EEXIST) {
		// A symlink to a missing path: make its target.
		buf := make([]byte, unix.PathMax)
		n, rerr := unix.Readlinkat(parent, name, buf)
		if rerr != nil {
			return -1, &os.PathError{Op: "create in root", Path: p, Err: err}
		}
		target := string(buf[:n])
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		tfd, err := ensure(rootFD, path.Clean("/"+target), file, depth+1)
		if err != nil {
			return -1, err
		}
		unix.Close(tfd)
	} else if err != nil {
		return -1, &os.PathError{Op: "create in root", Path: p, Err: err}
	}
	return openInRoot(rootFD, p, unix.O_PATH)
}

// fdPath is a path that names what fd is open on.
func fdPath(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

// statInRoot reports the type of p inside root (a host directory) without
// leaving it; fs.ErrNotExist when missing.
func statInRoot(root, p string) (os.FileMode, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rfd)
	fd, err := openInRoot(rfd, p, unix.O_PATH)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return os.ModeDir, nil
	case unix.S_IFREG:
		return 0, nil
	}
	return os.ModeIrregular, nil
}

// rootOpener opens files inside root (a host directory) for LookupUser.
func rootOpener(root string) func(string) (io.ReadCloser, error) {
	return func(name string) (io.ReadCloser, error) {
		rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: root, Err: err}
		}
		defer unix.Close(rfd)
		fd, err := openInRoot(rfd, name, unix.O_RDONLY)
		if err != nil {
			return nil, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			unix.Close(fd)
			return nil, fmt.Errorf("%s: not a regular file", name)
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// hostNetFiles are the files of the host mounted over the root's with a
// host network: those the root has as regular files.
func hostNetFiles(s Spec) []string {
	if s.Network != "host" {
		return nil
	}
	var out []string
	for _, f := range []string{"/etc/resolv.conf", "/etc/hosts"} {
		if _, err := os.Stat(f); err != nil {
			continue
		}
		if m, err := statInRoot(s.Root, f); err == nil && m == 0 {
			out = append(out, f)
		}
	}
	return out
}
