package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/immutable"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/label"
	"github.com/lading-dev/lading/internal/retention"
	"github.com/lading-dev/lading/internal/selector"
	"github.com/lading-dev/lading/internal/sysjob"
	"github.com/lading-dev/lading/internal/task"
)

// The registry's lifecycle: immutable tag rules, labels, tag retention,
// garbage collection and the audit log purge.

func (s *Server) lifecycleRoutes() {
	p := Prefix
	const rules = "/projects/{project_name_or_id}/immutabletagrules"
	s.handle("GET "+p+rules, s.listImmutableRules)
	s.handle("POST "+p+rules, s.createImmutableRule)
	s.handle("PUT "+p+rules+"/{immutable_rule_id}", s.updateImmutableRule)
	s.handle("DELETE "+p+rules+"/{immutable_rule_id}", s.deleteImmutableRule)

	s.handle("GET "+p+"/labels", s.listLabels)
	s.handle("POST "+p+"/labels", s.createLabel)
	s.handle("GET "+p+"/labels/{label_id}", s.getLabel)
	s.handle("PUT "+p+"/labels/{label_id}", s.updateLabel)
	s.handle("DELETE "+p+"/labels/{label_id}", s.deleteLabel)
	const artLabels = "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}/labels"
	s.handle("POST "+p+artLabels, s.addArtifactLabel)
	s.handle("DELETE "+p+artLabels+"/{label_id}", s.removeArtifactLabel)

	s.handle("GET "+p+"/retentions/metadatas", s.retentionMetadata)
	s.handle("POST "+p+"/retentions", s.createRetention)
	s.handle("GET "+p+"/retentions/{id}", s.getRetention)
	s.handle("PUT "+p+"/retentions/{id}", s.updateRetention)
	s.handle("DELETE "+p+"/retentions/{id}", s.deleteRetention)
	s.handle("POST "+p+"/retentions/{id}/executions", s.triggerRetention)
	s.handle("GET "+p+"/retentions/{id}/executions", s.listRetentionExecutions)
	s.handle("PATCH "+p+"/retentions/{id}/executions/{eid}", s.operateRetentionExecution)
	s.handle("GET "+p+"/retentions/{id}/executions/{eid}/tasks", s.listRetentionTasks)
	s.handle("GET "+p+"/retentions/{id}/executions/{eid}/tasks/{tid}", s.retentionTaskLog)

	for _, v := range []struct {
		path, param string
		svc         func() *sysjob.Service
	}{
		{"/system/gc", "gc_id", func() *sysjob.Service { return s.svc.GC.Service }},
		{"/system/purgeaudit", "purge_id", func() *sysjob.Service { return s.svc.Purge.Service }},
	} {
		sys := sysJobAPI{s: s, svc: v.svc, param: v.param}
		s.handle("GET "+p+v.path+"/schedule", sys.getSchedule)
		s.handle("POST "+p+v.path+"/schedule", sys.setSchedule(true))
		s.handle("PUT "+p+v.path+"/schedule", sys.setSchedule(false))
		s.handle("GET "+p+v.path, sys.history)
		s.handle("GET "+p+v.path+"/{"+v.param+"}", sys.get)
		s.handle("PUT "+p+v.path+"/{"+v.param+"}", sys.stop)
		s.handle("GET "+p+v.path+"/{"+v.param+"}/log", sys.log)
	}
}

// Immutable tag rules.

type immutableRuleJSON struct {
	ID             int64                          `json:"id"`
	ProjectID      int64                          `json:"project_id,omitempty"`
	Priority       int                            `json:"priority"`
	Disabled       bool                           `json:"disabled"`
	Action         string                         `json:"action"`
	Template       string                         `json:"template"`
	Params         map[string]any                 `json:"params,omitempty"`
	TagSelectors   []selector.Selector            `json:"tag_selectors"`
	ScopeSelectors map[string][]selector.Selector `json:"scope_selectors"`
}

func toImmutableRule(r immutable.Rule) immutableRuleJSON {
	return immutableRuleJSON{ID: r.ID, ProjectID: r.ProjectID, Priority: r.Priority, Disabled: r.Disabled, Action: immutable.Action, Template: immutable.Template,
		TagSelectors: []selector.Selector{r.Tags}, ScopeSelectors: map[string][]selector.Selector{"repository": {r.Repositories}}}
}

