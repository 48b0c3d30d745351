package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
)

func projectRefID(id int64) project.Ref { return project.Ref{ID: id} }

func projectRefString(s string) project.Ref { return project.ParseRef(s, false) }

// projectJSON is Harbor's Project.
type projectJSON struct {
	ProjectID          int64             `json:"project_id"`
	OwnerID            int64             `json:"owner_id"`
	Name               string            `json:"name"`
	CreationTime       time.Time         `json:"creation_time"`
	UpdateTime         time.Time         `json:"update_time"`
	Deleted            bool              `json:"deleted"`
	OwnerName          string            `json:"owner_name"`
	Togglable          bool              `json:"togglable"`
	CurrentUserRoleID  int               `json:"current_user_role_id"`
	CurrentUserRoleIDs []int             `json:"current_user_role_ids"`
	RepoCount          int64             `json:"repo_count"`
	Metadata           map[string]string `json:"metadata"`
	CVEAllowlist       allowlistJSON     `json:"cve_allowlist"`
	RegistryID         int64             `json:"registry_id,omitempty"`
}

// highest is Harbor's current_user_role_id: the most powerful role.
func highest(roles []access.Role) int {
	power := map[access.Role]int{access.ProjectAdmin: 50, access.Maintainer: 40, access.Developer: 30, access.Guest: 20, access.LimitedGuest: 10}
	best := 0
	for _, r := range roles {
		if power[r] > power[access.Role(best)] {
			best = int(r)
		}
	}
	return best
}

func toProject(p project.Project) projectJSON {
	roles := []int{}
	for _, r := range p.Roles {
		roles = append(roles, int(r))
	}
	return projectJSON{
		ProjectID: p.ID, OwnerID: p.OwnerID, Name: p.Name, CreationTime: p.Created.UTC(), UpdateTime: p.Updated.UTC(),
		OwnerName: p.OwnerName, CurrentUserRoleID: highest(p.Roles), CurrentUserRoleIDs: roles, RepoCount: p.RepoCount,
		Metadata: p.Metadata, CVEAllowlist: allowlistJSON{ProjectID: p.ID, Items: []allowlistItemJSON{}, CreationTime: p.Created.UTC(), UpdateTime: p.Updated.UTC()},
		RegistryID: p.RegistryID,
	}
}

// withAllowlist fills a project's CVE allowlist, which scanning keeps.
func (s *Server) withAllowlist(c *call, p *projectJSON) error {
	if s.scans == nil {
		return nil
	}
	l, err := s.scans.ProjectAllowlist(c.ctx, p.ProjectID)
	if err != nil {
		return err
	}
	l.ProjectID = p.ProjectID
	if l.ID == 0 {
		l.Created, l.Updated = p.CreationTime, p.UpdateTime
	}
	p.CVEAllowlist = toAllowlist(l)
	return nil
}

// setAllowlist sets a project's CVE allowlist when the request has one.
func (s *Server) setAllowlist(c *call, id int64, l *allowlistJSON) error {
	if l == nil {
		return nil
	}
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	return sc.SetProjectAllowlist(c.ctx, c.who, id, fromAllowlist(*l))
}

// projectReq is Harbor's ProjectReq.
type projectReq struct {
	ProjectName  string            `json:"project_name"`
	Public       *bool             `json:"public"`
	Metadata     map[string]string `json:"metadata"`
	StorageLimit *int64            `json:"storage_limit"`
	RegistryID   *int64            `json:"registry_id"`
	CVEAllowlist *allowlistJSON    `json:"cve_allowlist"`
}

func (s *Server) listProjects(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	v := c.r.URL.Query()
	if name := v.Get("name"); name != "" {
		q = q.WithFuzzy("name", name)
	}
	if owner := v.Get("owner"); owner != "" {
		q = q.With("owner", owner)
	}
	if pub := v.Get("public"); pub != "" {
		b, err := strconv.ParseBool(pub)
		if err != nil {
			return errdefs.InvalidArgument(err)
		}
		q = q.With("public", b)
	}
	list, total, err := s.svc.Projects.List(c.ctx, c.who, q, page)
	if err != nil {
		return err
	}
	out := make([]projectJSON, len(list))
	for i, p := range list {
		out[i] = toProject(p)
		if err := s.withAllowlist(c, &out[i]); err != nil {
			return err
		}
	}
	return c.list(page, total, out)
}

