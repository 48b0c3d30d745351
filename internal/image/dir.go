package image

import (
	"context"
	"fmt"

	"github.com/lading-dev/lading/internal/errdefs"
)

// openDir builds a single-layer image from a root filesystem directory.
func openDir(ctx context.Context, ref Reference, o *options) (*Source, error) {
	return nil, errdefs.Unsupported(fmt.Errorf("%s: the dir: transport is not built yet", ref))
}