func (j immutableRuleJSON) rule() (immutable.Rule, error) {
	if j.Action != "" && j.Action != immutable.Action {
		return immutable.Rule{}, errdefs.InvalidArgument(errors.New(`the action of an immutable rule is "immutable"`))
	}
	if len(j.TagSelectors) > 1 || len(j.ScopeSelectors["repository"]) > 1 {
		return immutable.Rule{}, errdefs.InvalidArgument(errors.New("an immutable rule has one tag selector and one repository selector"))
	}
	for k := range j.ScopeSelectors {
		if k != "repository" {
			return immutable.Rule{}, errdefs.InvalidArgument(errors.New(`scope_selectors takes "repository" only`))
		}
	}
	r := immutable.Rule{Priority: j.Priority, Disabled: j.Disabled}
	if len(j.TagSelectors) == 1 {
		r.Tags = j.TagSelectors[0]
	}
	if rs := j.ScopeSelectors["repository"]; len(rs) == 1 {
		r.Repositories = rs[0]
	}
	return r, nil
}

func (s *Server) listImmutableRules(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Immutable.List(c.ctx, c.who, c.projectRef("project_name_or_id"), q, page)
	if err != nil {
		return err
	}
	out := make([]immutableRuleJSON, len(list))
	for i, r := range list {
		out[i] = toImmutableRule(r)
	}
	return c.list(page, total, out)
}

func (s *Server) createImmutableRule(c *call) error {
	var req immutableRuleJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	r, err := req.rule()
	if err != nil {
		return err
	}
	id, err := s.svc.Immutable.Create(c.ctx, c.who, c.projectRef("project_name_or_id"), r)
	if err != nil {
		return err
	}
	return c.created(strconv.FormatInt(id, 10))
}

func (s *Server) updateImmutableRule(c *call) error {
	id, err := c.id("immutable_rule_id")
	if err != nil {
		return err
	}
	var req immutableRuleJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	if req.ID != 0 && req.ID != id {
		return errdefs.InvalidArgument(errors.New("the immutable_rule_id doesn't match the id in the payload body of ImmutableRule"))
	}
	r, err := req.rule()
	if err != nil {
		return err
	}
	if err := s.svc.Immutable.Update(c.ctx, c.who, c.projectRef("project_name_or_id"), id, r); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) deleteImmutableRule(c *call) error {
	id, err := c.id("immutable_rule_id")
	if err != nil {
		return err
	}
	if err := s.svc.Immutable.Delete(c.ctx, c.who, c.projectRef("project_name_or_id"), id); err != nil {
		return err
	}
	return c.ok()
}

// Labels.

type labelJSON struct {
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	Description  string    `json:"description"`
	Color        string    `json:"color"`
	Scope        string    `json:"scope"`
	ProjectID    int64     `json:"project_id"`
	CreationTime time.Time `json:"creation_time"`
	UpdateTime   time.Time `json:"update_time"`
	Deleted      bool      `json:"deleted"`
}

func toLabel(l label.Label) labelJSON {
	return labelJSON{ID: l.ID, Name: l.Name, Description: l.Description, Color: l.Color, Scope: l.Scope, ProjectID: l.ProjectID,
		CreationTime: l.Created.UTC(), UpdateTime: l.Updated.UTC()}
}

func (s *Server) listLabels(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	v := c.r.URL.Query()
	var pid int64
	if p := v.Get("project_id"); p != "" {
		if pid, err = strconv.ParseInt(p, 10, 64); err != nil {
			return errdefs.InvalidArgument(errors.New("project_id: want an integer"))
		}
	}
	list, total, err := s.svc.Labels.List(c.ctx, c.who, v.Get("scope"), pid, v.Get("name"), q, page)
	if err != nil {
		return err
	}
	out := make([]labelJSON, len(list))
	for i, l := range list {
		out[i] = toLabel(l)
	}
	return c.list(page, total, out)
}