func (s *Server) headProject(c *call) error {
	name := c.r.URL.Query().Get("project_name")
	if name == "" {
		return errdefs.InvalidArgument(errdefsMsg("project_name is required"))
	}
	if err := s.svc.Projects.Exists(c.ctx, c.who, name); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) createProject(c *call) error {
	var req projectReq
	if err := c.decode(&req); err != nil {
		return err
	}
	var registryID int64
	if req.RegistryID != nil {
		if *req.RegistryID <= 0 {
			return errdefs.InvalidArgument(fmt.Errorf("%d is invalid value of registry_id, it should be geater than 0", *req.RegistryID))
		}
		registryID = *req.RegistryID
	}
	p, err := s.svc.Projects.Create(c.ctx, c.who, project.Create{Name: req.ProjectName, Public: req.Public, Metadata: req.Metadata, StorageLimit: req.StorageLimit, RegistryID: registryID})
	if err != nil {
		return err
	}
	if err := s.setAllowlist(c, p.ID, req.CVEAllowlist); err != nil {
		return err
	}
	if c.r.Header.Get("X-Resource-Name-In-Location") == "true" {
		return c.created(p.Name)
	}
	return c.created(strconv.FormatInt(p.ID, 10))
}

func (s *Server) getProject(c *call) error {
	p, err := s.svc.Projects.Get(c.ctx, c.who, c.projectRef("project_name_or_id"))
	if err != nil {
		return err
	}
	out := toProject(p)
	if err := s.withAllowlist(c, &out); err != nil {
		return err
	}
	return c.json(http.StatusOK, out)
}

func (s *Server) updateProject(c *call) error {
	var req projectReq
	if err := c.decode(&req); err != nil {
		return err
	}
	ref := c.projectRef("project_name_or_id")
	if err := s.svc.Projects.Update(c.ctx, c.who, ref, project.Update{Public: req.Public, Metadata: req.Metadata}); err != nil {
		return err
	}
	if req.CVEAllowlist != nil {
		p, err := s.svc.Projects.Get(c.ctx, c.who, ref)
		if err != nil {
			return err
		}
		if err := s.setAllowlist(c, p.ID, req.CVEAllowlist); err != nil {
			return err
		}
	}
	return c.ok()
}

func (s *Server) deleteProject(c *call) error {
	if err := s.svc.Projects.Delete(c.ctx, c.who, c.projectRef("project_name_or_id")); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) projectDeletable(c *call) error {
	ok, msg, err := s.svc.Projects.Deletable(c.ctx, c.who, c.projectRef("project_name_or_id"))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, map[string]any{"deletable": ok, "message": msg})
}

func (s *Server) projectSummary(c *call) error {
	sum, err := s.svc.Projects.Summary(c.ctx, c.who, c.projectRef("project_name_or_id"))
	if err != nil {
		return err
	}
	out := map[string]any{"repo_count": sum.RepoCount}
	if sum.Members {
		out["project_admin_count"] = sum.ProjectAdmins
		out["maintainer_count"] = sum.Maintainers
		out["developer_count"] = sum.Developers
		out["guest_count"] = sum.Guests
		out["limited_guest_count"] = sum.LimitedGuests
	}
	if sum.Quota != nil {
		out["quota"] = map[string]any{"hard": map[string]int64{"storage": sum.Quota.Hard}, "used": map[string]int64{"storage": sum.Quota.Used}}
	}
	return c.json(http.StatusOK, out)
}

// memberJSON is Harbor's ProjectMemberEntity.
type memberJSON struct {
	ID         int64  `json:"id"`
	ProjectID  int64  `json:"project_id"`
	EntityName string `json:"entity_name"`
	RoleName   string `json:"role_name"`
	RoleID     int    `json:"role_id"`
	EntityID   int64  `json:"entity_id"`
	EntityType string `json:"entity_type"`
}

func toMember(m project.Member) memberJSON {
	return memberJSON{ID: m.ID, ProjectID: m.ProjectID, EntityName: m.EntityName, RoleName: m.Role.Name(), RoleID: int(m.Role), EntityID: m.EntityID, EntityType: m.EntityType}
}

func (s *Server) listMembers(c *call) error {
	page, err := c.page()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Projects.Members(c.ctx, c.who, c.projectRef("project_name_or_id"), c.r.URL.Query().Get("entityname"), page)
	if err != nil {
		return err
	}
	out := make([]memberJSON, len(list))
	for i, m := range list {
		out[i] = toMember(m)
	}
	return c.list(page, total, out)
}

