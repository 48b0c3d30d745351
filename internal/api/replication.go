package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/replication"
	"github.com/lading-dev/lading/internal/task"
)

// The endpoints of registries and replication: Harbor's /registries,
// /replication/adapters, /replication/adapterinfos,
// /replication/policies and /replication/executions.

// credentialJSON is Harbor's RegistryCredential.
type credentialJSON struct {
	Type         string `json:"type"`
	AccessKey    string `json:"access_key"`
	AccessSecret string `json:"access_secret"`
}

// registryJSON is Harbor's Registry.
type registryJSON struct {
	ID            int64           `json:"id"`
	URL           string          `json:"url"`
	Name          string          `json:"name"`
	Credential    *credentialJSON `json:"credential,omitempty"`
	Type          string          `json:"type"`
	Insecure      bool            `json:"insecure"`
	CACertificate *string         `json:"ca_certificate,omitempty"`
	Description   string          `json:"description"`
	Status        string          `json:"status"`
	CreationTime  time.Time       `json:"creation_time"`
	UpdateTime    time.Time       `json:"update_time"`
}

func toRegistry(r replication.Registry) registryJSON {
	out := registryJSON{ID: r.ID, URL: r.URL, Name: r.Name, Type: r.Type, Insecure: r.Insecure, Description: r.Description,
		Status: r.Status, CreationTime: r.Created.UTC(), UpdateTime: r.Updated.UTC()}
	if r.Credential.Type != "" || r.Credential.AccessKey != "" || r.Credential.AccessSecret != "" {
		out.Credential = &credentialJSON{Type: r.Credential.Type, AccessKey: r.Credential.AccessKey, AccessSecret: r.Credential.AccessSecret}
	}
	if r.CACertificate != "" {
		out.CACertificate = &r.CACertificate
	}
	return out
}

func (j registryJSON) registry() replication.Registry {
	r := replication.Registry{Name: j.Name, Description: j.Description}
	r.Type, r.URL, r.Insecure = j.Type, j.URL, j.Insecure
	if j.CACertificate != nil {
		r.CACertificate = *j.CACertificate
	}
	if j.Credential != nil {
		r.Credential = endpoint.Credential{Type: j.Credential.Type, AccessKey: j.Credential.AccessKey, AccessSecret: j.Credential.AccessSecret}
	}
	return r
}

func (s *Server) listRegistries(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	if name := c.r.URL.Query().Get("name"); name != "" {
		q = q.WithFuzzy("name", name)
	}
	list, total, err := s.svc.Replication.Registries(c.ctx, c.who, q, page)
	if err != nil {
		return err
	}
	out := make([]registryJSON, len(list))
	for i, r := range list {
		out[i] = toRegistry(r)
	}
	return c.list(page, total, out)
}

func (s *Server) createRegistry(c *call) error {
	var req registryJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	id, err := s.svc.Replication.CreateRegistry(c.ctx, c.who, req.registry())
	if err != nil {
		return err
	}
	return c.created(strconv.FormatInt(id, 10))
}

func (s *Server) getRegistry(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	r, err := s.svc.Replication.Registry(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toRegistry(r))
}

// registryUpdateJSON is Harbor's RegistryUpdate.
type registryUpdateJSON struct {
	Name           *string `json:"name"`
	Description    *string `json:"description"`
	URL            *string `json:"url"`
	CredentialType *string `json:"credential_type"`
	AccessKey      *string `json:"access_key"`
	AccessSecret   *string `json:"access_secret"`
	Insecure       *bool   `json:"insecure"`
	CACertificate  *string `json:"ca_certificate"`
}

