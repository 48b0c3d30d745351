//go:build !linux

package layer

import (
	"fmt"

	"github.com/lading-dev/lading/internal/errdefs"
)

func mknodat(dirfd int, name string, mode uint32, dev uint64) error {
	return errdefs.Unsupported(fmt.Errorf("creating FIFOs and device nodes is implemented for Linux only"))
}
