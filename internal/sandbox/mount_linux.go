//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostDevices are bind mounted from the host's /dev into the sandbox's
// (which is nodev, so that nodes made inside cannot be opened).
var hostDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// devLinks are the symlinks of a container's /dev.
var devLinks = [][2]string{
	{"pts/ptmx", "/dev/ptmx"},
	{"/proc/self/fd", "/dev/fd"},
	{"/proc/self/fd/0", "/dev/stdin"},
	{"/proc/self/fd/1", "/dev/stdout"},
	{"/proc/self/fd/2", "/dev/stderr"},
}

// setupRoot builds the sandbox's file system view and moves into it; it
// reports whether it had to chroot (no pivot_root).
func setupRoot(s *specs.Spec, noPivot bool) (chrooted bool, err error) {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return false, fmt.Errorf("make mounts private: %w", err)
	}
	root := s.Root.Path
	// pivot_root needs the new root to be a mount point; nodev because
	// there is no devices cgroup (see the package documentation).
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return false, fmt.Errorf("bind mount the root %s: %w", root, err)
	}
	if err := remount(root, unix.MS_NODEV); err != nil {
		return false, fmt.Errorf("remount the root nodev: %w", err)
	}
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("open the root: %w", err)
	}
	defer unix.Close(rootFD)
	for _, m := range s.Mounts {
		if err := mountInRoot(rootFD, m); err != nil {
			return false, fmt.Errorf("mount %s on %s: %w", m.Type, m.Destination, err)
		}
		if m.Destination == "/dev" {
			if err := populateDev(rootFD); err != nil {
				return false, fmt.Errorf("/dev: %w", err)
			}
		}
	}
	chrooted, err = pivot(root, noPivot)
	if err != nil {
		return false, err
	}
	newRoot, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(newRoot)
	for _, p := range s.Linux.MaskedPaths {
		if err := maskPath(newRoot, p); err != nil {
			return false, fmt.Errorf("mask %s: %w", p, err)
		}
	}
	for _, p := range s.Linux.ReadonlyPaths {
		if err := readonlyPath(newRoot, p); err != nil {
			return false, fmt.Errorf("make %s read-only: %w", p, err)
		}
	}
	return chrooted, nil
}

// mountInRoot mounts m at its destination, resolved inside the root.
func mountInRoot(rootFD int, m specs.Mount) error {
	flags, data := parseMountOptions(m.Options)
	bind := flags&unix.MS_BIND != 0
	file := false
	if bind {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return err
		}
		file = !fi.IsDir()
	}
	if m.Type == "tmpfs" && m.Destination == "/dev" {
		flags |= unix.MS_NODEV // native only: no devices cgroup
	}
	fd, err := ensureInRoot(rootFD, m.Destination, file)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if !bind {
		return unix.Mount(m.Source, fdPath(fd), m.Type, flags, data)
	}
	if err := unix.Mount(m.Source, fdPath(fd), "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
		return err
	}
	extra := flags &^ (unix.MS_BIND | unix.MS_REC)
	if extra == 0 {
		return nil
	}
	// Reopen: the descriptor names what is under the new mount.
	fd2, err := openInRoot(rootFD, m.Destination, unix.O_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(fd2)
	return remount(fdPath(fd2), extra)
}

// remount adds flags to the bind mount at target, keeping the flags the
// mount has (the kernel refuses to drop locked ones in a user namespace).
func remount(target string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		return err
	}
	keep := uintptr(0)
	for _, f := range []struct{ st, ms uintptr }{
		{unix.ST_RDONLY, unix.MS_RDONLY}, {unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(st.Flags)&f.st != 0 {
			keep |= f.ms
		}
	}
	return unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|keep|flags, "")
}

// parseMountOptions splits OCI mount options into mount flags and data.
func parseMountOptions(opts []string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range opts {
		switch o {
		case "ro":
			flags |= unix.MS_RDONLY
		case "rw":
			flags &^= unix.MS_RDONLY
		case "nosuid":
			flags |= unix.MS_NOSUID
		case "nodev":
			flags |= unix.MS_NODEV
		case "noexec":
			flags |= unix.MS_NOEXEC
		case "strictatime":
			flags |= unix.MS_STRICTATIME
		case "relatime":
			flags |= unix.MS_RELATIME
		case "noatime":
			flags |= unix.MS_NOATIME
		case "bind":
			flags |= unix.MS_BIND
		case "rbind":
			flags |= unix.MS_BIND | unix.MS_REC
		default:
			data = append(data, o)
		}
	}
	return flags, strings.Join(data, ",")
}

// populateDev fills the fresh /dev tmpfs: the host's basic device nodes
// bind mounted onto empty files, and the usual symlinks.
func populateDev(rootFD int) error {
	for _, d := range hostDevices {
		p := "/dev/" + d
		fd, err := ensureInRoot(rootFD, p, true)
		if err != nil {
			return err
		}
		err = unix.Mount(p, fdPath(fd), "", unix.MS_BIND, "")
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("bind %s: %w", p, err)
		}
	}
	dev, err := openInRoot(rootFD, "/dev", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	for _, l := range devLinks {
		if err := unix.Symlinkat(l[0], dev, path.Base(l[1])); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	return nil
}

// pivot makes root the root of the mount namespace and detaches the old
// one. Where pivot_root cannot work (a root on the initramfs), or with
// noPivot, it moves the root over / and chroots, as runc's no_pivot does,
// and reports that it did.
func pivot(root string, noPivot bool) (chrooted bool, err error) {
	if err := unix.Chdir(root); err != nil {
		return false, err
	}
	if !noPivot {
		err := unix.PivotRoot(".", ".")
		if err == nil {
			// The old root is now stacked on "."; detach it.
			if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
				return false, fmt.Errorf("detach the old root: %w", err)
			}
			return false, unix.Chdir("/")
		}
		if err != unix.EINVAL {
			return false, fmt.Errorf("pivot_root: %w", err)
		}
	}
	if err := unix.Mount(root, "/", "", unix.MS_MOVE, ""); err != nil {
		return false, fmt.Errorf("move the root over /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return false, fmt.Errorf("chroot: %w", err)
	}
	return true, unix.Chdir("/")
}

// maskPath hides p: an empty read-only tmpfs over a directory, /dev/null
// over anything else. A missing path needs no mask.
func maskPath(rootFD int, p string) error {
	fd, err := openInRoot(rootFD, p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.Mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_RDONLY, "size=0k")
	}
	return unix.Mount("/dev/null", fdPath(fd), "", unix.MS_BIND, "")
}

// readonlyPath bind mounts p over itself read-only.
func readonlyPath(rootFD int, p string) error {
	fd, err := openInRoot(rootFD, p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	err = unix.Mount(fdPath(fd), fdPath(fd), "", unix.MS_BIND|unix.MS_REC, "")
	unix.Close(fd)
	if err != nil {
		return err
	}
	fd, err = openInRoot(rootFD, p, unix.O_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return remount(fdPath(fd), unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
}