func (s *Server) createLabel(c *call) error {
	var req labelJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	id, err := s.svc.Labels.Create(c.ctx, c.who, label.Label{Name: req.Name, Description: req.Description, Color: req.Color, Scope: req.Scope, ProjectID: req.ProjectID})
	if err != nil {
		return err
	}
	return c.created(strconv.FormatInt(id, 10))
}

func (s *Server) getLabel(c *call) error {
	id, err := c.id("label_id")
	if err != nil {
		return err
	}
	l, err := s.svc.Labels.Get(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toLabel(l))
}

func (s *Server) updateLabel(c *call) error {
	id, err := c.id("label_id")
	if err != nil {
		return err
	}
	var req labelJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := s.svc.Labels.Update(c.ctx, c.who, id, label.Label{Name: req.Name, Description: req.Description, Color: req.Color}); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) deleteLabel(c *call) error {
	id, err := c.id("label_id")
	if err != nil {
		return err
	}
	if err := s.svc.Labels.Delete(c.ctx, c.who, id); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) addArtifactLabel(c *call) error {
	var req labelJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := s.svc.Labels.Attach(c.ctx, c.who, c.project(), c.repoName(), c.r.PathValue("reference"), req.ID); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) removeArtifactLabel(c *call) error {
	id, err := c.id("label_id")
	if err != nil {
		return err
	}
	if err := s.svc.Labels.Detach(c.ctx, c.who, c.project(), c.repoName(), c.r.PathValue("reference"), id); err != nil {
		return err
	}
	return c.ok()
}

// decorate adds to listed artifacts what the request asks for:
// with_label=true their labels, with_immutable_status=true whether each
// tag is immutable.
func (s *Server) decorate(c *call, arts []artifact.Artifact, out []artifactJSON) error {
	v := c.r.URL.Query()
	if v.Get("with_label") == "true" && s.svc.Labels != nil {
		ids := make([]int64, len(arts))
		for i, a := range arts {
			ids[i] = a.ID
		}
		labels, err := s.svc.Labels.Of(c.ctx, ids)
		if err != nil {
			return err
		}
		for i, a := range arts {
			for _, l := range labels[a.ID] {
				out[i].Labels = append(out[i].Labels, toLabel(l))
			}
		}
	}
	if v.Get("with_immutable_status") == "true" && s.svc.Immutable != nil {
		for i, a := range arts {
			if err := s.markImmutable(c, a.RepositoryName, out[i].Tags); err != nil {
				return err
			}
		}
	}
	return nil
}

// markImmutable sets the immutable flag of tags of repo.
func (s *Server) markImmutable(c *call, repo string, tags []tagJSON) error {
	if len(tags) == 0 {
		return nil
	}
	names := make([]string, len(tags))
	for i, t := range tags {
		names[i] = t.Name
	}
	prot, err := s.svc.Immutable.Protected(c.ctx, repo, names)
	if err != nil {
		return err
	}
	for i := range tags {
		_, tags[i].Immutable = prot[tags[i].Name]
	}
	return nil
}

// Tag retention.

type selectorMetadataJSON struct {
	DisplayText string   `json:"display_text"`
	Kind        string   `json:"kind"`
	Decorations []string `json:"decorations"`
}

func (s *Server) retentionMetadata(c *call) error {
	if err := s.svc.Retention.Metadata(c.ctx, c.who); err != nil {
		return err
	}
	return c.json(http.StatusOK, struct {
		Templates      []retention.Template   `json:"templates"`
		ScopeSelectors []selectorMetadataJSON `json:"scope_selectors"`
		TagSelectors   []selectorMetadataJSON `json:"tag_selectors"`
	}{retention.Templates,
		[]selectorMetadataJSON{{"Repositories", selector.Kind, selector.RepoDecorations}},
		[]selectorMetadataJSON{{"Tags", selector.Kind, selector.TagDecorations}}})
}

func (s *Server) createRetention(c *call) error {
	var p retention.Policy
	if err := c.decode(&p); err != nil {
		return err
	}
	id, err := s.svc.Retention.Create(c.ctx, c.who, p)
	if err != nil {
		return err
	}
	return c.created(strconv.FormatInt(id, 10))
}

func (s *Server) getRetention(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	p, err := s.svc.Retention.Get(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, p)
}

