package ui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/replication"
	"github.com/lading-dev/lading/internal/task"
)

// Replication (Harbor's "Replications" page): policies that push this
// registry's content to a registry endpoint or pull from one, run by
// hand, on a schedule or on events; their executions, each execution's
// tasks and each task's log.

// policyForm is a replication policy as the form holds it.
type policyForm struct {
	ID                             int64
	Name, Description              string
	Mode                           string // push or pull
	Registry                       int64
	NameFilter, TagFilter          string
	Resource                       string // "", image or artifact
	DestNamespace                  string
	Flatten                        int
	Trigger, Cron                  string
	Override, Enabled, Deletion    bool
	Speed                          int32
	SourceName, DestName, Operator string
}

func newPolicyForm() policyForm {
	return policyForm{Mode: "push", Flatten: 1, Trigger: endpoint.TriggerManual, Override: true, Enabled: true}
}

func formOfPolicy(p replication.Policy) policyForm {
	f := policyForm{ID: p.ID, Name: p.Name, Description: p.Description, Mode: "push", Registry: p.DestRegistry, DestNamespace: p.DestNamespace,
		Flatten: p.DestNamespaceReplaceCount, Trigger: endpoint.TriggerManual, Override: p.Override, Enabled: p.Enabled,
		Deletion: p.ReplicateDeletion, Speed: p.Speed}
	if !p.PushBased() {
		f.Mode, f.Registry = "pull", p.SrcRegistry
	}
	if p.Trigger != nil && p.Trigger.Type != "" {
		f.Trigger = p.Trigger.Type
		if p.Trigger.Settings != nil {
			f.Cron = p.Trigger.Settings.Cron
		}
	}
	for _, fl := range p.Filters {
		v, _ := fl.Value.(string)
		switch fl.Type {
		case endpoint.FilterName:
			f.NameFilter = v
		case endpoint.FilterTag:
			f.TagFilter = v
		case endpoint.FilterResource:
			f.Resource = v
		}
	}
	return f
}

func readPolicyForm(v url.Values) policyForm {
	f := policyForm{Name: strings.TrimSpace(v.Get("name")), Description: v.Get("description"), Mode: v.Get("mode"),
		NameFilter: strings.TrimSpace(v.Get("name_filter")), TagFilter: strings.TrimSpace(v.Get("tag_filter")), Resource: v.Get("resource"),
		DestNamespace: strings.TrimSpace(v.Get("dest_namespace")), Trigger: v.Get("trigger"), Cron: strings.TrimSpace(v.Get("cron")),
		Override: v.Get("override") == "on", Enabled: v.Get("enabled") == "on", Deletion: v.Get("deletion") == "on"}
	f.Registry, _ = strconv.ParseInt(v.Get("registry"), 10, 64)
	if n, err := strconv.Atoi(v.Get("flatten")); err == nil {
		f.Flatten = n
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(v.Get("speed")), 10, 32); err == nil {
		f.Speed = int32(n)
	}
	return f
}

// policy is the form as the service takes it; the service validates it.
func (f policyForm) policy() replication.Policy {
	p := replication.Policy{Name: f.Name, Description: f.Description, DestNamespace: f.DestNamespace, DestNamespaceReplaceCount: f.Flatten,
		Override: f.Override, Enabled: f.Enabled, ReplicateDeletion: f.Deletion, Speed: f.Speed,
		Trigger: &replication.Trigger{Type: f.Trigger}}
	if f.Trigger == endpoint.TriggerScheduled {
		p.Trigger.Settings = &replication.TriggerSettings{Cron: f.Cron}
	}
	if f.Mode == "pull" {
		p.SrcRegistry = f.Registry
	} else {
		p.DestRegistry = f.Registry
	}
	if f.NameFilter != "" {
		p.Filters = append(p.Filters, replication.Filter{Type: endpoint.FilterName, Value: f.NameFilter})
	}
	if f.TagFilter != "" {
		p.Filters = append(p.Filters, replication.Filter{Type: endpoint.FilterTag, Value: f.TagFilter, Decoration: replication.Matches})
	}
	if f.Resource != "" {
		p.Filters = append(p.Filters, replication.Filter{Type: endpoint.FilterResource, Value: f.Resource})
	}
	return p
}

// flattenings are Harbor's choices of dest_namespace_replace_count.
var flattenings = []struct {
	N     int
	Label string
}{{-1, "Flatten all levels"}, {0, "No flattening"}, {1, "Flatten 1 level"}, {2, "Flatten 2 levels"}, {3, "Flatten 3 levels"}}

// executionRow is an execution as the page lists it.
type executionRow struct {
	task.Execution
	Policy     string
	Running    bool
	InProgress int64
}

func newExecutionRow(e task.Execution, policy string) executionRow {
	return executionRow{Execution: e, Policy: policy, Running: running(e.Status),
		InProgress: e.Metrics.PendingTaskCount + e.Metrics.ScheduledTaskCount + e.Metrics.RunningTaskCount}
}

func (s *Server) adminReplication(c *call) error {
	return s.renderReplication(c, http.StatusOK, map[string]any{"Form": newPolicyForm()})
}

