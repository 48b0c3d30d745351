package access_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
)

// dir is a directory of two projects: 1 "pub" (public) and 2 "priv".
type dir struct{ roles map[[2]int64][]access.Role }

func (d dir) ProjectInfo(_ context.Context, id int64) (access.ProjectInfo, error) {
	switch id {
	case 1:
		return access.ProjectInfo{ID: 1, Name: "pub", Public: true}, nil
	case 2:
		return access.ProjectInfo{ID: 2, Name: "priv"}, nil
	}
	return access.ProjectInfo{}, errdefs.ErrNotFound
}

func (d dir) MemberRoles(_ context.Context, project, user int64, groups []int64) ([]access.Role, error) {
	out := d.roles[[2]int64{project, user}]
	for _, g := range groups {
		out = append(out, d.roles[[2]int64{project, -g}]...)
	}
	return out, nil
}

func TestCan(t *testing.T) {
	d := dir{roles: map[[2]int64][]access.Role{
		{2, 10}: {access.Developer},
		{2, 11}: {access.LimitedGuest},
		{2, 12}: {access.Maintainer},
		{2, -7}: {access.ProjectAdmin}, // group 7
	}}
	c := access.New(d)
	user := func(id int64, groups ...int64) access.Subject {
		return access.Subject{Kind: access.KindUser, ID: id, Name: "u", Groups: groups}
	}
	robot := func(level string, project int64, perms ...access.Permission) access.Subject {
		return access.Subject{Kind: access.KindRobot, ID: 1, Name: "robot$x", Robot: &access.RobotGrant{Level: level, ProjectID: project, Permissions: perms}}
	}
	pull := []access.Policy{{Resource: access.Repository, Action: access.Push}}
	for _, tc := range []struct {
		name    string
		s       access.Subject
		a       access.Action
		r       access.Resource
		project int64
		want    bool
	}{
		{"anonymous pulls public", access.Subject{}, access.Pull, access.Repository, 1, true},
		{"anonymous cannot push public", access.Subject{}, access.Push, access.Repository, 1, false},
		{"anonymous cannot pull private", access.Subject{}, access.Pull, access.Repository, 2, false},
		{"non-member pulls public", user(99), access.Pull, access.Repository, 1, true},
		{"non-member cannot read private", user(99), access.Read, access.Self, 2, false},
		{"developer pushes", user(10), access.Push, access.Repository, 2, true},
		{"developer cannot delete artifacts", user(10), access.Delete, access.Artifact, 2, false},
		{"maintainer deletes artifacts", user(12), access.Delete, access.Artifact, 2, true},
		{"maintainer cannot add members", user(12), access.Create, access.Member, 2, false},
		{"limited guest pulls", user(11), access.Pull, access.Repository, 2, true},
		{"limited guest cannot list members", user(11), access.List, access.Member, 2, false},
		{"limited guest cannot list logs", user(11), access.List, access.Log, 2, false},
		{"group member is project admin", user(50, 7), access.Create, access.Member, 2, true},
		{"sysadmin everywhere", access.Subject{Kind: access.KindUser, ID: 1, SysAdmin: true}, access.Delete, access.Self, 2, true},
		{"sysadmin at system level", access.Subject{Kind: access.KindUser, ID: 1, SysAdmin: true}, access.Update, access.Configuration, 0, true},
		{"user not at system level", user(10), access.List, access.User, 0, false},
		{"unknown project grants nothing", user(10), access.Read, access.Self, 3, false},
		{"project robot pushes in its project", robot(access.LevelProject, 2, access.Permission{Kind: "project", Namespace: "priv", Access: pull}), access.Push, access.Repository, 2, true},
		{"push brings pull", robot(access.LevelProject, 2, access.Permission{Kind: "project", Namespace: "priv", Access: pull}), access.Pull, access.Repository, 2, true},
		{"project robot not elsewhere", robot(access.LevelProject, 2, access.Permission{Kind: "project", Namespace: "priv", Access: pull}), access.Push, access.Repository, 1, false},
		{"system robot on every project", robot(access.LevelSystem, 0, access.Permission{Kind: "project", Namespace: "*", Access: pull}), access.Push, access.Repository, 2, true},
		{"system robot system permission", robot(access.LevelSystem, 0, access.Permission{Kind: "system", Namespace: "/", Access: []access.Policy{{Resource: access.Project, Action: access.Create}}}), access.Create, access.Project, 0, true},
		{"system robot without it", robot(access.LevelSystem, 0, access.Permission{Kind: "project", Namespace: "*", Access: pull}), access.Create, access.Project, 0, false},
		{"robot read project", robot(access.LevelProject, 2, access.Permission{Kind: "project", Namespace: "priv", Access: []access.Policy{{Resource: access.Project, Action: access.Read}}}), access.Read, access.Self, 2, true},
	} {
		got, err := c.Can(context.Background(), tc.s, tc.a, tc.r, tc.project)
		if err != nil || got != tc.want {
			t.Errorf("%s: Can = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if err := c.Require(context.Background(), access.Subject{}, access.Push, access.Repository, 1); !errdefs.IsUnauthorized(err) {
		t.Errorf("anonymous refused: %v, want unauthorized", err)
	}
	if err := c.Require(context.Background(), user(99), access.Push, access.Repository, 1); !errors.Is(err, errdefs.ErrDenied) {
		t.Errorf("user refused: %v, want denied", err)
	}
}

func TestGrantableAndCovers(t *testing.T) {
	p := func(kind, ns string, acc ...access.Policy) access.Permission {
		return access.Permission{Kind: kind, Namespace: ns, Access: acc}
	}
	push := access.Policy{Resource: access.Repository, Action: access.Push}
	pull := access.Policy{Resource: access.Repository, Action: access.Pull}
	for _, tc := range []struct {
		level string
		perms []access.Permission
		ok    bool
	}{
		{access.LevelProject, []access.Permission{p("project", "a", push)}, true},
		{access.LevelProject, []access.Permission{p("project", "a", push), p("project", "b", push)}, false},
		{access.LevelProject, []access.Permission{p("system", "/", access.Policy{Resource: access.User, Action: access.Create})}, false},
		{access.LevelProject, []access.Permission{p("project", "*", push)}, false},
		{access.LevelSystem, []access.Permission{p("project", "*", push), p("system", "/", access.Policy{Resource: access.User, Action: access.Create})}, true},
		{access.LevelSystem, []access.Permission{p("system", "/", access.Policy{Resource: access.Configuration, Action: access.Update})}, false},
		{access.LevelSystem, nil, false},
		{"other", []access.Permission{p("project", "a", push)}, false},
		{access.LevelProject, []access.Permission{p("project", "a", access.Policy{Resource: "bogus", Action: access.Read})}, false},
	} {
		err := access.Grantable(tc.level, tc.perms)
		if (err == nil) != tc.ok {
			t.Errorf("Grantable(%s, %+v) = %v, want ok=%v", tc.level, tc.perms, err, tc.ok)
		}
	}
	have := []access.Permission{p("project", "*", push, pull)}
	if !access.Covers(have, []access.Permission{p("project", "a", pull)}) {
		t.Error("* should cover a narrower project permission")
	}
	if access.Covers([]access.Permission{p("project", "a", pull)}, []access.Permission{p("project", "a", push)}) {
		t.Error("pull should not cover push")
	}
	if access.Covers([]access.Permission{p("project", "a", pull)}, []access.Permission{p("project", "b", pull)}) {
		t.Error("project a should not cover project b")
	}
}

func (d dir) MemberProjects(_ context.Context, user int64, groups []int64) (map[int64][]access.Role, error) {
	out := map[int64][]access.Role{}
	for k, roles := range d.roles {
		if k[1] == user || (k[1] < 0 && slices.Contains(groups, -k[1])) {
			out[k[0]] = append(out[k[0]], roles...)
		}
	}
	return out, nil
}

func (d dir) ProjectByName(ctx context.Context, name string) (access.ProjectInfo, error) {
	for id := int64(1); id <= 2; id++ {
		if p, _ := d.ProjectInfo(ctx, id); p.Name == name {
			return p, nil
		}
	}
	return access.ProjectInfo{}, errdefs.ErrNotFound
}