func (s *Server) updateRegistry(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	var req registryUpdateJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	u := replication.RegistryUpdate{Name: req.Name, Description: req.Description, URL: req.URL, CredentialType: req.CredentialType,
		AccessKey: req.AccessKey, AccessSecret: req.AccessSecret, Insecure: req.Insecure, CACertificate: req.CACertificate}
	if err := s.svc.Replication.UpdateRegistry(c.ctx, c.who, id, u); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) deleteRegistry(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	if err := s.svc.Replication.DeleteRegistry(c.ctx, c.who, id); err != nil {
		return err
	}
	return c.ok()
}

// registryPingJSON is Harbor's RegistryPing.
type registryPingJSON struct {
	ID             *int64  `json:"id"`
	Type           *string `json:"type"`
	URL            *string `json:"url"`
	CredentialType *string `json:"credential_type"`
	AccessKey      *string `json:"access_key"`
	AccessSecret   *string `json:"access_secret"`
	Insecure       *bool   `json:"insecure"`
	CACertificate  *string `json:"ca_certificate"`
}

func (s *Server) pingRegistry(c *call) error {
	var req registryPingJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	p := replication.RegistryPing{ID: req.ID, Type: req.Type, URL: req.URL, CredentialType: req.CredentialType, AccessKey: req.AccessKey,
		AccessSecret: req.AccessSecret, Insecure: req.Insecure, CACertificate: req.CACertificate}
	if err := s.svc.Replication.PingRegistry(c.ctx, c.who, p); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) registryInfo(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	in, err := s.svc.Replication.RegistryInfo(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, in)
}

func (s *Server) replicationAdapters(c *call) error {
	list, err := s.svc.Replication.Adapters(c.ctx, c.who)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, list)
}

func (s *Server) replicationAdapterInfos(c *call) error {
	m, err := s.svc.Replication.AdapterInfos(c.ctx, c.who)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, m)
}

// policyJSON is Harbor's ReplicationPolicy.
type policyJSON struct {
	ID                        int64                `json:"id"`
	Name                      string               `json:"name"`
	Description               string               `json:"description"`
	SrcRegistry               *registryJSON        `json:"src_registry"`
	DestRegistry              *registryJSON        `json:"dest_registry"`
	DestNamespace             string               `json:"dest_namespace"`
	DestNamespaceReplaceCount *int                 `json:"dest_namespace_replace_count"`
	Trigger                   *replication.Trigger `json:"trigger"`
	Filters                   []replication.Filter `json:"filters"`
	ReplicateDeletion         bool                 `json:"replicate_deletion"`
	Deletion                  bool                 `json:"deletion"`
	Override                  bool                 `json:"override"`
	Enabled                   bool                 `json:"enabled"`
	CreationTime              time.Time            `json:"creation_time"`
	UpdateTime                time.Time            `json:"update_time"`
	Speed                     *int32               `json:"speed"`
	CopyByChunk               *bool                `json:"copy_by_chunk"`
	SingleActiveReplication   *bool                `json:"single_active_replication"`
}

// policy reads a request; dest_namespace_replace_count absent is Harbor's
// legacy -1, and deletion (deprecated) counts as replicate_deletion.
func (j policyJSON) policy() replication.Policy {
	p := replication.Policy{Name: j.Name, Description: j.Description, DestNamespace: j.DestNamespace, DestNamespaceReplaceCount: -1,
		Filters: j.Filters, Trigger: j.Trigger, ReplicateDeletion: j.ReplicateDeletion || j.Deletion, Override: j.Override, Enabled: j.Enabled}
	if j.DestNamespaceReplaceCount != nil {
		p.DestNamespaceReplaceCount = *j.DestNamespaceReplaceCount
	}
	if j.SrcRegistry != nil {
		p.SrcRegistry = j.SrcRegistry.ID
	}
	if j.DestRegistry != nil {
		p.DestRegistry = j.DestRegistry.ID
	}
	if j.Speed != nil {
		p.Speed = *j.Speed
	}
	if j.CopyByChunk != nil {
		p.CopyByChunk = *j.CopyByChunk
	}
	if j.SingleActiveReplication != nil {
		p.SingleActive = *j.SingleActiveReplication
	}
	return p
}