func (s *Server) renderReplication(c *call, st int, extra map[string]any) error {
	regs, regNames, err := s.registryNames(c)
	if err != nil {
		return err
	}
	policies, _, err := s.svc.Replication.Policies(c.ctx, c.who, query.Query{}, query.Page{Number: 1, Size: 100})
	if err != nil {
		return err
	}
	polNames := map[int64]string{}
	rows := make([]policyForm, len(policies))
	for i, p := range policies {
		rows[i] = formOfPolicy(p)
		rows[i].SourceName, rows[i].DestName, rows[i].Operator = regNames[p.SrcRegistry], regNames[p.DestRegistry], p.Creator
		polNames[p.ID] = p.Name
	}
	page := c.pageOf()
	execs, total, err := s.svc.Replication.Executions(c.ctx, c.who, replication.ExecutionFilter{Policy: -1}, query.Query{}, page)
	if err != nil {
		return err
	}
	erows := make([]executionRow, len(execs))
	for i, e := range execs {
		erows[i] = newExecutionRow(e, polNames[e.VendorID])
	}
	return s.renderAdmin(c, st, "replication", "Replication", withData(map[string]any{
		"Policies": rows, "Registries": regs, "Executions": erows, "Pager": newPager(c.r.URL, page, total),
		"Flattenings": flattenings, "Triggers": []string{endpoint.TriggerManual, endpoint.TriggerScheduled, endpoint.TriggerEvent},
	}, extra))
}

func running(status string) bool {
	return status == task.StatusRunning || status == task.StatusPending
}

func (s *Server) adminCreatePolicy(c *call) error {
	f := readPolicyForm(c.r.PostForm)
	_, err := s.svc.Replication.CreatePolicy(c.ctx, c.who, f.policy())
	if formError(err) {
		return s.renderReplication(c, status(err), map[string]any{"Form": f, "FormError": err.Error()})
	}
	if err != nil {
		return err
	}
	c.flash("Replication policy " + f.Name + " created.")
	return c.redirect("/admin/replication")
}

// adminEditPolicy shows a policy in the form, to change it.
func (s *Server) adminEditPolicy(c *call) error {
	id, err := c.pathID("id", "policy")
	if err != nil {
		return err
	}
	p, err := s.svc.Replication.Policy(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	return s.renderReplication(c, http.StatusOK, map[string]any{"Form": formOfPolicy(p), "Editing": true})
}

// adminChangePolicy saves, runs or deletes a policy.
func (s *Server) adminChangePolicy(c *call) error {
	id, err := c.pathID("id", "policy")
	if err != nil {
		return err
	}
	switch c.r.PostForm.Get("action") {
	case "save":
		f := readPolicyForm(c.r.PostForm)
		f.ID = id
		err := s.svc.Replication.UpdatePolicy(c.ctx, c.who, id, f.policy())
		if formError(err) {
			return s.renderReplication(c, status(err), map[string]any{"Form": f, "Editing": true, "FormError": err.Error()})
		}
		if err != nil {
			return err
		}
		c.flash("Replication policy " + f.Name + " saved.")
	case "run":
		exec, err := s.svc.Replication.Start(c.ctx, c.who, id)
		if formError(err) {
			c.flash("Could not start the replication: " + err.Error())
			return c.redirect("/admin/replication")
		}
		if err != nil {
			return err
		}
		c.flash("Replication started.")
		return c.redirect("/admin/replication/executions/" + strconv.FormatInt(exec, 10))
	case "delete":
		err := s.svc.Replication.DeletePolicy(c.ctx, c.who, id)
		if formError(err) {
			c.flash("Could not delete the policy: " + err.Error())
			return c.redirect("/admin/replication")
		}
		if err != nil {
			return err
		}
		c.flash("Replication policy deleted.")
	default:
		return notFound("no action " + c.r.PostForm.Get("action"))
	}
	return c.redirect("/admin/replication")
}

// taskRow is a replication task as the execution page lists it.
type taskRow struct {
	task.Task
	Operation, ResourceType, Source, Destination string
}

// adminExecution shows an execution and its tasks.
func (s *Server) adminExecution(c *call) error {
	id, err := c.pathID("id", "execution")
	if err != nil {
		return err
	}
	e, err := s.svc.Replication.Execution(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	policy := ""
	if p, err := s.svc.Replication.Policy(c.ctx, c.who, e.VendorID); err == nil {
		policy = p.Name
	}
	page := c.pageOf()
	tasks, total, err := s.svc.Replication.Tasks(c.ctx, c.who, id, query.Query{}, page)
	if err != nil {
		return err
	}
	rows := make([]taskRow, len(tasks))
	for i, t := range tasks {
		str := func(k string) string { v, _ := t.ExtraAttrs[k].(string); return v }
		rows[i] = taskRow{Task: t, Operation: str("operation"), ResourceType: str("resource_type"),
			Source: str("source_resource"), Destination: str("destination_resource")}
	}
	return s.renderAdmin(c, http.StatusOK, "replication", "Replication execution "+strconv.FormatInt(id, 10), map[string]any{
		"Execution": newExecutionRow(e, policy), "Tasks": rows, "Pager": newPager(c.r.URL, page, total),
	})
}

func (s *Server) adminStopExecution(c *call) error {
	id, err := c.pathID("id", "execution")
	if err != nil {
		return err
	}
	if err := s.svc.Replication.Stop(c.ctx, c.who, id); formError(err) {
		c.flash("Could not stop the execution: " + err.Error())
	} else if err != nil {
		return err
	} else {
		c.flash("Execution stopped.")
	}
	return c.redirect("/admin/replication/executions/" + strconv.FormatInt(id, 10))
}

func (s *Server) adminTaskLog(c *call) error {
	id, err := c.pathID("id", "execution")
	if err != nil {
		return err
	}
	tid, err := c.pathID("tid", "task")
	if err != nil {
		return err
	}
	b, err := s.svc.Replication.TaskLog(c.ctx, c.who, id, tid)
	if err != nil {
		return err
	}
	return c.text(b)
}
