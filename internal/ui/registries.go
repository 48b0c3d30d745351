package ui

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/replication"
)

// Registries (Harbor's "Registries" page, /registries): the endpoints
// replication and proxy caches talk to. A stored credential is never
// shown back: the page says whether there is one, and the service masks
// the secret anyway.

// registryForm is the new-registry form as typed, its secret left out
// when it is shown again.
type registryForm struct {
	Name, Description, Type, URL, AccessKey, CACertificate string
	Insecure                                               bool
}

func readRegistryForm(f url.Values) (registryForm, string) {
	return registryForm{Name: strings.TrimSpace(f.Get("name")), Description: f.Get("description"), Type: f.Get("type"),
		URL: strings.TrimSpace(f.Get("url")), AccessKey: strings.TrimSpace(f.Get("access_key")), CACertificate: f.Get("ca_certificate"),
		Insecure: f.Get("insecure") == "on"}, f.Get("access_secret")
}

func (r registryForm) registry(secret string) replication.Registry {
	out := replication.Registry{Name: r.Name, Description: r.Description}
	out.Type, out.URL, out.Insecure, out.CACertificate = r.Type, r.URL, r.Insecure, r.CACertificate
	if r.AccessKey != "" || secret != "" {
		out.Credential = endpoint.Credential{Type: endpoint.CredentialBasic, AccessKey: r.AccessKey, AccessSecret: secret}
	}
	return out
}

func (s *Server) adminRegistries(c *call) error {
	return s.renderRegistries(c, http.StatusOK, map[string]any{"Form": registryForm{Type: endpoint.TypeDockerRegistry}})
}

func (s *Server) renderRegistries(c *call, st int, extra map[string]any) error {
	page := c.pageOf()
	list, total, err := s.svc.Replication.Registries(c.ctx, c.who, query.Query{}, page)
	if err != nil {
		return err
	}
	return s.renderAdmin(c, st, "registries", "Registries", withData(map[string]any{
		"Registries": list, "Pager": newPager(c.r.URL, page, total), "Types": endpoint.Types,
	}, extra))
}

func (s *Server) adminCreateRegistry(c *call) error {
	form, secret := readRegistryForm(c.r.PostForm)
	_, err := s.svc.Replication.CreateRegistry(c.ctx, c.who, form.registry(secret))
	if formError(err) {
		return s.renderRegistries(c, status(err), map[string]any{"Form": form, "FormError": err.Error()})
	}
	if err != nil {
		return err
	}
	c.flash("Registry " + form.Name + " created.")
	return c.redirect("/admin/registries")
}

// adminPingRegistry tests the new-registry form's endpoint without saving
// it (Harbor's /registries/ping), and shows the form again with the
// answer.
func (s *Server) adminPingRegistry(c *call) error {
	form, secret := readRegistryForm(c.r.PostForm)
	r := form.registry(secret)
	err := s.svc.Replication.PingRegistry(c.ctx, c.who, replication.RegistryPing{Type: &r.Type, URL: &r.URL,
		CredentialType: &r.Credential.Type, AccessKey: &r.Credential.AccessKey, AccessSecret: &r.Credential.AccessSecret,
		Insecure: &r.Insecure, CACertificate: &r.CACertificate})
	if refused(err) {
		return err
	}
	data := map[string]any{"Form": form, "Ping": pingResult(form.URL, err)}
	return s.renderRegistries(c, http.StatusOK, data)
}

// pingOutcome is a test's answer as the page shows it.
type pingOutcome struct {
	OK      bool
	Message string
}

// pingResult words a test of what: it works, or why not.
func pingResult(what string, err error) pingOutcome {
	if err != nil {
		return pingOutcome{Message: what + ": " + err.Error()}
	}
	return pingOutcome{OK: true, Message: what + ": the connection works."}
}

// adminChangeRegistry tests ("ping") or deletes a stored registry.
func (s *Server) adminChangeRegistry(c *call) error {
	id, err := c.pathID("id", "registry")
	if err != nil {
		return err
	}
	switch c.r.PostForm.Get("action") {
	case "ping":
		r, err := s.svc.Replication.Registry(c.ctx, c.who, id)
		if err != nil {
			return err
		}
		err = s.svc.Replication.PingRegistry(c.ctx, c.who, replication.RegistryPing{ID: &id})
		if refused(err) {
			return err
		}
		return s.renderRegistries(c, http.StatusOK, map[string]any{"Form": registryForm{Type: endpoint.TypeDockerRegistry}, "Ping": pingResult(r.Name, err)})
	case "delete":
		err := s.svc.Replication.DeleteRegistry(c.ctx, c.who, id)
		if formError(err) {
			c.flash("Could not delete the registry: " + err.Error())
			return c.redirect("/admin/registries")
		}
		if err != nil {
			return err
		}
		c.flash("Registry deleted.")
		return c.redirect("/admin/registries")
	}
	return notFound("no action " + c.r.PostForm.Get("action"))
}

// registryNames maps the registries' ids to names (0 is lading itself),
// for the replication pages; the list is the caller's to read.
func (s *Server) registryNames(c *call) ([]replication.Registry, map[int64]string, error) {
	list, _, err := s.svc.Replication.Registries(c.ctx, c.who, query.Query{}, query.Page{Number: 1, Size: 100})
	if err != nil {
		return nil, nil, err
	}
	names := map[int64]string{0: "this registry"}
	for _, r := range list {
		names[r.ID] = r.Name
	}
	return list, names, nil
}
