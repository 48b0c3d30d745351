package ui

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/immutable"
	"github.com/lading-dev/lading/internal/label"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/selector"
)

// This file holds the project tabs of the registry's lifecycle:
// immutable tag rules and project labels (retention.go has the retention
// tab), and the labels of an artifact. Each handler reads a form into a
// service call; the service decides.

// projectRoutes are the routes of the project pages added with the
// lifecycle, scanning and labels.
func (s *Server) projectRoutes() {
	s.handle("POST /projects/{project}/immutability", s.createImmutable)
	s.handle("POST /projects/{project}/immutability/{id}", s.changeImmutable)
	s.handle("POST /projects/{project}/labels", s.createLabel)
	s.handle("POST /projects/{project}/labels/{id}", s.changeLabel)
	s.handle("POST /projects/{project}/retention", s.saveRetention)
	s.handle("POST /projects/{project}/retention/rules/{n}", s.changeRetentionRule)
	s.handle("POST /projects/{project}/retention/run", s.runRetention)
	s.handle("GET /projects/{project}/retention/runs/{exec}/tasks/{task}/log", s.retentionTaskLog)
	s.handle("POST /projects/{project}/retention/runs/{exec}/stop", s.stopRetention)
}

// projectFuncs are the template helpers of the pages in this file,
// retention.go and scans.go.
func projectFuncs() template.FuncMap {
	return template.FuncMap{
		"stoppable":      stoppable,
		"accessorykind":  accessoryKind,
		"tagdecorations": func() []string { return selector.TagDecorations },
		"untagged":       func(s selector.Selector) bool { return s.Untagged() },
		"firstsel": func(ss []selector.Selector) selector.Selector {
			if len(ss) == 0 {
				return selector.Selector{Decoration: selector.Matches, Pattern: "**"}
			}
			return ss[0]
		},
	}
}

// hasTab reports whether the server has the service behind a tab.
func (s *Server) hasTab(name string) bool {
	switch name {
	case "immutability":
		return s.svc.Immutable != nil
	case "retention":
		return s.svc.Retention != nil
	case "labels":
		return s.svc.Labels != nil
	}
	return true
}

// lifecycleTab renders the immutability, retention and labels tabs.
func (s *Server) lifecycleTab(c *call, pv *projectView) error {
	if !s.hasTab(pv.Tab) {
		return notFound("no tab " + pv.Tab + " in this server")
	}
	ref := project.Ref{ID: pv.Project.ID}
	switch pv.Tab {
	case "immutability":
		rules, _, err := s.svc.Immutable.List(c.ctx, c.who, ref, query.Query{}, query.Page{Number: 1, Size: immutable.MaxRules})
		if err != nil {
			return err
		}
		pv.Data = map[string]any{"Rules": rules, "Max": immutable.MaxRules}
	case "labels":
		ls, total, err := s.svc.Labels.List(c.ctx, c.who, label.Project, pv.Project.ID, "", query.Query{}, c.pageOf())
		if err != nil {
			return err
		}
		pv.Data = map[string]any{"Labels": ls, "Pager": newPager(c.r.URL, c.pageOf(), total)}
	case "retention":
		data, err := s.retentionData(c, pv.Project)
		if err != nil {
			return err
		}
		pv.Data = data
	}
	return c.render(http.StatusOK, "project", pv.Project.Name, *pv)
}

// back flashes msg (or the error the user is to fix) and returns to a
// project's tab; other errors are the caller's.
func (c *call) back(err error, msg, projectName, tab string) error {
	if err != nil && !formError(err) {
		return err
	}
	if err != nil {
		msg = err.Error()
	}
	c.flash(msg)
	return c.redirect("/projects/" + url.PathEscape(projectName) + "/" + tab)
}

// selectorsOf reads a repository and a tag selector from a form: the
// fields repo_decoration, repo_pattern, tag_decoration, tag_pattern and
// (for tags) untagged.
func selectorsOf(f url.Values) (repo, tags selector.Selector) {
	pattern := func(k string) string {
		if p := strings.TrimSpace(f.Get(k)); p != "" {
			return p
		}
		return "**"
	}
	repo = selector.Selector{Kind: selector.Kind, Decoration: f.Get("repo_decoration"), Pattern: pattern("repo_pattern")}
	tags = selector.Selector{Kind: selector.Kind, Decoration: f.Get("tag_decoration"), Pattern: pattern("tag_pattern")}
	if f.Has("untagged_field") {
		tags.Extras = `{"untagged":` + strconv.FormatBool(f.Get("untagged") == "on") + `}`
	}
	return repo, tags
}

func (s *Server) createImmutable(c *call) error {
	if s.svc.Immutable == nil {
		return notFound("no immutable tag rules in this server")
	}
	ref := project.Ref{Name: c.r.PathValue("project")}
	repo, tags := selectorsOf(c.r.PostForm)
	_, err := s.svc.Immutable.Create(c.ctx, c.who, ref, immutable.Rule{Repositories: repo, Tags: tags})
	return c.back(err, "Immutable tag rule added.", ref.Name, "immutability")
}

