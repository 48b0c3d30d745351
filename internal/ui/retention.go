package ui

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/retention"
	"github.com/lading-dev/lading/internal/selector"
)

// The retention tab shows a project's retention policy (Harbor keeps one
// per project, named by the project's metadata retention_id): its rules,
// each one of Harbor's templates over repository and tag selectors, its
// schedule, the buttons that run it or dry-run it, and its runs, each
// with a task per repository whose log says what was kept and why.

// schedules are the schedule presets, as Harbor's portal offers them
// (Harbor's six-field cron, seconds first).
var schedules = []struct{ Value, Label, Cron string }{
	{"none", "None (run by hand)", ""},
	{"hourly", "Hourly", "0 0 * * * *"},
	{"daily", "Daily, at midnight", "0 0 0 * * *"},
	{"weekly", "Weekly, Sunday at midnight", "0 0 0 * * 0"},
	{"custom", "Custom cron", ""},
}

// ruleView is a rule as the tab lists it.
type ruleView struct {
	retention.Rule
	Index int
	Text  string
}

// ruleText describes a rule: "retain the most recently pushed 3
// artifacts".
func ruleText(r retention.Rule) string {
	for _, t := range retention.Templates {
		if t.RuleTemplate == r.Template {
			n, _ := r.N()
			return "retain " + strings.Replace(t.DisplayText, "#", strconv.Itoa(n), 1)
		}
	}
	return r.Template
}

// policyID is the project's retention policy id, 0 for none.
func policyID(p project.Project) int64 {
	id, _ := strconv.ParseInt(p.Metadata["retention_id"], 10, 64)
	return id
}

func (s *Server) retentionData(c *call, p project.Project) (map[string]any, error) {
	data := map[string]any{"Templates": retention.Templates, "Schedules": schedules, "Max": retention.MaxRules,
		"Rules": []ruleView{}, "Cron": "", "Schedule": "none", "Policy": nil, "Exec": int64(0)}
	id := policyID(p)
	if id == 0 {
		return data, nil
	}
	pol, err := s.svc.Retention.Get(c.ctx, c.who, id)
	if err != nil {
		return nil, err
	}
	rules := make([]ruleView, len(pol.Rules))
	for i, r := range pol.Rules {
		rules[i] = ruleView{Rule: r, Index: i, Text: ruleText(r)}
	}
	cron := pol.Trigger.Cron()
	data["Policy"], data["Rules"], data["Cron"], data["Schedule"] = pol, rules, cron, "custom"
	for _, sc := range schedules[:4] {
		if sc.Cron == cron {
			data["Schedule"] = sc.Value
		}
	}
	page := c.pageOf()
	execs, total, err := s.svc.Retention.Executions(c.ctx, c.who, id, page)
	if err != nil {
		return nil, err
	}
	data["Executions"], data["Pager"] = execs, newPager(c.r.URL, page, total)
	if e, err := strconv.ParseInt(c.r.URL.Query().Get("exec"), 10, 64); err == nil {
		tasks, _, err := s.svc.Retention.Tasks(c.ctx, c.who, id, e, query.Page{Number: 1, Size: 100})
		if err != nil {
			return nil, err
		}
		data["Exec"], data["Tasks"] = e, tasks
	}
	return data, nil
}

// retentionPolicy returns the project's policy, or a new one (ID 0) when
// it has none yet.
func (s *Server) retentionPolicy(c *call) (project.Project, retention.Policy, error) {
	if s.svc.Retention == nil {
		return project.Project{}, retention.Policy{}, notFound("no tag retention in this server")
	}
	pv, err := s.project(c)
	if err != nil {
		return project.Project{}, retention.Policy{}, err
	}
	p := pv.Project
	if id := policyID(p); id != 0 {
		pol, err := s.svc.Retention.Get(c.ctx, c.who, id)
		return p, pol, err
	}
	return p, retention.Policy{Algorithm: "or", Scope: retention.Scope{Level: "project", Ref: p.ID},
		Trigger: retention.Trigger{Kind: "Schedule", Settings: map[string]any{"cron": ""}}, Rules: []retention.Rule{}}, nil
}

// storeRetention creates or updates the policy.
func (s *Server) storeRetention(c *call, pol retention.Policy) error {
	if pol.ID == 0 {
		_, err := s.svc.Retention.Create(c.ctx, c.who, pol)
		return err
	}
	return s.svc.Retention.Update(c.ctx, c.who, pol.ID, pol)
}

