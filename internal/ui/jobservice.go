package ui

import (
	"net/http"

	"github.com/lading-dev/lading/internal/errdefs"
)

// adminJobs is the job service dashboard: the runners (one per lading
// process) and their workers, each kind's queue with its pending jobs,
// and the schedules; queues can be paused, resumed and emptied.
func (s *Server) adminJobs(c *call) error {
	if s.svc.Jobs == nil {
		return notFound("no job service in this server")
	}
	pools, err := s.svc.Jobs.Pools(c.ctx, c.who)
	if err != nil {
		return err
	}
	workers, err := s.svc.Jobs.Workers(c.ctx, c.who, "all")
	if err != nil {
		return err
	}
	queues, err := s.svc.Jobs.Queues(c.ctx, c.who)
	if err != nil {
		return err
	}
	page := c.pageOf()
	scheds, total, err := s.svc.Jobs.Schedules(c.ctx, c.who, page)
	if err != nil {
		return err
	}
	busy := 0
	for _, w := range workers {
		if w.JobID != 0 {
			busy++
		}
	}
	return s.renderAdmin(c, http.StatusOK, "jobs", "Job service", map[string]any{
		"Pools": pools, "Workers": workers, "Busy": busy, "Queues": queues, "Schedules": scheds, "Pager": newPager(c.r.URL, page, total),
		"Perms": c.projectPerms(0),
	})
}

// adminJobQueue pauses, resumes or empties ("stop") a kind's queue, or
// every queue for the kind "all".
func (s *Server) adminJobQueue(c *call) error {
	if s.svc.Jobs == nil {
		return notFound("no job service in this server")
	}
	kind, action := c.r.PostForm.Get("kind"), c.r.PostForm.Get("action")
	err := s.svc.Jobs.QueueAction(c.ctx, c.who, kind, action)
	if errdefs.IsInvalidArgument(err) || errdefs.IsNotFound(err) {
		c.flash(err.Error())
		return c.redirect("/admin/jobs")
	}
	if err != nil {
		return err
	}
	msg := map[string]string{"pause": "paused", "resume": "resumed", "stop": "emptied of its pending jobs"}[action]
	if kind == "all" {
		c.flash("Every queue " + msg + ".")
	} else {
		c.flash("Queue " + kind + " " + msg + ".")
	}
	return c.redirect("/admin/jobs")
}
