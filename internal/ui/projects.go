package ui

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/webhook"
)

func (s *Server) projectList(c *call) error {
	return s.renderProjects(c, http.StatusOK, "", project.Create{})
}

func (s *Server) renderProjects(c *call, st int, formErr string, form project.Create) error {
	v := c.r.URL.Query()
	search := strings.TrimSpace(v.Get("q"))
	q := query.Query{}
	if search != "" {
		q = q.WithFuzzy("name", search)
	}
	page := c.pageOf()
	list, total, err := s.svc.Projects.List(c.ctx, c.who, q, page)
	if err != nil {
		return err
	}
	mayCreate, err := s.svc.Projects.MayCreate(c.ctx, c.who)
	if err != nil {
		return err
	}
	upstreams, err := s.upstreamChoices(c)
	if err != nil {
		return err
	}
	return c.render(st, "projects", "Projects", map[string]any{
		"Projects": list, "Search": search, "Pager": newPager(c.r.URL, page, total),
		"MayCreate": mayCreate, "FormError": formErr, "Form": form, "Upstreams": upstreams,
	})
}

func (s *Server) createProject(c *call) error {
	f := c.r.PostForm
	public := f.Get("public") == "on"
	in := project.Create{Name: strings.TrimSpace(f.Get("name")), Public: &public}
	if lim := strings.TrimSpace(f.Get("storage_limit_gib")); lim != "" {
		n, err := strconv.ParseFloat(lim, 64)
		if err != nil || (n <= 0 && n != -1) {
			return s.renderProjects(c, http.StatusBadRequest, "The storage limit is a positive number of GiB, or -1 for no limit.", in)
		}
		b := int64(-1)
		if n > 0 {
			b = int64(n * (1 << 30))
		}
		in.StorageLimit = &b
	}
	reg, err := readUpstream(f.Get("registry_id"))
	if err == nil {
		in.RegistryID = reg
		var p project.Project
		if p, err = s.svc.Projects.Create(c.ctx, c.who, in); err == nil {
			c.flash("Project " + p.Name + " created.")
			return c.redirect("/projects/" + url.PathEscape(p.Name))
		}
	}
	if formError(err) {
		return s.renderProjects(c, status(err), err.Error(), in)
	}
	return err
}

// formError reports whether err is the user's to fix in the form.
func formError(err error) bool {
	return err != nil && (errdefs.IsInvalidArgument(err) || errors.Is(err, errdefs.ErrConflict) ||
		errors.Is(err, errdefs.ErrAlreadyExists) || errdefs.IsNotFound(err) || errors.Is(err, errdefs.ErrFailedPrecondition))
}

// projectView is what every tab of a project shows.
type projectView struct {
	Project project.Project
	Tab     string
	Perms   *perms
	// Tabs are the tabs the user may open.
	Tabs []tab
	Data any
	CSRF string
	// Upstream is a proxy-cache project's upstream registry.
	Upstream *upstream
}

type tab struct{ Name, Label string }

// projectTabs lists the tabs in order with what each needs.
var projectTabs = []struct {
	tab
	resource access.Resource
	action   access.Action
}{
	{tab{"summary", "Summary"}, access.Self, access.Read},
	{tab{"repositories", "Repositories"}, access.Repository, access.List},
	{tab{"members", "Members"}, access.Member, access.List},
	{tab{"robots", "Robot accounts"}, access.Robot, access.List},
	{tab{"policies", "Policies"}, access.Self, access.Read},
	{tab{"immutability", "Immutability"}, access.ImmutableTag, access.List},
	{tab{"retention", "Retention"}, access.TagRetention, access.Read},
	{tab{"labels", "Labels"}, access.Label, access.List},
	{tab{"webhooks", "Webhooks"}, access.NotificationPolicy, access.List},
	{tab{"logs", "Logs"}, access.Log, access.List},
}