func (s *Server) updateRetention(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	var p retention.Policy
	if err := c.decode(&p); err != nil {
		return err
	}
	if err := s.svc.Retention.Update(c.ctx, c.who, id, p); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) deleteRetention(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	if err := s.svc.Retention.Delete(c.ctx, c.who, id); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) triggerRetention(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	var req struct {
		DryRun bool `json:"dry_run"`
	}
	if c.r.ContentLength != 0 {
		if err := c.decode(&req); err != nil {
			return err
		}
	}
	exec, err := s.svc.Retention.Trigger(c.ctx, c.who, id, req.DryRun)
	if err != nil {
		return err
	}
	return c.created(strconv.FormatInt(exec, 10))
}

type retentionExecutionJSON struct {
	ID        int64  `json:"id"`
	PolicyID  int64  `json:"policy_id"`
	StartTime string `json:"start_time"`
	EndTime   string `json:"end_time"`
	Status    string `json:"status"`
	Trigger   string `json:"trigger"`
	DryRun    bool   `json:"dry_run"`
}

func (s *Server) listRetentionExecutions(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	page, err := c.page()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Retention.Executions(c.ctx, c.who, id, page)
	if err != nil {
		return err
	}
	out := make([]retentionExecutionJSON, len(list))
	for i, e := range list {
		out[i] = retentionExecutionJSON{ID: e.ID, PolicyID: e.PolicyID, StartTime: harborTime(e.StartTime), EndTime: harborTime(e.EndTime),
			Status: e.Status, Trigger: e.Trigger, DryRun: e.DryRun}
	}
	return c.list(page, total, out)
}

