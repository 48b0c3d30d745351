package layer

import "golang.org/x/sys/unix"

// mountOverlay mounts a read-only overlay with the given options on target.
func mountOverlay(target, opts string) error {
	return unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, opts)
}

func unmountOverlay(target string) error { return unix.Unmount(target, 0) }