func (s *Server) project(c *call) (projectView, error) {
	ref := project.Ref{Name: c.r.PathValue("project")}
	p, err := s.svc.Projects.Get(c.ctx, c.who, ref)
	if err != nil {
		return projectView{}, err
	}
	pv := projectView{Project: p, Perms: c.projectPerms(p.ID), CSRF: c.csrf}
	if pv.Upstream, err = s.upstreamOf(c, p); err != nil {
		return projectView{}, err
	}
	for _, t := range projectTabs {
		if t.Name == "webhooks" && s.svc.Webhooks == nil || !s.hasTab(t.Name) {
			continue
		}
		if pv.Perms.Can(string(t.resource), string(t.action)) {
			pv.Tabs = append(pv.Tabs, t.tab)
		}
	}
	return pv, nil
}

func (s *Server) projectTab(c *call) error {
	pv, err := s.project(c)
	if err != nil {
		return err
	}
	pv.Tab = c.r.PathValue("tab")
	if pv.Tab == "" {
		pv.Tab = "summary"
	}
	ref := project.Ref{ID: pv.Project.ID}
	page := c.pageOf()
	switch pv.Tab {
	case "summary":
		sum, err := s.svc.Projects.Summary(c.ctx, c.who, ref)
		if err != nil {
			return err
		}
		pv.Data = sum
	case "repositories":
		q := query.Query{}
		search := strings.TrimSpace(c.r.URL.Query().Get("q"))
		if search != "" {
			q = q.WithFuzzy("name", pv.Project.Name+"/"+search)
		}
		repos, total, err := s.svc.Artifacts.Repositories(c.ctx, c.who, ref, q, page)
		if err != nil {
			return err
		}
		pv.Data = map[string]any{"Repos": repos, "Search": search, "Pager": newPager(c.r.URL, page, total)}
	case "members":
		search := strings.TrimSpace(c.r.URL.Query().Get("q"))
		ms, total, err := s.svc.Projects.Members(c.ctx, c.who, ref, search, page)
		if err != nil {
			return err
		}
		pv.Data = map[string]any{"Members": ms, "Search": search, "Pager": newPager(c.r.URL, page, total), "Roles": roles()}
	case "robots":
		rs, total, err := s.svc.Identity.ListRobots(c.ctx, c.who, access.LevelProject, pv.Project.ID, query.Query{}, page)
		if err != nil {
			return err
		}
		pv.Data = map[string]any{"Robots": rs, "Pager": newPager(c.r.URL, page, total), "Secret": ""}
	case "policies":
		data, err := s.policiesData(c, pv.Project)
		if err != nil {
			return err
		}
		pv.Data = data
	case "webhooks":
		return s.webhookTab(c, &pv, "", webhook.Policy{})
	case "logs":
		q, err := auditQuery(c.r.URL.Query())
		if err != nil {
			return err
		}
		es, total, err := s.svc.Audit.List(c.ctx, c.who, pv.Project.ID, q, page)
		if err != nil {
			return err
		}
		pv.Data = map[string]any{"Entries": es, "Pager": newPager(c.r.URL, page, total), "Filter": c.r.URL.Query(), "Operations": operations}
	case "immutability", "retention", "labels":
		return s.lifecycleTab(c, &pv)
	default:
		return notFound("no tab " + pv.Tab)
	}
	return c.render(http.StatusOK, "project", pv.Project.Name, pv)
}

func (s *Server) deleteProject(c *call) error {
	ref := project.Ref{Name: c.r.PathValue("project")}
	if err := s.svc.Projects.Delete(c.ctx, c.who, ref); err != nil {
		if errors.Is(err, errdefs.ErrFailedPrecondition) {
			c.flash(err.Error())
			return c.redirect("/projects/" + url.PathEscape(ref.Name))
		}
		return err
	}
	c.flash("Project " + ref.Name + " deleted.")
	return c.redirect("/projects")
}

// policyKeys are the project metadata the policies tab edits: checkboxes,
// and the severity.
var policyKeys = []string{"auto_scan", "prevent_vul", "enable_content_trust", "enable_content_trust_cosign", "auto_sbom_generation"}

