package ui

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/config"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/query"
)

// adminPages are the Administration menu's entries; a page whose service
// the server lacks is left out (adminAvailable).
var adminPages = []tab{
	{"users", "Users"},
	{"groups", "Groups"},
	{"robots", "Robot accounts"},
	{"registries", "Registries"},
	{"replication", "Replication"},
	{"interrogation", "Interrogation services"},
	{"gc", "Garbage collection"},
	{"configuration", "Configuration"},
	{"audit", "Audit log"},
	{"jobs", "Job service"},
}

func (s *Server) renderAdmin(c *call, st int, page, title string, data map[string]any) error {
	pages := slices.DeleteFunc(slices.Clone(adminPages), func(t tab) bool { return !s.adminAvailable(t.Name) })
	data["Page"], data["Pages"] = page, pages
	return c.render(st, "admin", title, data)
}

func (s *Server) adminUsers(c *call) error { return s.renderUsers(c, http.StatusOK, "") }

func (s *Server) renderUsers(c *call, st int, formErr string) error {
	search := strings.TrimSpace(c.r.URL.Query().Get("q"))
	q := query.Query{}
	if search != "" {
		q = q.WithFuzzy("username", search)
	}
	page := c.pageOf()
	users, total, err := s.svc.Identity.ListUsers(c.ctx, c.who, q, page)
	if err != nil {
		return err
	}
	return s.renderAdmin(c, st, "users", "Users", map[string]any{
		"Users": users, "Search": search, "Pager": newPager(c.r.URL, page, total), "FormError": formErr, "Me": c.who.ID,
	})
}

func (s *Server) adminCreateUser(c *call) error {
	f := c.r.PostForm
	u, err := s.svc.Identity.CreateUser(c.ctx, c.who, identity.UserCreate{Username: strings.TrimSpace(f.Get("username")),
		Email: strings.TrimSpace(f.Get("email")), Realname: f.Get("realname"), Comment: f.Get("comment"), Password: f.Get("password")})
	if formError(err) {
		return s.renderUsers(c, status(err), err.Error())
	}
	if err != nil {
		return err
	}
	c.flash("User " + u.Username + " created.")
	return c.redirect("/admin/users")
}

func (s *Server) adminChangeUser(c *call) error {
	id, err := strconv.ParseInt(c.r.PathValue("uid"), 10, 64)
	if err != nil {
		return notFound("no user " + c.r.PathValue("uid"))
	}
	f := c.r.PostForm
	var msg string
	switch f.Get("action") {
	case "admin":
		err, msg = s.svc.Identity.SetSysAdmin(c.ctx, c.who, id, true), "Administrator rights granted."
	case "unadmin":
		err, msg = s.svc.Identity.SetSysAdmin(c.ctx, c.who, id, false), "Administrator rights revoked."
	case "delete":
		err, msg = s.svc.Identity.DeleteUser(c.ctx, c.who, id), "User deleted."
	case "password":
		err, msg = s.svc.Identity.SetPassword(c.ctx, c.who, id, "", f.Get("password")), "Password reset."
	default:
		return notFound("no action " + f.Get("action"))
	}
	if formError(err) {
		return s.renderUsers(c, status(err), err.Error())
	}
	if err != nil {
		return err
	}
	c.flash(msg)
	return c.redirect("/admin/users")
}

func (s *Server) adminRobots(c *call) error { return s.renderRobots(c, http.StatusOK, nil) }

func (s *Server) renderRobots(c *call, st int, extra map[string]any) error {
	page := c.pageOf()
	rs, total, err := s.svc.Identity.ListRobots(c.ctx, c.who, access.LevelSystem, 0, query.Query{}, page)
	if err != nil {
		return err
	}
	data := map[string]any{"Robots": rs, "Pager": newPager(c.r.URL, page, total)}
	for k, v := range extra {
		data[k] = v
	}
	return s.renderAdmin(c, st, "robots", "Robot accounts", data)
}