func (s *Server) toPolicy(c *call, p replication.Policy) (policyJSON, error) {
	out := policyJSON{ID: p.ID, Name: p.Name, Description: p.Description, DestNamespace: p.DestNamespace, DestNamespaceReplaceCount: &p.DestNamespaceReplaceCount,
		Trigger: p.Trigger, Filters: p.Filters, ReplicateDeletion: p.ReplicateDeletion, Deletion: p.ReplicateDeletion, Override: p.Override,
		Enabled: p.Enabled, CreationTime: p.Created.UTC(), UpdateTime: p.Updated.UTC(), Speed: &p.Speed, CopyByChunk: &p.CopyByChunk,
		SingleActiveReplication: &p.SingleActive}
	if out.Filters == nil {
		out.Filters = []replication.Filter{}
	}
	for _, x := range []struct {
		id  int64
		dst **registryJSON
	}{{p.SrcRegistry, &out.SrcRegistry}, {p.DestRegistry, &out.DestRegistry}} {
		r, err := s.svc.Replication.RegistryOf(c.ctx, x.id)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return out, err
		}
		j := toRegistry(r)
		*x.dst = &j
	}
	return out, nil
}

func (s *Server) listReplicationPolicies(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	if name := c.r.URL.Query().Get("name"); name != "" {
		q = q.WithFuzzy("name", name)
	}
	list, total, err := s.svc.Replication.Policies(c.ctx, c.who, q, page)
	if err != nil {
		return err
	}
	out := make([]policyJSON, len(list))
	for i, p := range list {
		if out[i], err = s.toPolicy(c, p); err != nil {
			return err
		}
	}
	return c.list(page, total, out)
}

func (s *Server) createReplicationPolicy(c *call) error {
	var req policyJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	id, err := s.svc.Replication.CreatePolicy(c.ctx, c.who, req.policy())
	if err != nil {
		return err
	}
	return c.created(strconv.FormatInt(id, 10))
}

func (s *Server) getReplicationPolicy(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	p, err := s.svc.Replication.Policy(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	out, err := s.toPolicy(c, p)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, out)
}

func (s *Server) updateReplicationPolicy(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	var req policyJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := s.svc.Replication.UpdatePolicy(c.ctx, c.who, id, req.policy()); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) deleteReplicationPolicy(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	if err := s.svc.Replication.DeletePolicy(c.ctx, c.who, id); err != nil {
		return err
	}
	return c.ok()
}

// replicationExecutionJSON is Harbor's ReplicationExecution, statuses
// and triggers in its older names.
type replicationExecutionJSON struct {
	ID         int64  `json:"id"`
	PolicyID   int64  `json:"policy_id"`
	Status     string `json:"status"`
	Trigger    string `json:"trigger"`
	StartTime  string `json:"start_time"`
	EndTime    string `json:"end_time"`
	StatusText string `json:"status_text"`
	Total      int64  `json:"total"`
	Failed     int64  `json:"failed"`
	Succeed    int64  `json:"succeed"`
	InProgress int64  `json:"in_progress"`
	Stopped    int64  `json:"stopped"`
}

func toReplicationExecution(e task.Execution) replicationExecutionJSON {
	m := e.Metrics
	out := replicationExecutionJSON{ID: e.ID, PolicyID: e.VendorID, StatusText: e.StatusMessage, StartTime: harborTime(e.StartTime), EndTime: harborTime(e.EndTime),
		Total: m.TaskCount, Failed: m.ErrorTaskCount, Succeed: m.SuccessTaskCount, InProgress: m.PendingTaskCount + m.ScheduledTaskCount + m.RunningTaskCount, Stopped: m.StoppedTaskCount}
	out.Trigger = map[string]string{task.TriggerManual: "manual", task.TriggerSchedule: "scheduled", task.TriggerEvent: "event_based"}[e.Trigger]
	out.Status = map[string]string{task.StatusRunning: "InProgress", task.StatusPending: "InProgress", task.StatusSuccess: "Succeed", task.StatusStopped: "Stopped", task.StatusError: "Failed"}[e.Status]
	if out.Status == "InProgress" {
		out.EndTime = harborTime(time.Time{})
	}
	return out
}