func (s *Server) updatePolicies(c *call) error {
	ref := project.Ref{Name: c.r.PathValue("project")}
	f := c.r.PostForm
	md := map[string]string{}
	for _, k := range policyKeys {
		md[k] = strconv.FormatBool(f.Get(k) == "on")
	}
	if f.Has("allowlist") {
		md["reuse_sys_cve_allowlist"] = strconv.FormatBool(f.Get("reuse_sys_cve_allowlist") == "on")
	}
	if sev := f.Get("severity"); sev != "" {
		md["severity"] = sev
	}
	public := f.Get("public") == "on"
	if err := s.svc.Projects.Update(c.ctx, c.who, ref, project.Update{Public: &public, Metadata: md}); err != nil {
		return err
	}
	if err := s.updateAllowlist(c, ref); err != nil {
		if !formError(err) {
			return err
		}
		c.flash("Policies saved; the CVE allowlist was not: " + err.Error())
		return c.redirect("/projects/" + url.PathEscape(ref.Name) + "/policies")
	}
	c.flash("Policies saved.")
	return c.redirect("/projects/" + url.PathEscape(ref.Name) + "/policies")
}

type roleOption struct {
	ID   int
	Name string
}

// roles are the project roles, as the member forms offer them.
func roles() []roleOption {
	return []roleOption{{1, "Project admin"}, {4, "Maintainer"}, {2, "Developer"}, {3, "Guest"}, {5, "Limited guest"}}
}

// roleName is a role's label.
func roleName(r access.Role) string {
	for _, o := range roles() {
		if o.ID == int(r) {
			return o.Name
		}
	}
	return r.Name()
}

func (s *Server) addMember(c *call) error {
	ref := project.Ref{Name: c.r.PathValue("project")}
	f := c.r.PostForm
	role, _ := strconv.Atoi(f.Get("role"))
	mc := project.MemberCreate{Role: access.Role(role)}
	name := strings.TrimSpace(f.Get("name"))
	switch f.Get("kind") {
	case "ldap-group":
		mc.LdapGroupDN = name
	case "group":
		mc.GroupName = name
	default:
		mc.Username = name
	}
	_, err := s.svc.Projects.AddMember(c.ctx, c.who, ref, mc)
	if formError(err) {
		c.flash("Could not add " + name + ": " + err.Error())
	} else if err != nil {
		return err
	} else {
		c.flash(name + " added as " + roleName(mc.Role) + ".")
	}
	return c.redirect("/projects/" + url.PathEscape(ref.Name) + "/members")
}

func (s *Server) changeMember(c *call) error {
	ref := project.Ref{Name: c.r.PathValue("project")}
	id, err := strconv.ParseInt(c.r.PathValue("mid"), 10, 64)
	if err != nil {
		return notFound("no member " + c.r.PathValue("mid"))
	}
	if c.r.PostForm.Get("action") == "remove" {
		err = s.svc.Projects.RemoveMember(c.ctx, c.who, ref, id)
	} else {
		role, _ := strconv.Atoi(c.r.PostForm.Get("role"))
		err = s.svc.Projects.SetMemberRole(c.ctx, c.who, ref, id, access.Role(role))
	}
	if err != nil {
		return err
	}
	c.flash("Members updated.")
	return c.redirect("/projects/" + url.PathEscape(ref.Name) + "/members")
}

// robotPolicies are the permissions a project robot created in the UI may
// be given, as checkboxes: Harbor's common choices.
var robotPolicies = []struct {
	Key, Label string
	access.Policy
}{
	{"pull", "Pull", access.Policy{Resource: access.Repository, Action: access.Pull}},
	{"push", "Push", access.Policy{Resource: access.Repository, Action: access.Push}},
	{"delete-artifact", "Delete artifacts", access.Policy{Resource: access.Artifact, Action: access.Delete}},
	{"read-artifact", "Read artifacts", access.Policy{Resource: access.Artifact, Action: access.Read}},
	{"list-artifact", "List artifacts", access.Policy{Resource: access.Artifact, Action: access.List}},
	{"create-tag", "Create tags", access.Policy{Resource: access.Tag, Action: access.Create}},
	{"scan", "Scan", access.Policy{Resource: access.Scan, Action: access.Create}},
}