func (s *Server) adminCreateRobot(c *call) error {
	ns := strings.TrimSpace(c.r.PostForm.Get("namespace"))
	if ns == "" {
		ns = "*"
	}
	rc, err := robotForm(c.r.PostForm, access.LevelSystem, ns)
	var r identity.Robot
	var secret string
	if err == nil {
		r, secret, err = s.svc.Identity.CreateRobot(c.ctx, c.who, rc)
	}
	if formError(err) {
		return s.renderRobots(c, status(err), map[string]any{"FormError": err.Error()})
	}
	if err != nil {
		return err
	}
	return s.renderRobots(c, http.StatusOK, map[string]any{"Created": r.Name, "Secret": secret})
}

// configGroups are the settings the configuration page edits, in groups.
var configGroups = []struct {
	Name string
	Keys []string
}{
	{"Authentication", []string{"auth_mode", "primary_auth_mode", "self_registration"}},
	{"LDAP", []string{"ldap_url", "ldap_search_dn", "ldap_search_password", "ldap_base_dn", "ldap_filter", "ldap_uid", "ldap_scope",
		"ldap_timeout", "ldap_verify_cert", "ldap_group_base_dn", "ldap_group_search_filter", "ldap_group_attribute_name",
		"ldap_group_search_scope", "ldap_group_admin_dn", "ldap_group_membership_attribute"}},
	{"OIDC", []string{"oidc_name", "oidc_endpoint", "oidc_client_id", "oidc_client_secret", "oidc_groups_claim", "oidc_admin_group",
		"oidc_group_filter", "oidc_scope", "oidc_user_claim", "oidc_verify_cert", "oidc_auto_onboard", "oidc_logout"}},
	{"System", []string{"project_creation_restriction", "read_only", "storage_per_project", "quota_per_project_enable",
		"token_expiration", "robot_token_duration", "robot_name_prefix", "session_timeout", "banner_message", "notification_enable"}},
	{"Audit log", []string{"audit_log_forward_endpoint", "skip_audit_log_database", "disabled_audit_log_event_types", "audit_log_retention_hour"}},
}

// configField is one setting in the form.
type configField struct {
	Name     string
	Kind     string // text, number, bool, secret
	Value    string
	Checked  bool
	Editable bool
}

func (s *Server) adminConfig(c *call) error { return s.renderConfig(c, http.StatusOK, "") }

func (s *Server) renderConfig(c *call, st int, formErr string) error {
	return s.renderConfigWith(c, st, formErr, nil)
}

func (s *Server) renderConfigWith(c *call, st int, formErr string, extra map[string]any) error {
	items, err := s.svc.Settings.List(c.ctx, c.who)
	if err != nil {
		return err
	}
	type group struct {
		Name   string
		Fields []configField
	}
	var groups []group
	for _, g := range configGroups {
		gr := group{Name: g.Name}
		for _, name := range g.Keys {
			k, ok := keyOf(name)
			if !ok {
				continue
			}
			f := configField{Name: name, Kind: "text", Editable: !k.ReadOnly}
			if it, ok := items[name]; ok {
				f.Value, f.Editable = fmt.Sprint(it.Value), it.Editable
				if b, ok := it.Value.(bool); ok {
					f.Checked = b
				}
			}
			switch {
			case k.Secret:
				f.Kind, f.Value = "secret", ""
			case k.Kind == config.Bool:
				f.Kind = "bool"
			case k.Kind == config.Int:
				f.Kind = "number"
			}
			gr.Fields = append(gr.Fields, f)
		}
		groups = append(groups, gr)
	}
	return s.renderAdmin(c, st, "configuration", "Configuration", withData(map[string]any{"Groups": groups, "FormError": formErr,
		"LDAPTest": s.svc.LDAP != nil}, extra))
}

func keyOf(name string) (config.Key, bool) {
	i := slices.IndexFunc(config.Keys, func(k config.Key) bool { return k.Name == name })
	if i < 0 {
		return config.Key{}, false
	}
	return config.Keys[i], true
}

