package ui

import (
	"errors"
	"strconv"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/replication"
)

// Proxy caches (Harbor's "Proxy Cache" switch of the new-project form):
// a project made with a registry endpoint pulls through from it. The form
// offers the registries the user may list; the project's page names its
// upstream, or only its number to those who may not read registries.

// upstreamChoices are the registries the new-project form offers; none
// when the user may not list registries or the server has no
// replication.
func (s *Server) upstreamChoices(c *call) ([]replication.Registry, error) {
	if s.svc.Replication == nil {
		return nil, nil
	}
	list, _, err := s.svc.Replication.Registries(c.ctx, c.who, query.Query{}, query.Page{Number: 1, Size: 100})
	if errors.Is(err, errdefs.ErrDenied) || errdefs.IsUnauthorized(err) {
		return nil, nil
	}
	return list, err
}

// upstream is what a proxy-cache project's page says of its upstream.
type upstream struct {
	ID        int64
	Name, URL string
	Type      string
}

// upstreamOf names a proxy-cache project's upstream (nil for another
// project), as far as the user may read it.
func (s *Server) upstreamOf(c *call, p project.Project) (*upstream, error) {
	if p.RegistryID == 0 {
		return nil, nil
	}
	u := &upstream{ID: p.RegistryID, Name: "registry " + strconv.FormatInt(p.RegistryID, 10)}
	if s.svc.Replication == nil {
		return u, nil
	}
	r, err := s.svc.Replication.Registry(c.ctx, c.who, p.RegistryID)
	switch {
	case errors.Is(err, errdefs.ErrDenied) || errdefs.IsUnauthorized(err) || errdefs.IsNotFound(err):
		return u, nil
	case err != nil:
		return nil, err
	}
	u.Name, u.URL, u.Type = r.Name, r.URL, r.Type
	return u, nil
}

// readUpstream reads the new-project form's registry ("" or "0": none).
func readUpstream(v string) (int64, error) {
	if v == "" || v == "0" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 0 {
		return 0, errdefs.InvalidArgument(errors.New("the proxy cache's registry is not one of the list"))
	}
	return id, nil
}
