package ui

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/identity/ldap"
	"github.com/lading-dev/lading/internal/query"
)

// User groups (Harbor's "Groups" page, /usergroups), the configuration
// page's LDAP test (/ldap/ping) and the OIDC CLI secret of one's profile
// (/users/{id}/cli_secret).

var groupTypes = map[int]string{identity.GroupLDAP: "LDAP", identity.GroupHTTP: "HTTP", identity.GroupOIDC: "OIDC"}

func (s *Server) adminGroups(c *call) error { return s.renderGroups(c, http.StatusOK, nil) }

func (s *Server) renderGroups(c *call, st int, extra map[string]any) error {
	page := c.pageOf()
	list, total, err := s.svc.Identity.ListGroups(c.ctx, c.who, groupQuery(c), page)
	if err != nil {
		return err
	}
	return s.renderAdmin(c, st, "groups", "Groups", withData(map[string]any{
		"Groups": list, "Pager": newPager(c.r.URL, page, total), "Types": groupTypes,
		"Search": c.r.URL.Query().Get("q"), "Form": map[string]string{"type": strconv.Itoa(identity.GroupLDAP)},
	}, extra))
}

func (s *Server) adminCreateGroup(c *call) error {
	f := c.r.PostForm
	typ, _ := strconv.Atoi(f.Get("type"))
	gc := identity.GroupCreate{Name: strings.TrimSpace(f.Get("name")), Type: typ, LdapDN: strings.TrimSpace(f.Get("ldap_dn"))}
	g, err := s.svc.Identity.CreateGroup(c.ctx, c.who, gc)
	if formError(err) {
		return s.renderGroups(c, status(err), map[string]any{"FormError": err.Error(),
			"Form": map[string]string{"name": gc.Name, "type": f.Get("type"), "ldap_dn": gc.LdapDN}})
	}
	if err != nil {
		return err
	}
	c.flash("Group " + g.Name + " created.")
	return c.redirect("/admin/groups")
}

func (s *Server) adminDeleteGroup(c *call) error {
	id, err := c.pathID("gid", "group")
	if err != nil {
		return err
	}
	if err := s.svc.Identity.DeleteGroup(c.ctx, c.who, id); err != nil {
		return err
	}
	c.flash("Group deleted.")
	return c.redirect("/admin/groups")
}

// adminLDAPPing tests the LDAP settings the configuration form holds,
// the stored search password standing in for an empty one (the service
// sends it only to the stored server), and shows the configuration page
// with the answer.
func (s *Server) adminLDAPPing(c *call) error {
	if s.svc.LDAP == nil {
		return notFound("no LDAP in this server")
	}
	f := c.r.PostForm
	err := s.svc.LDAP.Ping(c.ctx, c.who, func(cfg *ldap.Config) {
		for name, dst := range map[string]*string{"ldap_url": &cfg.URL, "ldap_search_dn": &cfg.SearchDN, "ldap_search_password": &cfg.SearchPassword,
			"ldap_base_dn": &cfg.BaseDN, "ldap_filter": &cfg.Filter, "ldap_uid": &cfg.UID} {
			if _, sent := f[name]; sent {
				*dst = strings.TrimSpace(f.Get(name))
			}
		}
		if n, err := strconv.Atoi(strings.TrimSpace(f.Get("ldap_scope"))); err == nil {
			cfg.Scope = n
		}
		if _, shown := f["has_ldap_verify_cert"]; shown {
			cfg.VerifyCert = f.Get("ldap_verify_cert") == "on"
		}
	})
	if errdefs.IsUnauthorized(err) || errors.Is(err, errdefs.ErrDenied) {
		return err
	}
	ok, msg := ldap.PingMessage(err)
	if ok {
		msg = "The LDAP server answered and the search DN could bind and search."
	}
	return s.renderConfigWith(c, http.StatusOK, "", map[string]any{"LDAPPing": pingOutcome{OK: ok, Message: msg}})
}

// regenerateCLISecret gives the OIDC user a new random CLI secret; the
// profile shows it.
func (s *Server) regenerateCLISecret(c *call) error {
	if s.svc.OIDC == nil {
		return notFound("no OIDC in this server")
	}
	err := s.svc.OIDC.SetCLISecret(c.ctx, c.who, c.who.ID, "")
	if formError(err) {
		return s.renderProfile(c, status(err), err.Error())
	}
	if err != nil {
		return err
	}
	c.flash("A new CLI secret was made; the old one no longer works.")
	return c.redirect("/profile")
}

func groupQuery(c *call) query.Query {
	q := query.Query{}
	if name := strings.TrimSpace(c.r.URL.Query().Get("q")); name != "" {
		q = q.WithFuzzy("group_name", name)
	}
	return q
}
