package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/query"
)

type componentJSON struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// health answers every component's status; the overall status is
// unhealthy when one is.
func (s *Server) health(c *call) error {
	out := struct {
		Status     string          `json:"status"`
		Components []componentJSON `json:"components"`
	}{Status: "healthy", Components: []componentJSON{{Name: "core", Status: "healthy"}}}
	if s.opt.Health != nil {
		for _, comp := range s.opt.Health(c.ctx) {
			j := componentJSON{Name: comp.Name, Status: "healthy"}
			if comp.Error != nil {
				j.Status, j.Error = "unhealthy", comp.Error.Error()
				out.Status = "unhealthy"
			}
			out.Components = append(out.Components, j)
		}
	}
	return c.json(http.StatusOK, out)
}

// systemInfo is Harbor's GeneralInfo: some fields for everyone, the rest
// for authenticated callers.
func (s *Server) systemInfo(c *call) error {
	st, err := s.svc.Settings.Get(c.ctx)
	if err != nil {
		return err
	}
	mode := st.AuthMode
	if s.opt.NoAuth {
		mode = "none"
	}
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	info := map[string]any{
		"auth_mode":          mode,
		"primary_auth_mode":  false,
		"self_registration":  st.SelfRegistration,
		"harbor_version":     s.opt.Version,
		"banner_message":     st.BannerMessage,
		"current_time":       time.Now().UTC(),
		"oidc_provider_name": oidcName(st.AuthMode, st.Values),
		"authproxy_settings": nil,
	}
	if c.who.Authenticated() {
		info["registry_url"] = c.r.Host
		info["external_url"] = scheme + "://" + c.r.Host
		info["project_creation_restriction"] = st.ProjectCreationRestriction
		info["has_ca_root"] = false
		info["read_only"] = st.ReadOnly
		info["registry_storage_provider_name"] = s.opt.StorageProvider
		info["notification_enable"] = true
	}
	return c.json(http.StatusOK, info)
}

func (s *Server) getConfigurations(c *call) error {
	items, err := s.svc.Settings.List(c.ctx, c.who)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, items)
}

func (s *Server) putConfigurations(c *call) error {
	var changes map[string]any
	if err := c.decode(&changes); err != nil {
		return err
	}
	if err := s.svc.Settings.Update(c.ctx, c.who, changes); err != nil {
		return err
	}
	return c.ok()
}

// search finds projects and repositories by a part of their name, among
// those the caller may see.
func (s *Server) search(c *call) error {
	term := strings.TrimSpace(c.r.URL.Query().Get("q"))
	out := struct {
		Project    []projectJSON          `json:"project"`
		Repository []searchRepositoryJSON `json:"repository"`
	}{Project: []projectJSON{}, Repository: []searchRepositoryJSON{}}
	if term == "" {
		return c.json(http.StatusOK, out)
	}
	ps, _, err := s.svc.Projects.List(c.ctx, c.who, query.Query{}.WithFuzzy("name", term), query.Page{Number: 1, Size: 100})
	if err != nil {
		return err
	}
	for _, p := range ps {
		out.Project = append(out.Project, toProject(p))
	}
	repos, _, err := s.svc.Artifacts.AllRepositories(c.ctx, c.who, query.Query{}.WithFuzzy("name", term), query.Page{Number: 1, Size: 100})
	if err != nil {
		return err
	}
	public := map[int64]bool{}
	names := map[int64]string{}
	for _, r := range repos {
		if _, ok := names[r.ProjectID]; !ok {
			if info, err := s.svc.Projects.Resolve(c.ctx, projectRefID(r.ProjectID)); err == nil {
				public[r.ProjectID], names[r.ProjectID] = info.Public, info.Name
			}
		}
		out.Repository = append(out.Repository, searchRepositoryJSON{ProjectID: r.ProjectID, ProjectName: names[r.ProjectID],
			ProjectPublic: public[r.ProjectID], RepositoryName: r.Name, PullCount: r.PullCount, ArtifactCount: r.ArtifactCount})
	}
	return c.json(http.StatusOK, out)
}