// saveRetention adds a rule (action "add-rule") or sets the schedule
// (action "schedule").
func (s *Server) saveRetention(c *call) error {
	p, pol, err := s.retentionPolicy(c)
	if err != nil {
		return err
	}
	f := c.r.PostForm
	var msg string
	switch f.Get("action") {
	case "add-rule":
		tmpl := f.Get("template")
		r := retention.Rule{Action: "retain", Template: tmpl, Params: map[string]any{}}
		if n := strings.TrimSpace(f.Get("n")); n != "" {
			r.Params[tmpl] = n
		}
		repo, tags := selectorsOf(f)
		r.ScopeSelectors = map[string][]selector.Selector{"repository": {repo}}
		r.TagSelectors = []selector.Selector{tags}
		pol.Rules = append(pol.Rules, r)
		msg = "Retention rule added: " + ruleText(r) + "."
	case "schedule":
		cron := ""
		preset := f.Get("schedule")
		for _, sc := range schedules {
			if sc.Value == preset {
				cron = sc.Cron
			}
		}
		if preset == "custom" {
			cron = strings.TrimSpace(f.Get("cron"))
			if cron == "" {
				return c.back(errdefs.InvalidArgument(fmt.Errorf("a custom schedule needs a cron expression (six fields, seconds first)")), "", p.Name, "retention")
			}
		}
		pol.Trigger = retention.Trigger{Kind: "Schedule", Settings: map[string]any{"cron": cron}}
		msg = "Retention schedule saved."
	default:
		return notFound("no action " + f.Get("action") + " here")
	}
	return c.back(s.storeRetention(c, pol), msg, p.Name, "retention")
}

// changeRetentionRule enables, disables or deletes the rule at index n.
func (s *Server) changeRetentionRule(c *call) error {
	p, pol, err := s.retentionPolicy(c)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(c.r.PathValue("n"))
	if err != nil || n < 0 || n >= len(pol.Rules) {
		return notFound("no retention rule " + c.r.PathValue("n"))
	}
	var msg string
	switch action := c.r.PostForm.Get("action"); action {
	case "delete":
		pol.Rules = append(pol.Rules[:n:n], pol.Rules[n+1:]...)
		msg = "Retention rule deleted."
	case "enable", "disable":
		pol.Rules[n].Disabled = action == "disable"
		msg = "Retention rule " + action + "d."
	default:
		return notFound("no action " + action + " here")
	}
	return c.back(s.storeRetention(c, pol), msg, p.Name, "retention")
}

// runRetention runs the policy now, for real or as a dry run.
func (s *Server) runRetention(c *call) error {
	p, pol, err := s.retentionPolicy(c)
	if err != nil {
		return err
	}
	if pol.ID == 0 {
		return c.back(errdefs.InvalidArgument(fmt.Errorf("project %s has no retention rules to run", p.Name)), "", p.Name, "retention")
	}
	dry := c.r.PostForm.Get("dry_run") == "true"
	exec, err := s.svc.Retention.Trigger(c.ctx, c.who, pol.ID, dry)
	if err != nil && !formError(err) {
		return err
	}
	if err != nil {
		c.flash(err.Error())
		return c.redirect("/projects/" + url.PathEscape(p.Name) + "/retention")
	}
	what := "Retention run"
	if dry {
		what = "Dry run"
	}
	c.flash(fmt.Sprintf("%s %d started.", what, exec))
	return c.redirect(fmt.Sprintf("/projects/%s/retention?exec=%d", url.PathEscape(p.Name), exec))
}

// stopRetention stops a run.
func (s *Server) stopRetention(c *call) error {
	p, pol, err := s.retentionPolicy(c)
	if err != nil {
		return err
	}
	exec, err := strconv.ParseInt(c.r.PathValue("exec"), 10, 64)
	if err != nil || pol.ID == 0 {
		return notFound("no retention run " + c.r.PathValue("exec"))
	}
	return c.back(s.svc.Retention.Operate(c.ctx, c.who, pol.ID, exec, "stop"), "Retention run stopping.", p.Name, "retention")
}

// retentionTaskLog sends a task's log as text: the job's lines, then an
// artifact per line with its decision and why.
func (s *Server) retentionTaskLog(c *call) error {
	_, pol, err := s.retentionPolicy(c)
	if err != nil {
		return err
	}
	exec, err1 := strconv.ParseInt(c.r.PathValue("exec"), 10, 64)
	task, err2 := strconv.ParseInt(c.r.PathValue("task"), 10, 64)
	if err1 != nil || err2 != nil || pol.ID == 0 {
		return notFound("no such retention task")
	}
	log, err := s.svc.Retention.TaskLog(c.ctx, c.who, pol.ID, exec, task)
	if err != nil {
		return err
	}
	h := c.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, err = c.w.Write(log)
	return err
}

// retentionStatuses whose run may still be stopped.
func stoppable(status string) bool { return status == "Running" || status == "Pending" }
