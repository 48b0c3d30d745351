package ui

import (
	"github.com/lading-dev/lading/internal/access"
)

// This file is the only one that asks the access checker anything, and
// only to choose which links and buttons to show. Whether an action is
// allowed is decided by the service that performs it, which the handler
// calls with the same subject; a control shown in error is refused there.

// perms is what a subject may do in one project, for templates:
// {{if .Perms.Can "repository" "delete"}}. It asks the checker's Can, the
// question the services ask before they act, so that what is offered is
// what is allowed; answers are kept for the request.
type perms struct {
	c       *call
	project int64
	known   map[[2]string]bool
}

// Can reports whether the subject may do action on resource ("" is the
// project itself).
func (p *perms) Can(resource, action string) bool {
	if p == nil || p.c == nil {
		return false
	}
	k := [2]string{resource, action}
	if v, ok := p.known[k]; ok {
		return v
	}
	ok, err := p.c.s.svc.Permissions.Can(p.c.ctx, p.c.who, access.Action(action), access.Resource(resource), p.project)
	if err != nil {
		p.c.s.log.Warn("reading permissions", "error", err, "request_id", p.c.id)
	}
	p.known[k] = ok
	return ok
}

// projectPerms returns who's permissions in a project.
func (c *call) projectPerms(project int64) *perms {
	return &perms{c: c, project: project, known: map[[2]string]bool{}}
}

// systemPerms are the system-level permissions the UI's menus depend on.
type systemPerms struct {
	Admin bool // the Administration menu: users, robots, configuration, audit
}

func (c *call) systemPerms() systemPerms {
	if !c.who.Authenticated() {
		return systemPerms{}
	}
	ok, err := c.s.svc.Permissions.Can(c.ctx, c.who, access.Read, access.Configuration, 0)
	if err != nil {
		c.s.log.Warn("reading permissions", "error", err, "request_id", c.id)
	}
	return systemPerms{Admin: ok}
}