// replicationTaskJSON is Harbor's ReplicationTask.
type replicationTaskJSON struct {
	ID           int64  `json:"id"`
	ExecutionID  int64  `json:"execution_id"`
	Status       string `json:"status"`
	JobID        string `json:"job_id"`
	Operation    string `json:"operation"`
	ResourceType string `json:"resource_type"`
	SrcResource  string `json:"src_resource"`
	DstResource  string `json:"dst_resource"`
	StartTime    string `json:"start_time"`
	EndTime      string `json:"end_time"`
}

func toReplicationTask(t task.Task) replicationTaskJSON {
	str := func(k string) string { v, _ := t.ExtraAttrs[k].(string); return v }
	out := replicationTaskJSON{ID: t.ID, ExecutionID: t.ExecutionID, JobID: strconv.FormatInt(t.JobID, 10), Operation: str("operation"),
		ResourceType: str("resource_type"), SrcResource: str("source_resource"), DstResource: str("destination_resource"),
		StartTime: harborTime(t.StartTime), EndTime: harborTime(t.EndTime)}
	switch t.Status {
	case task.StatusRunning:
		out.Status = "InProgress"
	case task.StatusSuccess:
		out.Status = "Succeed"
	case task.StatusError:
		out.Status = "Failed"
	default:
		out.Status = t.Status
	}
	return out
}

func (s *Server) startReplication(c *call) error {
	var req struct {
		PolicyID int64 `json:"policy_id"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	id, err := s.svc.Replication.Start(c.ctx, c.who, req.PolicyID)
	if err != nil {
		return err
	}
	return c.created(strconv.FormatInt(id, 10))
}

func (s *Server) listReplicationExecutions(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	v := c.r.URL.Query()
	f := replication.ExecutionFilter{Policy: -1, Status: v.Get("status"), Trigger: v.Get("trigger")}
	if p := v.Get("policy_id"); p != "" {
		if f.Policy, err = strconv.ParseInt(p, 10, 64); err != nil {
			return errdefs.InvalidArgument(errdefsMsg("policy_id: want an integer"))
		}
	}
	list, total, err := s.svc.Replication.Executions(c.ctx, c.who, f, q, page)
	if err != nil {
		return err
	}
	out := make([]replicationExecutionJSON, len(list))
	for i, e := range list {
		out[i] = toReplicationExecution(e)
	}
	return c.list(page, total, out)
}

func (s *Server) getReplicationExecution(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	e, err := s.svc.Replication.Execution(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toReplicationExecution(e))
}

func (s *Server) stopReplication(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	if err := s.svc.Replication.Stop(c.ctx, c.who, id); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) listReplicationTasks(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Replication.Tasks(c.ctx, c.who, id, q, page)
	if err != nil {
		return err
	}
	out := []replicationTaskJSON{}
	status := c.r.URL.Query().Get("status")
	rt := c.r.URL.Query().Get("resource_type")
	for _, t := range list {
		j := toReplicationTask(t)
		if status != "" && j.Status != status || rt != "" && j.ResourceType != rt {
			total--
			continue
		}
		out = append(out, j)
	}
	return c.list(page, total, out)
}

func (s *Server) replicationTaskLog(c *call) error {
	id, err := c.id("id")
	if err != nil {
		return err
	}
	tid, err := c.id("task_id")
	if err != nil {
		return err
	}
	log, err := s.svc.Replication.TaskLog(c.ctx, c.who, id, tid)
	if err != nil {
		return err
	}
	return c.text(log)
}
