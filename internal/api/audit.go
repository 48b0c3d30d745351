package api

import (
	"net/http"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/project"
)

// auditLogJSON is Harbor's AuditLog (the older /audit-logs).
type auditLogJSON struct {
	ID           int64     `json:"id"`
	Username     string    `json:"username"`
	Resource     string    `json:"resource"`
	ResourceType string    `json:"resource_type"`
	Operation    string    `json:"operation"`
	OpTime       time.Time `json:"op_time"`
}

// auditLogExtJSON is Harbor's AuditLogExt (2.13+).
type auditLogExtJSON struct {
	ID                   int64     `json:"id"`
	Username             string    `json:"username"`
	Resource             string    `json:"resource"`
	ResourceType         string    `json:"resource_type"`
	Operation            string    `json:"operation"`
	OperationDescription string    `json:"operation_description"`
	OperationResult      bool      `json:"operation_result"`
	OpTime               time.Time `json:"op_time"`
}

// auditList answers a page of the log in the old or the new shape.
func (s *Server) auditList(c *call, project int64, ext bool) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Audit.List(c.ctx, c.who, project, q, page)
	if err != nil {
		return err
	}
	if ext {
		out := make([]auditLogExtJSON, len(list))
		for i, e := range list {
			out[i] = auditLogExtJSON{ID: e.ID, Username: e.Username, Resource: e.Resource, ResourceType: e.ResourceType, Operation: e.Operation,
				OperationDescription: e.Description, OperationResult: !e.Failed, OpTime: e.Time.UTC()}
		}
		return c.list(page, total, out)
	}
	out := make([]auditLogJSON, len(list))
	for i, e := range list {
		out[i] = auditLogJSON{ID: e.ID, Username: e.Username, Resource: e.Resource, ResourceType: e.ResourceType, Operation: e.Operation, OpTime: e.Time.UTC()}
	}
	return c.list(page, total, out)
}

func (s *Server) auditLogs(c *call) error    { return s.auditList(c, 0, false) }
func (s *Server) auditLogExts(c *call) error { return s.auditList(c, 0, true) }

// projectAudit resolves the project of /projects/{project_name}/logs with
// the log permission, then lists.
func (s *Server) projectAudit(c *call, ext bool) error {
	p, err := s.svc.Projects.Authorize(c.ctx, c.who, project.Ref{Name: c.r.PathValue("project_name")}, access.List, access.Log)
	if err != nil {
		return err
	}
	return s.auditList(c, p.ID, ext)
}

func (s *Server) projectLogs(c *call) error    { return s.projectAudit(c, false) }
func (s *Server) projectLogExts(c *call) error { return s.projectAudit(c, true) }

func (s *Server) auditEventTypes(c *call) error {
	if err := s.svc.Access.Require(c.ctx, c.who, access.List, access.AuditLog, 0); err != nil {
		return err
	}
	out := []map[string]string{}
	for _, t := range audit.EventTypes {
		out = append(out, map[string]string{"event_type": t})
	}
	return c.json(http.StatusOK, out)
}