func (s *Server) operateRetentionExecution(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	eid, err := c.id("eid")
	if err != nil {
		return err
	}
	var req struct {
		Action string `json:"action"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := s.svc.Retention.Operate(c.ctx, c.who, id, eid, req.Action); err != nil {
		return err
	}
	return c.ok()
}

type retentionTaskJSON struct {
	ID             int64  `json:"id"`
	ExecutionID    int64  `json:"execution_id"`
	Repository     string `json:"repository"`
	JobID          string `json:"job_id"`
	Status         string `json:"status"`
	StatusCode     int    `json:"status_code"`
	StatusRevision int64  `json:"status_revision"`
	StartTime      string `json:"start_time"`
	EndTime        string `json:"end_time"`
	Total          int64  `json:"total"`
	Retained       int64  `json:"retained"`
}

func (s *Server) listRetentionTasks(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	eid, err := c.id("eid")
	if err != nil {
		return err
	}
	page, err := c.page()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Retention.Tasks(c.ctx, c.who, id, eid, page)
	if err != nil {
		return err
	}
	out := make([]retentionTaskJSON, len(list))
	for i, t := range list {
		out[i] = retentionTaskJSON{ID: t.ID, ExecutionID: t.ExecutionID, Repository: t.Repository, JobID: strconv.FormatInt(t.JobID, 10), Status: t.Status,
			StatusCode: t.StatusCode, StartTime: harborTime(t.StartTime), EndTime: harborTime(t.EndTime), Total: t.Total, Retained: t.Retained}
	}
	return c.list(page, total, out)
}

func (s *Server) retentionTaskLog(c *call) error {
	var ids [3]int64
	for i, p := range []string{"id", "eid", "tid"} {
		n, err := c.id(p)
		if err != nil {
			return err
		}
		ids[i] = n
	}
	b, err := s.svc.Retention.TaskLog(c.ctx, c.who, ids[0], ids[1], ids[2])
	if err != nil {
		return err
	}
	return c.text(b)
}

// System jobs: garbage collection and the audit log purge.

type sysJobAPI struct {
	s     *Server
	svc   func() *sysjob.Service
	param string
}

type scheduleObjJSON struct {
	Type              string    `json:"type"`
	Cron              string    `json:"cron"`
	NextScheduledTime time.Time `json:"next_scheduled_time"`
}

// execHistoryJSON is Harbor's GCHistory and ExecHistory.
type execHistoryJSON struct {
	ID            int64            `json:"id"`
	JobName       string           `json:"job_name"`
	JobKind       string           `json:"job_kind"`
	JobParameters string           `json:"job_parameters"`
	JobStatus     string           `json:"job_status"`
	Deleted       bool             `json:"deleted"`
	Schedule      *scheduleObjJSON `json:"schedule"`
	CreationTime  time.Time        `json:"creation_time"`
	UpdateTime    time.Time        `json:"update_time"`
}

func toExecHistory(e task.Execution) execHistoryJSON {
	params := map[string]any{}
	for k, v := range e.ExtraAttrs {
		if k != "operator" {
			params[k] = v
		}
	}
	b, _ := json.Marshal(params)
	typ := strings.ToUpper(e.Trigger[:min(1, len(e.Trigger))]) + strings.ToLower(e.Trigger[min(1, len(e.Trigger)):])
	updated := e.EndTime
	if updated.IsZero() {
		updated = e.StartTime
	}
	return execHistoryJSON{ID: e.ID, JobName: e.VendorType, JobKind: e.Trigger, JobParameters: string(b), JobStatus: e.Status,
		Schedule: &scheduleObjJSON{Type: typ}, CreationTime: e.StartTime.UTC(), UpdateTime: updated.UTC()}
}

func (a sysJobAPI) getSchedule(c *call) error {
	sch, ok, err := a.svc().Schedule(c.ctx, c.who)
	if err != nil {
		return err
	}
	if !ok {
		// Harbor answers 200 without a body when there is no schedule.
		c.w.WriteHeader(http.StatusOK)
		return nil
	}
	b, _ := json.Marshal(sch.Params)
	return c.json(http.StatusOK, execHistoryJSON{ID: sch.ID, JobKind: sch.Cron, JobParameters: string(b),
		Schedule:     &scheduleObjJSON{Type: sch.Type, Cron: sch.Cron, NextScheduledTime: sch.Next.UTC()},
		CreationTime: sch.Created.UTC(), UpdateTime: sch.Updated.UTC()})
}

func (a sysJobAPI) setSchedule(create bool) handlerFunc {
	return func(c *call) error {
		var req struct {
			Schedule *struct {
				Type string `json:"type"`
				Cron string `json:"cron"`
			} `json:"schedule"`
			Parameters map[string]any `json:"parameters"`
		}
		if err := c.decode(&req); err != nil {
			return err
		}
		if req.Schedule == nil {
			return errdefs.InvalidArgument(errors.New("schedule cann't be empty"))
		}
		if req.Schedule.Type != jobs.TypeManual && !create && req.Schedule.Type == "" {
			return errdefs.InvalidArgument(errors.New("schedule.type is required: Hourly, Daily, Weekly, Custom, Manual or None"))
		}
		exec, err := a.svc().SetSchedule(c.ctx, c.who, req.Schedule.Type, req.Schedule.Cron, req.Parameters, create)
		if err != nil {
			return err
		}
		if !create {
			return c.ok()
		}
		if exec > 0 {
			c.w.Header().Set("Location", Prefix+strings.TrimSuffix(strings.TrimPrefix(c.r.URL.Path, Prefix), "/schedule")+"/"+strconv.FormatInt(exec, 10))
		}
		c.w.WriteHeader(http.StatusCreated)
		return nil
	}
}

func (a sysJobAPI) history(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	list, total, err := a.svc().History(c.ctx, c.who, q, page)
	if err != nil {
		return err
	}
	out := make([]execHistoryJSON, len(list))
	for i, e := range list {
		out[i] = toExecHistory(e)
	}
	return c.list(page, total, out)
}

func (a sysJobAPI) get(c *call) error {
	id, err := c.id(a.param)
	if err != nil {
		return err
	}
	e, err := a.svc().Execution(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toExecHistory(e))
}

func (a sysJobAPI) stop(c *call) error {
	id, err := c.id(a.param)
	if err != nil {
		return err
	}
	if err := a.svc().Stop(c.ctx, c.who, id); err != nil {
		return err
	}
	return c.ok()
}

func (a sysJobAPI) log(c *call) error {
	id, err := c.id(a.param)
	if err != nil {
		return err
	}
	b, err := a.svc().Log(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	return c.text(b)
}