type searchRepositoryJSON struct {
	ProjectID      int64  `json:"project_id"`
	ProjectName    string `json:"project_name"`
	ProjectPublic  bool   `json:"project_public"`
	RepositoryName string `json:"repository_name"`
	PullCount      int64  `json:"pull_count"`
	ArtifactCount  int64  `json:"artifact_count"`
}

// statistics counts the projects and repositories the caller may see.
func (s *Server) statistics(c *call) error {
	if !c.who.Authenticated() {
		return access.Refuse(c.who, access.Read, access.Project)
	}
	var out struct {
		PrivateProjectCount int64 `json:"private_project_count"`
		PrivateRepoCount    int64 `json:"private_repo_count"`
		PublicProjectCount  int64 `json:"public_project_count"`
		PublicRepoCount     int64 `json:"public_repo_count"`
		TotalProjectCount   int64 `json:"total_project_count"`
		TotalRepoCount      int64 `json:"total_repo_count"`
		// TotalStorage is shown to system administrators, as in Harbor.
		TotalStorage int64 `json:"total_storage_consumption"`
	}
	for _, public := range []bool{true, false} {
		ps, n, err := s.svc.Projects.List(c.ctx, c.who, query.Query{}.With("public", public), query.Page{})
		if err != nil {
			return err
		}
		var repos int64
		for _, p := range ps {
			repos += p.RepoCount
		}
		if public {
			out.PublicProjectCount, out.PublicRepoCount = n, repos
		} else {
			out.PrivateProjectCount, out.PrivateRepoCount = n, repos
		}
	}
	out.TotalProjectCount = out.PublicProjectCount + out.PrivateProjectCount
	out.TotalRepoCount = out.PublicRepoCount + out.PrivateRepoCount
	if c.who.SysAdmin {
		n, err := s.svc.Projects.TotalStorage(c.ctx)
		if err != nil {
			return err
		}
		out.TotalStorage = n
	}
	return c.json(http.StatusOK, out)
}

// currentPermissions lists what the caller may do in a scope
// ("/project/1" or "/system"); with relative=true resources are relative
// to the scope.
func (s *Server) currentPermissions(c *call) error {
	if !c.who.Authenticated() {
		return access.Refuse(c.who, access.Read, access.User)
	}
	v := c.r.URL.Query()
	scope, relative := v.Get("scope"), v.Get("relative") == "true"
	type perm struct {
		Resource string `json:"resource"`
		Action   string `json:"action"`
	}
	out := []perm{}
	var prefix string
	var pol access.Policies
	switch {
	case strings.HasPrefix(scope, "/project/"):
		ref := projectRefString(strings.TrimPrefix(scope, "/project/"))
		info, err := s.svc.Projects.Resolve(c.ctx, ref)
		if err != nil {
			return c.json(http.StatusOK, out)
		}
		pol, err = s.svc.Access.Policies(c.ctx, c.who, info.ID)
		if err != nil {
			return err
		}
		prefix = scope
	case scope == "" || scope == "/system":
		pol = access.Policies{}
		for r, acts := range access.RobotSystemPolicies {
			for _, a := range acts {
				if ok, _ := s.svc.Access.Can(c.ctx, c.who, a, r, 0); ok {
					pol[r] = append(pol[r], a)
				}
			}
		}
		if c.who.SysAdmin {
			for _, r := range []access.Resource{access.Configuration, access.User} {
				pol[r] = []access.Action{access.Read, access.Update, access.Create, access.Delete, access.List}
			}
		}
		prefix = "/system"
	}
	for r, acts := range pol {
		res := string(r)
		if !relative {
			res = strings.TrimSuffix(prefix+"/"+res, "/")
		}
		for _, a := range acts {
			out = append(out, perm{Resource: res, Action: string(a)})
		}
	}
	return c.json(http.StatusOK, out)
}

// oidcName is the provider's name the login page shows under oidc_auth.
func oidcName(mode string, v map[string]any) string {
	if mode != "oidc_auth" {
		return ""
	}
	name, _ := v["oidc_name"].(string)
	return name
}
