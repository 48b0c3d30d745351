package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/lading-dev/lading/internal/task"
	"github.com/lading-dev/lading/internal/webhook"
)

// The webhook endpoints: Harbor's /projects/{p}/webhook/...

// webhookPolicyJSON is Harbor's WebhookPolicy.
type webhookPolicyJSON struct {
	ID           int64            `json:"id"`
	Name         string           `json:"name"`
	Description  string           `json:"description"`
	ProjectID    int64            `json:"project_id"`
	Targets      []webhook.Target `json:"targets"`
	EventTypes   []string         `json:"event_types"`
	Creator      string           `json:"creator"`
	CreationTime time.Time        `json:"creation_time"`
	UpdateTime   time.Time        `json:"update_time"`
	Enabled      bool             `json:"enabled"`
}

func toWebhookPolicy(p webhook.Policy) webhookPolicyJSON {
	return webhookPolicyJSON{ID: p.ID, Name: p.Name, Description: p.Description, ProjectID: p.ProjectID, Targets: p.Targets,
		EventTypes: p.EventTypes, Creator: p.Creator, CreationTime: p.Created.UTC(), UpdateTime: p.Updated.UTC(), Enabled: p.Enabled}
}

func (j webhookPolicyJSON) policy() webhook.Policy {
	return webhook.Policy{Name: j.Name, Description: j.Description, Targets: j.Targets, EventTypes: j.EventTypes, Enabled: j.Enabled}
}

// executionJSON is Harbor's Execution.
type executionJSON struct {
	ID            int64          `json:"id"`
	VendorType    string         `json:"vendor_type"`
	VendorID      int64          `json:"vendor_id"`
	Status        string         `json:"status"`
	StatusMessage string         `json:"status_message"`
	Metrics       *task.Metrics  `json:"metrics"`
	Trigger       string         `json:"trigger"`
	ExtraAttrs    map[string]any `json:"extra_attrs"`
	StartTime     string         `json:"start_time"`
	EndTime       string         `json:"end_time"`
}

// taskJSON is Harbor's Task.
type taskJSON struct {
	ID            int64          `json:"id"`
	ExecutionID   int64          `json:"execution_id"`
	Status        string         `json:"status"`
	StatusMessage string         `json:"status_message"`
	RunCount      int            `json:"run_count"`
	ExtraAttrs    map[string]any `json:"extra_attrs"`
	CreationTime  string         `json:"creation_time"`
	UpdateTime    string         `json:"update_time"`
	StartTime     string         `json:"start_time"`
	EndTime       string         `json:"end_time"`
}

// harborTime is how Harbor writes the times of executions and tasks
// (RFC 3339, seconds; a zero time as Go's zero time).
func harborTime(t time.Time) string {
	if t.IsZero() {
		return time.Time{}.Format(time.RFC3339)
	}
	return t.UTC().Format(time.RFC3339)
}

func toExecution(e task.Execution) executionJSON {
	m := e.Metrics
	return executionJSON{ID: e.ID, VendorType: e.VendorType, VendorID: e.VendorID, Status: e.Status, StatusMessage: e.StatusMessage,
		Metrics: &m, Trigger: e.Trigger, ExtraAttrs: e.ExtraAttrs, StartTime: harborTime(e.StartTime), EndTime: harborTime(e.EndTime)}
}

func toTask(t task.Task) taskJSON {
	return taskJSON{ID: t.ID, ExecutionID: t.ExecutionID, Status: t.Status, StatusMessage: t.StatusMessage, RunCount: t.RunCount,
		ExtraAttrs: t.ExtraAttrs, CreationTime: harborTime(t.CreationTime), UpdateTime: harborTime(t.UpdateTime),
		StartTime: harborTime(t.StartTime), EndTime: harborTime(t.EndTime)}
}

func (s *Server) listWebhookPolicies(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Webhooks.Policies(c.ctx, c.who, c.projectRef("project_name_or_id"), q, page)
	if err != nil {
		return err
	}
	out := make([]webhookPolicyJSON, len(list))
	for i, p := range list {
		out[i] = toWebhookPolicy(p)
	}
	return c.list(page, total, out)
}

func (s *Server) createWebhookPolicy(c *call) error {
	var req webhookPolicyJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	id, err := s.svc.Webhooks.Create(c.ctx, c.who, c.projectRef("project_name_or_id"), req.policy())
	if err != nil {
		return err
	}
	return c.created(strconv.FormatInt(id, 10))
}

func (s *Server) getWebhookPolicy(c *call) error {
	id, err := c.id("webhook_policy_id")
	if err != nil {
		return err
	}
	p, err := s.svc.Webhooks.Policy(c.ctx, c.who, c.projectRef("project_name_or_id"), id)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toWebhookPolicy(p))
}

func (s *Server) updateWebhookPolicy(c *call) error {
	id, err := c.id("webhook_policy_id")
	if err != nil {
		return err
	}
	var req webhookPolicyJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := s.svc.Webhooks.Update(c.ctx, c.who, c.projectRef("project_name_or_id"), id, req.policy()); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) deleteWebhookPolicy(c *call) error {
	id, err := c.id("webhook_policy_id")
	if err != nil {
		return err
	}
	if err := s.svc.Webhooks.Delete(c.ctx, c.who, c.projectRef("project_name_or_id"), id); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) webhookEvents(c *call) error {
	if err := s.svc.Webhooks.Supported(c.ctx, c.who, c.projectRef("project_name_or_id")); err != nil {
		return err
	}
	type format struct {
		NotifyType string   `json:"notify_type"`
		Formats    []string `json:"formats"`
	}
	return c.json(http.StatusOK, struct {
		EventType      []string `json:"event_type"`
		NotifyType     []string `json:"notify_type"`
		PayloadFormats []format `json:"payload_formats"`
	}{webhook.EventTypes, webhook.NotifyTypes, []format{{webhook.NotifyTypeHTTP, webhook.PayloadFormats}}})
}

func (s *Server) listWebhookExecutions(c *call) error {
	id, err := c.id("webhook_policy_id")
	if err != nil {
		return err
	}
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Webhooks.Executions(c.ctx, c.who, c.projectRef("project_name_or_id"), id, q, page)
	if err != nil {
		return err
	}
	out := make([]executionJSON, len(list))
	for i, e := range list {
		out[i] = toExecution(e)
	}
	return c.list(page, total, out)
}

func (s *Server) listWebhookTasks(c *call) error {
	id, err := c.id("webhook_policy_id")
	if err != nil {
		return err
	}
	exec, err := c.id("execution_id")
	if err != nil {
		return err
	}
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Webhooks.Tasks(c.ctx, c.who, c.projectRef("project_name_or_id"), id, exec, q, page)
	if err != nil {
		return err
	}
	out := make([]taskJSON, len(list))
	for i, t := range list {
		out[i] = toTask(t)
	}
	return c.list(page, total, out)
}

func (s *Server) webhookTaskLog(c *call) error {
	var ids [3]int64
	for i, p := range []string{"webhook_policy_id", "execution_id", "task_id"} {
		n, err := c.id(p)
		if err != nil {
			return err
		}
		ids[i] = n
	}
	log, err := s.svc.Webhooks.TaskLog(c.ctx, c.who, c.projectRef("project_name_or_id"), ids[0], ids[1], ids[2])
	if err != nil {
		return err
	}
	return c.text(log)
}
