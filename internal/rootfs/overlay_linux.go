//go:build linux

package rootfs

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// overlayOptions turn off the overlayfs features that would make the upper
// directory more than a plain changeset: without them, a changed file's
// data is in the upper directory (metacopy), a renamed directory is copied
// up whole (redirect_dir), and no index ties the layers to one mount.
const overlayOptions = "index=off,metacopy=off,redirect_dir=off"

// mountOverlay mounts an overlayfs of lowers (top first), upper and work at
// merged.
func mountOverlay(lowers []string, upper, work, merged string) error {
	for _, p := range append([]string{upper, work}, lowers...) {
		if strings.ContainsAny(p, ":,\\") {
			return fmt.Errorf("rootfs: overlay: path %q has a ':', ',' or '\\'", p)
		}
	}
	opts := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work + "," + overlayOptions
	if len(opts) < unix.Getpagesize()-1 {
		if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
			return fmt.Errorf("rootfs: mount overlay on %s: %w", merged, err)
		}
		return nil
	}
	// Too many layers for one page of options: give them one by one
	// (fsconfig "lowerdir+", Linux 6.8).
	return mountOverlayFS(lowers, upper, work, merged)
}

func mountOverlayFS(lowers []string, upper, work, merged string) (err error) {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("rootfs: %d layers are too many for mount(2), and fsopen: %w", len(lowers), err)
	}
	defer unix.Close(fd)
	set := func(k, v string) {
		if err == nil {
			if e := unix.FsconfigSetString(fd, k, v); e != nil {
				err = fmt.Errorf("rootfs: overlay option %s: %w", k, e)
			}
		}
	}
	for _, l := range lowers {
		set("lowerdir+", l)
	}
	set("upperdir", upper)
	set("workdir", work)
	for _, kv := range strings.Split(overlayOptions, ",") {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	if err != nil {
		return err
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("rootfs: create overlay: %w", err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rootfs: fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, merged, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("rootfs: mount overlay on %s: %w", merged, err)
	}
	return nil
}

// unmount detaches the mount at dir; nothing mounted there is fine.
func unmount(dir string) error {
	err := unix.Unmount(dir, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("rootfs: unmount %s: %w", dir, err)
}

// Unmount detaches whatever is mounted at dir (a mount left behind by a
// process that was killed); nothing mounted there is fine.
func Unmount(dir string) error { return unmount(dir) }
