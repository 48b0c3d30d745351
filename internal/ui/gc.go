package ui

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/task"
)

// Garbage collection (Harbor's page of that name, /system/gc): run now
// (dry run, delete untagged artifacts, workers), the schedule, the
// history of runs, each run's log.

// gcRun is a run as the history lists it.
type gcRun struct {
	task.Execution
	DryRun, DeleteUntagged bool
	Running                bool
}

func (s *Server) adminGC(c *call) error { return s.renderGC(c, http.StatusOK, "") }

func (s *Server) renderGC(c *call, st int, formErr string) error {
	sch, scheduled, err := s.svc.GC.Schedule(c.ctx, c.who)
	if err != nil {
		return err
	}
	page := c.pageOf()
	list, total, err := s.svc.GC.History(c.ctx, c.who, query.Query{}, page)
	if err != nil {
		return err
	}
	runs := make([]gcRun, len(list))
	for i, e := range list {
		dry, _ := e.ExtraAttrs["dry_run"].(bool)
		untagged, _ := e.ExtraAttrs["delete_untagged"].(bool)
		runs[i] = gcRun{Execution: e, DryRun: dry, DeleteUntagged: untagged, Running: running(e.Status)}
	}
	data := map[string]any{"Runs": runs, "Pager": newPager(c.r.URL, page, total), "FormError": formErr,
		"ScheduleTypes": []string{jobs.TypeNone, jobs.TypeHourly, jobs.TypeDaily, jobs.TypeWeekly, jobs.TypeCustom}}
	if scheduled {
		data["Schedule"] = sch
		dry, _ := sch.Params["dry_run"].(bool)
		untagged, _ := sch.Params["delete_untagged"].(bool)
		data["ScheduleDry"], data["ScheduleUntagged"] = dry, untagged
	}
	return s.renderAdmin(c, st, "gc", "Garbage collection", data)
}

// adminGCAction runs garbage collection now, sets its schedule, or stops
// a run.
func (s *Server) adminGCAction(c *call) error {
	f := c.r.PostForm
	params := map[string]any{"dry_run": f.Get("dry_run") == "on", "delete_untagged": f.Get("delete_untagged") == "on"}
	if w := strings.TrimSpace(f.Get("workers")); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil {
			return s.renderGC(c, http.StatusBadRequest, "Workers is a number from 1 to 10.")
		}
		params["workers"] = n
	}
	var err error
	var msg string
	switch f.Get("action") {
	case "run":
		var id int64
		id, err = s.svc.GC.SetSchedule(c.ctx, c.who, jobs.TypeManual, "", params, true)
		msg = "Garbage collection " + strconv.FormatInt(id, 10) + " started."
		if params["dry_run"] == true {
			msg = "Dry run " + strconv.FormatInt(id, 10) + " started: nothing will be deleted."
		}
	case "schedule":
		_, err = s.svc.GC.SetSchedule(c.ctx, c.who, f.Get("type"), strings.TrimSpace(f.Get("cron")), params, false)
		msg = "Schedule saved."
	case "stop":
		var id int64
		if id, err = strconv.ParseInt(f.Get("id"), 10, 64); err != nil {
			return notFound("no run " + f.Get("id"))
		}
		err, msg = s.svc.GC.Stop(c.ctx, c.who, id), "Garbage collection stopped."
	default:
		return notFound("no action " + f.Get("action"))
	}
	if formError(err) {
		return s.renderGC(c, status(err), err.Error())
	}
	if err != nil {
		return err
	}
	c.flash(msg)
	return c.redirect("/admin/gc")
}

func (s *Server) adminGCLog(c *call) error {
	id, err := c.pathID("id", "run")
	if err != nil {
		return err
	}
	b, err := s.svc.GC.Log(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	return c.text(b)
}