func robotForm(f url.Values, level, namespace string) (identity.RobotCreate, error) {
	days, err := strconv.ParseInt(strings.TrimSpace(f.Get("duration")), 10, 64)
	if err != nil {
		return identity.RobotCreate{}, errdefs.InvalidArgument(errors.New("the lifetime is a number of days (-1: never expires)"))
	}
	perm := access.Permission{Kind: access.LevelProject, Namespace: namespace}
	for _, p := range robotPolicies {
		if f.Get(p.Key) == "on" {
			perm.Access = append(perm.Access, p.Policy)
		}
	}
	return identity.RobotCreate{Name: strings.TrimSpace(f.Get("name")), Description: f.Get("description"), Level: level,
		Duration: days, Permissions: []access.Permission{perm}}, nil
}

func (s *Server) createProjectRobot(c *call) error {
	pv, err := s.project(c)
	if err != nil {
		return err
	}
	rc, err := robotForm(c.r.PostForm, access.LevelProject, pv.Project.Name)
	var r identity.Robot
	var secret string
	if err == nil {
		r, secret, err = s.svc.Identity.CreateRobot(c.ctx, c.who, rc)
	}
	if err != nil && !formError(err) {
		return err
	}
	pv.Tab = "robots"
	page := query.Page{Number: 1, Size: pageSize}
	rs, total, lerr := s.svc.Identity.ListRobots(c.ctx, c.who, access.LevelProject, pv.Project.ID, query.Query{}, page)
	if lerr != nil {
		return lerr
	}
	data := map[string]any{"Robots": rs, "Pager": newPager(c.r.URL, page, total)}
	st := http.StatusOK
	if err != nil {
		data["FormError"], st = err.Error(), status(err)
	} else {
		// The secret is shown once, on this response only.
		data["Created"], data["Secret"] = r.Name, secret
	}
	pv.Data = data
	return c.render(st, "project", pv.Project.Name, pv)
}

func (s *Server) deleteRobot(c *call) error {
	id, err := strconv.ParseInt(c.r.PathValue("rid"), 10, 64)
	if err != nil {
		return notFound("no robot " + c.r.PathValue("rid"))
	}
	if err := s.svc.Identity.DeleteRobot(c.ctx, c.who, id); err != nil {
		return err
	}
	c.flash("Robot account deleted.")
	if p := c.r.PathValue("project"); p != "" {
		return c.redirect("/projects/" + url.PathEscape(p) + "/robots")
	}
	return c.redirect("/admin/robots")
}

// operations are the audit log's operations, for the filter.
var operations = []string{"create", "update", "delete", "pull", "login", "logout"}

// auditQuery reads the audit filters: operation, resource type, user,
// resource (part of), from/to dates.
func auditQuery(v url.Values) (query.Query, error) {
	q := query.Query{}
	if op := v.Get("operation"); op != "" {
		q = q.With("operation", op)
	}
	if rt := strings.TrimSpace(v.Get("resource_type")); rt != "" {
		q = q.With("resource_type", rt)
	}
	if u := strings.TrimSpace(v.Get("username")); u != "" {
		q = q.WithFuzzy("username", u)
	}
	if r := strings.TrimSpace(v.Get("resource")); r != "" {
		q = q.WithFuzzy("resource", r)
	}
	from, to := v.Get("from"), v.Get("to")
	if from != "" || to != "" {
		lo, hi := "1970-01-01", "2999-12-31"
		for _, d := range []struct {
			in  string
			out *string
		}{{from, &lo}, {to, &hi}} {
			if d.in == "" {
				continue
			}
			if _, err := time.Parse(time.DateOnly, d.in); err != nil {
				return q, errdefs.InvalidArgument(fmt.Errorf("date %.20q: want YYYY-MM-DD", d.in))
			}
			*d.out = d.in
		}
		rq, err := query.Parse("op_time=["+lo+"T00:00:00~"+hi+"T23:59:59]", "")
		if err != nil {
			return q, err
		}
		q.Conds = append(q.Conds, rq.Conds...)
	}
	return q, nil
}
