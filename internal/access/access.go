// Package access answers one question for every other part of lading: may
// subject S do action A on resource R? It answers from Harbor's role
// matrix (Matrix), written once as data, from the public-project policies,
// from a robot's own permissions, and from the system administrator flag.
//
// Services ask before they act (Checker.Require), so that the HTTP API,
// the registry's token service and the web UI, which all call the same
// service functions with the same Subject, cannot disagree.
//
// A resource lives either at system level (project 0: users, quotas, the
// configuration) or in a project. Who is a member of a project, and in
// which role, is the project service's knowledge; the checker asks it
// through the Directory interface.
package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Kind is the kind of a subject.
type Kind int

// The kinds of subject.
const (
	KindAnonymous Kind = iota
	KindUser
	KindRobot
)

func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindRobot:
		return "robot"
	}
	return "anonymous"
}

// Subject is who acts.
type Subject struct {
	Kind Kind
	// ID is the user's or the robot's id.
	ID   int64
	Name string
	// SysAdmin users may do everything.
	SysAdmin bool
	// Groups are the ids of the user's groups; a group member's roles
	// count for its users.
	Groups []int64
	// Robot holds a robot's permissions.
	Robot *RobotGrant
	// Address is the client's address, for the audit log.
	Address string
}

// Authenticated reports whether s is not anonymous.
func (s Subject) Authenticated() bool { return s.Kind != KindAnonymous }

// String names the subject for logs and messages.
func (s Subject) String() string {
	if s.Kind == KindAnonymous {
		return "anonymous"
	}
	return s.Name
}

// RobotGrant is what a robot account may do.
type RobotGrant struct {
	// Level is "system" or "project".
	Level string
	// ProjectID is a project robot's project.
	ProjectID   int64
	Permissions []Permission
}

// Robot levels and permission kinds, as Harbor names them.
const (
	LevelSystem  = "system"
	LevelProject = "project"
)

// Permission is a robot's access in one namespace: the system ("/") or a
// project (its name, or "*" for every project).
type Permission struct {
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace"`
	Access    []Policy `json:"access"`
}

// Policy is one resource and action.
type Policy struct {
	Resource Resource `json:"resource"`
	Action   Action   `json:"action"`
	Effect   string   `json:"effect,omitempty"`
}

// ProjectInfo is what the checker needs to know of a project.
type ProjectInfo struct {
	ID     int64
	Name   string
	Public bool
}

// Directory tells the checker about projects and memberships.
type Directory interface {
	// ProjectInfo returns a project; errdefs.ErrNotFound when there is
	// none with that id.
	ProjectInfo(ctx context.Context, id int64) (ProjectInfo, error)
	// MemberRoles returns the roles of the user, directly or through one
	// of groups, in the project.
	MemberRoles(ctx context.Context, projectID, userID int64, groups []int64) ([]Role, error)
	// MemberProjects returns the user's roles in every project where the
	// user, directly or through one of groups, is a member.
	MemberProjects(ctx context.Context, userID int64, groups []int64) (map[int64][]Role, error)
	// ProjectByName returns a project by name; errdefs.ErrNotFound when
	// there is none.
	ProjectByName(ctx context.Context, name string) (ProjectInfo, error)
}

// Checker answers access questions.
type Checker struct {
	dir Directory
}

// New returns a checker that learns about projects from dir.
func New(dir Directory) *Checker { return &Checker{dir: dir} }

// Can reports whether s may do a on r, in project (0: at system level).
func (c *Checker) Can(ctx context.Context, s Subject, a Action, r Resource, project int64) (bool, error) {
	if s.SysAdmin && s.Kind == KindUser {
		return true, nil
	}
	if project == 0 {
		return s.Robot != nil && robotSystem(s.Robot).Has(r, a), nil
	}
	p, err := c.Policies(ctx, s, project)
	if err != nil {
		return false, err
	}
	return p.Has(r, a), nil
}

// Require is Can as an error: nil when allowed, ErrUnauthorized for an
// anonymous subject, ErrDenied for anyone else.
func (c *Checker) Require(ctx context.Context, s Subject, a Action, r Resource, project int64) error {
	ok, err := c.Can(ctx, s, a, r, project)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	return Refuse(s, a, r)
}