// adminUpdateConfig sends the settings the form changed (config.Store
// decides what is valid and editable); secrets left empty stay as they
// are.
func (s *Server) adminUpdateConfig(c *call) error {
	items, err := s.svc.Settings.List(c.ctx, c.who)
	if err != nil {
		return err
	}
	f := c.r.PostForm
	changes := map[string]any{}
	for _, g := range configGroups {
		for _, name := range g.Keys {
			k, ok := keyOf(name)
			it, listed := items[name]
			if !ok || (listed && !it.Editable) || (!listed && !k.Secret) {
				continue
			}
			if k.Kind == config.Bool {
				if _, shown := f["has_"+name]; !shown {
					continue
				}
				v := f.Get(name) == "on"
				if b, _ := it.Value.(bool); b != v {
					changes[name] = v
				}
				continue
			}
			if _, sent := f[name]; !sent {
				continue
			}
			raw := f.Get(name)
			if k.Secret {
				if raw != "" {
					changes[name] = raw
				}
				continue
			}
			if raw == fmt.Sprint(it.Value) {
				continue
			}
			changes[name] = strings.TrimSpace(raw) // the store reads numbers from text
		}
	}
	if err := s.svc.Settings.Update(c.ctx, c.who, changes); err != nil {
		if errdefs.IsInvalidArgument(err) {
			return s.renderConfig(c, http.StatusBadRequest, err.Error())
		}
		return err
	}
	c.flash(fmt.Sprintf("Configuration saved (%d changed).", len(changes)))
	return c.redirect("/admin/configuration")
}

func (s *Server) adminAudit(c *call) error {
	q, err := auditQuery(c.r.URL.Query())
	if err != nil {
		return err
	}
	page := c.pageOf()
	es, total, err := s.svc.Audit.List(c.ctx, c.who, 0, q, page)
	if err != nil {
		return err
	}
	return s.renderAdmin(c, http.StatusOK, "audit", "Audit log", map[string]any{
		"Entries": es, "Pager": newPager(c.r.URL, page, total), "Filter": c.r.URL.Query(), "Operations": operations,
	})
}

func (s *Server) profile(c *call) error { return s.renderProfile(c, http.StatusOK, "") }

func (s *Server) renderProfile(c *call, st int, formErr string) error {
	u, err := s.svc.Identity.CurrentUser(c.ctx, c.who)
	if err != nil {
		return err
	}
	data := map[string]any{"U": u, "FormError": formErr}
	if s.svc.OIDC != nil {
		m, ok, err := s.svc.OIDC.MetaOf(c.ctx, c.who, c.who.ID)
		if err != nil {
			return err
		}
		if ok {
			data["OIDC"] = m
		}
	}
	return c.render(st, "profile", "Your profile", data)
}

func (s *Server) updateProfile(c *call) error {
	f := c.r.PostForm
	err := s.svc.Identity.UpdateProfile(c.ctx, c.who, c.who.ID, identity.Profile{Email: strings.TrimSpace(f.Get("email")), Realname: f.Get("realname"), Comment: f.Get("comment")})
	if formError(err) {
		return s.renderProfile(c, status(err), err.Error())
	}
	if err != nil {
		return err
	}
	c.flash("Profile saved.")
	return c.redirect("/profile")
}

// changePassword changes one's own password; the service ends every
// session of the user, so they log in again.
func (s *Server) changePassword(c *call) error {
	f := c.r.PostForm
	if f.Get("new") != f.Get("confirm") {
		return s.renderProfile(c, http.StatusBadRequest, "The new passwords differ.")
	}
	err := s.svc.Identity.SetPassword(c.ctx, c.who, c.who.ID, f.Get("old"), f.Get("new"))
	if formError(err) || errors.Is(err, errdefs.ErrDenied) {
		return s.renderProfile(c, status(err), err.Error())
	}
	if err != nil {
		return err
	}
	c.flash("Password changed; log in with the new one.")
	return c.redirect("/login")
}
