package project

import (
	"context"
	"errors"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
)

// MayCreate reports whether who may create a project now (the web UI
// offers its form only then); Create decides the same way.
func (s *Service) MayCreate(ctx context.Context, who access.Subject) (bool, error) {
	_, err := s.canCreate(ctx, who)
	if errors.Is(err, errdefs.ErrDenied) || errdefs.IsUnauthorized(err) {
		return false, nil
	}
	return err == nil, err
}
