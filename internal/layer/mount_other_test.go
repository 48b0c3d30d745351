//go:build !linux

package layer

import "errors"

func mountOverlay(target, opts string) error {
	return errors.New("overlayfs is Linux only")
}

func unmountOverlay(target string) error { return nil }
