package api

import (
	"net/http"
	"time"

	"github.com/lading-dev/lading/internal/scanning/scanapi"
)

// scannerJSON is Harbor's ScannerRegistration.
type scannerJSON struct {
	UUID             string    `json:"uuid"`
	Name             string    `json:"name"`
	Description      string    `json:"description"`
	URL              string    `json:"url"`
	Disabled         bool      `json:"disabled"`
	IsDefault        bool      `json:"is_default"`
	Auth             string    `json:"auth"`
	AccessCredential string    `json:"access_credential"`
	SkipCertVerify   bool      `json:"skip_certVerify"`
	UseInternalAddr  bool      `json:"use_internal_addr"`
	CreateTime       time.Time `json:"create_time"`
	UpdateTime       time.Time `json:"update_time"`
	Adapter          string    `json:"adapter,omitempty"`
	Vendor           string    `json:"vendor,omitempty"`
	Version          string    `json:"version,omitempty"`
	Health           string    `json:"health,omitempty"`
}

func toScanner(r scanapi.Registration) scannerJSON {
	return scannerJSON{UUID: r.UUID, Name: r.Name, Description: r.Description, URL: r.URL, Disabled: r.Disabled, IsDefault: r.IsDefault, Auth: r.Auth,
		AccessCredential: r.AccessCredential, SkipCertVerify: r.SkipCertVerify, UseInternalAddr: r.UseInternalAddr, CreateTime: r.Created.UTC(),
		UpdateTime: r.Updated.UTC(), Adapter: r.Adapter, Vendor: r.Vendor, Version: r.Version, Health: r.Health}
}

// scannerReq is Harbor's ScannerRegistrationReq (and the ping's
// ScannerRegistrationSettings).
type scannerReq struct {
	Name             string `json:"name"`
	Description      string `json:"description"`
	URL              string `json:"url"`
	Auth             string `json:"auth"`
	AccessCredential string `json:"access_credential"`
	SkipCertVerify   *bool  `json:"skip_certVerify"`
	UseInternalAddr  *bool  `json:"use_internal_addr"`
	Disabled         *bool  `json:"disabled"`
}

func (r scannerReq) registration() scanapi.Registration {
	deref := func(b *bool) bool { return b != nil && *b }
	return scanapi.Registration{Name: r.Name, Description: r.Description, URL: r.URL, Auth: r.Auth, AccessCredential: r.AccessCredential,
		SkipCertVerify: deref(r.SkipCertVerify), UseInternalAddr: deref(r.UseInternalAddr), Disabled: deref(r.Disabled)}
}

func scanners(list []scanapi.Registration) []scannerJSON {
	out := make([]scannerJSON, len(list))
	for i, r := range list {
		out[i] = toScanner(r)
	}
	return out
}

func (s *Server) listScanners(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	list, total, err := sc.ListScanners(c.ctx, c.who, q, page)
	if err != nil {
		return err
	}
	return c.list(page, total, scanners(list))
}

func (s *Server) createScanner(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	var req scannerReq
	if err := c.decode(&req); err != nil {
		return err
	}
	uuid, err := sc.CreateScanner(c.ctx, c.who, req.registration())
	if err != nil {
		return err
	}
	return c.created(uuid)
}

func (s *Server) getScanner(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	r, err := sc.Scanner(c.ctx, c.who, c.r.PathValue("registration_id"))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toScanner(r))
}

func (s *Server) updateScanner(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	var req scannerReq
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := sc.UpdateScanner(c.ctx, c.who, c.r.PathValue("registration_id"), req.registration()); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) deleteScanner(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	r, err := sc.DeleteScanner(c.ctx, c.who, c.r.PathValue("registration_id"))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toScanner(r))
}

func (s *Server) setDefaultScanner(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	var req struct {
		IsDefault bool `json:"is_default"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := sc.SetDefaultScanner(c.ctx, c.who, c.r.PathValue("registration_id"), req.IsDefault); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) scannerMetadata(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	m, err := sc.ScannerMetadata(c.ctx, c.who, c.r.PathValue("registration_id"))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, m)
}

func (s *Server) pingScanner(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	var req scannerReq
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := sc.PingScanner(c.ctx, c.who, req.registration()); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) getProjectScanner(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	r, err := sc.ProjectScanner(c.ctx, c.who, c.projectRef("project_name_or_id"))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toScanner(r))
}

func (s *Server) setProjectScanner(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	var req struct {
		UUID string `json:"uuid"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := sc.SetProjectScanner(c.ctx, c.who, c.projectRef("project_name_or_id"), req.UUID); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) scannerCandidates(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	list, total, err := sc.ScannerCandidates(c.ctx, c.who, c.projectRef("project_name_or_id"), q, page)
	if err != nil {
		return err
	}
	return c.list(page, total, scanners(list))
}