// changeImmutable enables, disables or deletes a rule (the form's
// action).
func (s *Server) changeImmutable(c *call) error {
	if s.svc.Immutable == nil {
		return notFound("no immutable tag rules in this server")
	}
	ref := project.Ref{Name: c.r.PathValue("project")}
	id, err := strconv.ParseInt(c.r.PathValue("id"), 10, 64)
	if err != nil {
		return notFound("no rule " + c.r.PathValue("id"))
	}
	switch action := c.r.PostForm.Get("action"); action {
	case "delete":
		err = s.svc.Immutable.Delete(c.ctx, c.who, ref, id)
		return c.back(err, "Immutable tag rule deleted.", ref.Name, "immutability")
	case "enable", "disable":
		rules, _, err := s.svc.Immutable.List(c.ctx, c.who, ref, query.Query{}, query.Page{Number: 1, Size: immutable.MaxRules})
		if err != nil {
			return err
		}
		i := slices.IndexFunc(rules, func(r immutable.Rule) bool { return r.ID == id })
		if i < 0 {
			return notFound("no immutable tag rule " + strconv.FormatInt(id, 10) + " in " + ref.Name)
		}
		r := rules[i]
		r.Disabled = action == "disable"
		err = s.svc.Immutable.Update(c.ctx, c.who, ref, id, r)
		return c.back(err, "Immutable tag rule "+action+"d.", ref.Name, "immutability")
	default:
		return errdefs.InvalidArgument(fmt.Errorf("no action %.32q on an immutable tag rule", action))
	}
}

// labelOf reads a label's fields from a form.
func labelOf(f url.Values) label.Label {
	return label.Label{Name: strings.TrimSpace(f.Get("name")), Description: strings.TrimSpace(f.Get("description")), Color: strings.TrimSpace(f.Get("color"))}
}

func (s *Server) createLabel(c *call) error {
	if s.svc.Labels == nil {
		return notFound("no labels in this server")
	}
	pv, err := s.project(c)
	if err != nil {
		return err
	}
	l := labelOf(c.r.PostForm)
	l.Scope, l.ProjectID = label.Project, pv.Project.ID
	_, err = s.svc.Labels.Create(c.ctx, c.who, l)
	return c.back(err, "Label "+l.Name+" created.", pv.Project.Name, "labels")
}

// changeLabel updates or deletes a label (the form's action).
func (s *Server) changeLabel(c *call) error {
	if s.svc.Labels == nil {
		return notFound("no labels in this server")
	}
	name := c.r.PathValue("project")
	id, err := strconv.ParseInt(c.r.PathValue("id"), 10, 64)
	if err != nil {
		return notFound("no label " + c.r.PathValue("id"))
	}
	if c.r.PostForm.Get("action") == "delete" {
		err = s.svc.Labels.Delete(c.ctx, c.who, id)
		return c.back(err, "Label deleted.", name, "labels")
	}
	l := labelOf(c.r.PostForm)
	err = s.svc.Labels.Update(c.ctx, c.who, id, l)
	return c.back(err, "Label "+l.Name+" saved.", name, "labels")
}

// artifactLabels are the labels an artifact page shows and offers: the
// artifact's, and those that may be attached (the global labels and the
// project's).
func (s *Server) artifactLabels(c *call, projectID, artifactID int64) (on, offered []label.Label, err error) {
	if s.svc.Labels == nil {
		return nil, nil, nil
	}
	of, err := s.svc.Labels.Of(c.ctx, []int64{artifactID})
	if err != nil {
		return nil, nil, err
	}
	on = of[artifactID]
	all := query.Page{Number: 1, Size: 100}
	global, _, err := s.svc.Labels.List(c.ctx, c.who, label.Global, 0, "", query.Query{}, all)
	if err != nil {
		return nil, nil, err
	}
	proj, _, err := s.svc.Labels.List(c.ctx, c.who, label.Project, projectID, "", query.Query{}, all)
	if err != nil && !errors.Is(err, errdefs.ErrDenied) {
		return nil, nil, err
	}
	for _, l := range append(global, proj...) {
		if !slices.ContainsFunc(on, func(x label.Label) bool { return x.ID == l.ID }) {
			offered = append(offered, l)
		}
	}
	return on, offered, nil
}

// attachLabel and detachLabel are the artifact page's label forms.
func (s *Server) labelAction(c *call, t target, action string) (string, error) {
	if s.svc.Labels == nil {
		return "", notFound("no labels in this server")
	}
	id, err := strconv.ParseInt(c.r.PostForm.Get("label"), 10, 64)
	if err != nil {
		return "", errdefs.InvalidArgument(fmt.Errorf("choose a label"))
	}
	if action == "attach-label" {
		return "Label added.", s.svc.Labels.Attach(c.ctx, c.who, t.ref(), t.Repo, t.Artifact, id)
	}
	return "Label removed.", s.svc.Labels.Detach(c.ctx, c.who, t.ref(), t.Repo, t.Artifact, id)
}
