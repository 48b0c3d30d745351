//go:build unix

package vulndb

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps f's size bytes read-only. Lookups are searches and jumps to
// records: the mapping is advised random, so the kernel reads in the pages
// a lookup touches rather than reading ahead around each fault, which keeps
// a scan's resident set small.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	b, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	unix.Madvise(b, unix.MADV_RANDOM) // advice only: failure changes nothing
	return b, func() error { return unix.Munmap(b) }, nil
}
