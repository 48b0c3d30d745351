//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sqlite

import "github.com/lading-dev/lading/internal/registry/meta"

// newLocks: without flock(2), collections take no lock, and blobs a dead
// collector left deleting are taken over after meta's timeout.
func newLocks(string) meta.CollectionLocks { return nil }
