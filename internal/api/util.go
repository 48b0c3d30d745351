package api

import (
	"errors"
	"net/http"

	"github.com/lading-dev/lading/internal/errdefs"
)

func errdefsMsg(s string) error { return errors.New(s) }

// errdefsTooLargeOr classifies a failed form parse.
func errdefsTooLargeOr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errdefs.TooLarge(err)
	}
	return errdefs.InvalidArgument(err)
}
