package build

import (
	"fmt"
	"log/slog"

	"github.com/lading-dev/lading/internal/errdefs"
)

// NewRunner returns the runner of RUN steps for a --runtime value: "native"
// (lading's own sandbox) or "runc".
func NewRunner(runtime string, log *slog.Logger) (Runner, error) {
	switch runtime {
	case "native", "runc", "":
		return nil, nil
	}
	return nil, errdefs.InvalidArgument(fmt.Errorf("--runtime %q: want native or runc", runtime))
}
