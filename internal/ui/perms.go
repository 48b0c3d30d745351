package ui

import (
	"github.com/lading-dev/lading/internal/access"
)

// This file is the only one that asks the access checker anything, and
// only to choose which links and buttons to show. Whether an action is
// allowed is decided by the service that performs it, which the handler
// calls with the same subject; a control shown in error is refused there.

// perms is what a subject may do in one project, for templates:
// {{if .Can "repository" "delete"}}.
type perms struct {
	p access.Policies
}

// Can reports whether the policies allow action on resource ("" is the
// project itself).
func (p perms) Can(resource, action string) bool {
	return p.p.Has(access.Resource(resource), access.Action(action))
}

// projectPerms returns who's permissions in a project; none on error.
func (c *call) projectPerms(project int64) perms {
	p, err := c.s.svc.Permissions.Policies(c.ctx, c.who, project)
	if err != nil {
		c.s.log.Warn("reading permissions", "error", err, "request_id", c.id)
	}
	return perms{p: p}
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