func (s *Server) createMember(c *call) error {
	var req struct {
		RoleID     int `json:"role_id"`
		MemberUser *struct {
			UserID   int64  `json:"user_id"`
			Username string `json:"username"`
		} `json:"member_user"`
		MemberGroup *struct {
			ID          int64  `json:"id"`
			GroupName   string `json:"group_name"`
			GroupType   int    `json:"group_type"`
			LdapGroupDN string `json:"ldap_group_dn"`
		} `json:"member_group"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	mc := project.MemberCreate{Role: access.Role(req.RoleID)}
	if u := req.MemberUser; u != nil {
		mc.UserID, mc.Username = u.UserID, u.Username
	} else if g := req.MemberGroup; g != nil {
		mc.GroupID, mc.GroupName, mc.GroupType, mc.LdapGroupDN = g.ID, g.GroupName, g.GroupType, g.LdapGroupDN
	}
	m, err := s.svc.Projects.AddMember(c.ctx, c.who, c.projectRef("project_name_or_id"), mc)
	if err != nil {
		return err
	}
	return c.created(strconv.FormatInt(m.ID, 10))
}

func (s *Server) getMember(c *call) error {
	id, err := c.id("mid")
	if err != nil {
		return err
	}
	m, err := s.svc.Projects.Member(c.ctx, c.who, c.projectRef("project_name_or_id"), id)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toMember(m))
}

func (s *Server) updateMember(c *call) error {
	id, err := c.id("mid")
	if err != nil {
		return err
	}
	var req struct {
		RoleID int `json:"role_id"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := s.svc.Projects.SetMemberRole(c.ctx, c.who, c.projectRef("project_name_or_id"), id, access.Role(req.RoleID)); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) deleteMember(c *call) error {
	id, err := c.id("mid")
	if err != nil {
		return err
	}
	if err := s.svc.Projects.RemoveMember(c.ctx, c.who, c.projectRef("project_name_or_id"), id); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) listMetadata(c *call) error {
	md, err := s.svc.Projects.Metadata(c.ctx, c.who, c.projectRef("project_name_or_id"), "")
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, md)
}

func (s *Server) getMetadata(c *call) error {
	md, err := s.svc.Projects.Metadata(c.ctx, c.who, c.projectRef("project_name_or_id"), c.r.PathValue("meta_name"))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, md)
}

func (s *Server) addMetadata(c *call) error {
	var md map[string]string
	if err := c.decode(&md); err != nil {
		return err
	}
	if err := s.svc.Projects.SetMetadata(c.ctx, c.who, c.projectRef("project_name_or_id"), md, access.Create); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) updateMetadata(c *call) error {
	var md map[string]string
	if err := c.decode(&md); err != nil {
		return err
	}
	name := c.r.PathValue("meta_name")
	if _, ok := md[name]; !ok || len(md) != 1 {
		return errdefs.InvalidArgument(errdefsMsg("the body must hold exactly the metadata named in the path"))
	}
	if err := s.svc.Projects.SetMetadata(c.ctx, c.who, c.projectRef("project_name_or_id"), md, access.Update); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) deleteMetadata(c *call) error {
	if err := s.svc.Projects.DeleteMetadata(c.ctx, c.who, c.projectRef("project_name_or_id"), c.r.PathValue("meta_name")); err != nil {
		return err
	}
	return c.ok()
}

// quotaJSON is Harbor's Quota.
type quotaJSON struct {
	ID           int64            `json:"id"`
	Ref          map[string]any   `json:"ref"`
	Hard         map[string]int64 `json:"hard"`
	Used         map[string]int64 `json:"used"`
	CreationTime time.Time        `json:"creation_time"`
	UpdateTime   time.Time        `json:"update_time"`
}

func toQuota(q project.Quota) quotaJSON {
	return quotaJSON{ID: q.ProjectID, Ref: map[string]any{"id": q.ProjectID, "name": q.ProjectName, "owner_name": q.OwnerName},
		Hard: map[string]int64{"storage": q.Hard}, Used: map[string]int64{"storage": q.Used}, CreationTime: q.Created.UTC(), UpdateTime: q.Updated.UTC()}
}

func (s *Server) listQuotas(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	if id := c.r.URL.Query().Get("reference_id"); id != "" {
		q = q.With("reference_id", id)
	}
	list, total, err := s.svc.Projects.Quotas(c.ctx, c.who, q, page)
	if err != nil {
		return err
	}
	out := make([]quotaJSON, len(list))
	for i, x := range list {
		out[i] = toQuota(x)
	}
	return c.list(page, total, out)
}

func (s *Server) getQuota(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	q, err := s.svc.Projects.Quota(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toQuota(q))
}

func (s *Server) updateQuota(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	var req struct {
		Hard map[string]int64 `json:"hard"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	limit, ok := req.Hard["storage"]
	if !ok {
		return errdefs.InvalidArgument(errdefsMsg("hard.storage is required"))
	}
	if err := s.svc.Projects.SetQuota(c.ctx, c.who, id, limit); err != nil {
		return err
	}
	return c.ok()
}

var _ = query.Page{}
