package vulndb

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropCache asks the kernel to drop f's pages from the page cache (f must
// be synced). Advice only: failure changes nothing.
func dropCache(f *os.File) {
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