// Refuse is the error for s not being allowed a on r.
func Refuse(s Subject, a Action, r Resource) error {
	what := string(r)
	if what == "" {
		what = "project"
	}
	if !s.Authenticated() {
		return errdefs.Unauthorized(fmt.Errorf("authentication required to %s %s", a, what))
	}
	return errdefs.Denied(fmt.Errorf("%s may not %s %s", s, a, what))
}

// Policies returns everything s may do in project. A project that does not
// exist grants nothing (and no error): callers that must tell "not found"
// look the project up themselves, so that a guess at an id learns nothing.
func (c *Checker) Policies(ctx context.Context, s Subject, project int64) (Policies, error) {
	out := Policies{}
	if s.SysAdmin && s.Kind == KindUser {
		for _, role := range Roles {
			out.add(Matrix[role])
		}
		return out, nil
	}
	info, err := c.dir.ProjectInfo(ctx, project)
	if errors.Is(err, errdefs.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if info.Public {
		out.add(PublicProject)
	}
	switch s.Kind {
	case KindUser:
		roles, err := c.dir.MemberRoles(ctx, project, s.ID, s.Groups)
		if err != nil {
			return nil, err
		}
		for _, role := range roles {
			out.add(Matrix[role])
		}
	case KindRobot:
		if s.Robot != nil {
			out.add(robotProject(s.Robot, info))
		}
	}
	return out, nil
}

// ProjectsWhere returns the projects where s may do a on r through a role
// or a robot permission (public projects' policies do not count), or all
// when s may do it in every project.
func (c *Checker) ProjectsWhere(ctx context.Context, s Subject, a Action, r Resource) (ids []int64, all bool, err error) {
	if s.SysAdmin && s.Kind == KindUser {
		return nil, true, nil
	}
	switch s.Kind {
	case KindUser:
		m, err := c.dir.MemberProjects(ctx, s.ID, s.Groups)
		if err != nil {
			return nil, false, err
		}
		for id, roles := range m {
			if slices.ContainsFunc(roles, func(role Role) bool { return Matrix[role].Has(r, a) }) {
				ids = append(ids, id)
			}
		}
	case KindRobot:
		if s.Robot == nil {
			return nil, false, nil
		}
		for _, perm := range s.Robot.Permissions {
			if perm.Kind != LevelProject {
				continue
			}
			if perm.Namespace == "*" {
				if s.Robot.Level == LevelSystem && robotProject(s.Robot, ProjectInfo{Name: "*"}).Has(r, a) {
					return nil, true, nil
				}
				continue
			}
			p, err := c.dir.ProjectByName(ctx, perm.Namespace)
			if errors.Is(err, errdefs.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, false, err
			}
			if robotProject(s.Robot, p).Has(r, a) {
				ids = append(ids, p.ID)
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), false, nil
}

// RepositoryActions returns which of the registry's actions on repo
// ("PROJECT/REPO...") s may do: "pull", "push" and "delete", as Harbor's
// token service grants them (repository pull, push and delete in the
// project). A repository outside any existing project grants nothing.
func (c *Checker) RepositoryActions(ctx context.Context, s Subject, repo string) ([]Action, error) {
	name, _, ok := strings.Cut(repo, "/")
	if !ok || name == "" {
		return nil, nil
	}
	p, err := c.dir.ProjectByName(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pol, err := c.Policies(ctx, s, p.ID)
	if err != nil {
		return nil, err
	}
	var out []Action
	for _, a := range []Action{Pull, Push, Delete} {
		if pol.Has(Repository, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Roles returns the roles s holds in project, for display (Harbor's
// current_user_role_ids).
func (c *Checker) Roles(ctx context.Context, s Subject, project int64) ([]Role, error) {
	if s.Kind != KindUser {
		return nil, nil
	}
	return c.dir.MemberRoles(ctx, project, s.ID, s.Groups)
}

func (p Policies) add(q Policies) {
	for r, acts := range q {
		for _, a := range acts {
			if !slices.Contains(p[r], a) {
				p[r] = append(p[r], a)
			}
		}
	}
}

// robotSystem is a robot's system-level policies.
func robotSystem(g *RobotGrant) Policies {
	out := Policies{}
	if g.Level != LevelSystem {
		return out
	}
	for _, perm := range g.Permissions {
		if perm.Kind != LevelSystem {
			continue
		}
		for _, a := range perm.Access {
			out.add(Policies{a.Resource: {a.Action}})
		}
	}
	return out
}

// robotProject is a robot's policies in project p. Harbor names the
// project itself "project" in robot permissions; push brings pull.
func robotProject(g *RobotGrant, p ProjectInfo) Policies {
	out := Policies{}
	if g.Level == LevelProject && g.ProjectID != p.ID {
		return out
	}
	for _, perm := range g.Permissions {
		if perm.Kind != LevelProject || (perm.Namespace != p.Name && perm.Namespace != "*") {
			continue
		}
		if g.Level == LevelProject && perm.Namespace == "*" {
			continue
		}
		for _, a := range perm.Access {
			r := a.Resource
			if r == Project {
				r = Self
			}
			out.add(Policies{r: {a.Action}})
			if a.Action == Push {
				out.add(Policies{r: {Pull}})
			}
		}
	}
	return out
}

// Grantable reports whether a robot may be given perms: every access must
// be one Harbor allows robots at that level (RobotSystemPolicies,
// RobotProjectPolicies).
func Grantable(level string, perms []Permission) error {
	if level != LevelSystem && level != LevelProject {
		return errdefs.InvalidArgument(fmt.Errorf("robot level %q is not system or project", level))
	}
	if len(perms) == 0 {
		return errdefs.InvalidArgument(errors.New("a robot needs at least one permission"))
	}
	if level == LevelProject && len(perms) > 1 {
		return errdefs.InvalidArgument(errors.New("a project robot has permissions in exactly one project"))
	}
	for _, p := range perms {
		if len(p.Access) == 0 {
			return errdefs.InvalidArgument(fmt.Errorf("permission on %q: empty access", p.Namespace))
		}
		var allowed Policies
		switch p.Kind {
		case LevelSystem:
			if level != LevelSystem {
				return errdefs.InvalidArgument(errors.New("a project robot cannot have system permissions"))
			}
			allowed = RobotSystemPolicies
		case LevelProject:
			if p.Namespace == "" || (level == LevelProject && p.Namespace == "*") {
				return errdefs.InvalidArgument(fmt.Errorf("permission namespace %q: want a project name", p.Namespace))
			}
			allowed = RobotProjectPolicies
		default:
			return errdefs.InvalidArgument(fmt.Errorf("bad request permission level: %s", p.Kind))
		}
		for _, a := range p.Access {
			if a.Effect != "" && a.Effect != "allow" {
				return errdefs.InvalidArgument(fmt.Errorf("bad request permission: effect %q", a.Effect))
			}
			if !slices.Contains(allowed[a.Resource], a.Action) {
				return errdefs.InvalidArgument(fmt.Errorf("bad request permission: %s:%s", a.Resource, a.Action))
			}
		}
	}
	return nil
}

// Covers reports whether the permissions have covers every permission of
// want: the rule by which a robot may only create robots narrower than
// itself (Harbor's isValidPermissionScope). A namespace "*" covers every
// project.
func Covers(have, want []Permission) bool {
	find := func(kind, ns string) *Permission {
		var all *Permission
		for i := range have {
			if have[i].Kind != kind {
				continue
			}
			if have[i].Namespace == ns {
				return &have[i]
			}
			if have[i].Namespace == "*" {
				all = &have[i]
			}
		}
		return all
	}
	for _, w := range want {
		h := find(w.Kind, w.Namespace)
		if h == nil {
			return false
		}
		for _, a := range w.Access {
			if !slices.ContainsFunc(h.Access, func(b Policy) bool { return b.Resource == a.Resource && b.Action == a.Action }) {
				return false
			}
		}
	}
	return true
}
