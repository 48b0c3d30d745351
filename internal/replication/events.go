package replication

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/task"
	"github.com/lading-dev/lading/internal/webhook"
)

// Change is a push or a deletion in lading, as the registry's events
// report it.
type Change struct {
	Repository string
	Digest     string
	MediaType  string
	Tags       []string
	// Subject is set for a referrer (a signature, an SBOM).
	Subject string
	// Deleted: a manifest (Tags empty) or tags were deleted.
	Deleted  bool
	Operator string
}

// eventPolicies lists the enabled event-based push policies.
func (s *Service) eventPolicies(ctx context.Context) ([]Policy, error) {
	rows, err := s.db.Query(ctx, `SELECT `+policyCols+` FROM replication_policies WHERE enabled = ? AND src_registry_id = 0 ORDER BY id`, true)
	if err != nil {
		return nil, s.db.Wrap("replication policies", err)
	}
	defer rows.Close()
	var out []Policy
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			return nil, s.db.Wrap("replication policies", err)
		}
		if p.triggerType() == endpoint.TriggerEvent {
			out = append(out, p)
		}
	}
	return out, s.db.Wrap("replication policies", rows.Err())
}

// Changed starts the event-based runs a change in lading triggers: for
// each enabled event-based policy whose filters it passes, an execution
// (trigger EVENT) with one task, queued in one transaction. A referrer or
// a cosign accessory passes the tag filter whatever its tags: it follows
// its subject. Deletions replicate only with replicate_deletion.
func (s *Service) Changed(ctx context.Context, ch Change) error {
	ps, err := s.eventPolicies(ctx)
	if err != nil || len(ps) == 0 {
		return err
	}
	for _, p := range ps {
		if ch.Deleted && !p.ReplicateDeletion {
			continue
		}
		fs := filters(p.Filters)
		if !fs.repository(ch.Repository) {
			continue
		}
		a := endpoint.Artifact{Digest: ch.Digest, MediaType: ch.MediaType, Tags: ch.Tags}
		accessory := ch.Subject != ""
		for _, t := range ch.Tags {
			accessory = accessory || accessoryTag.MatchString(t)
		}
		if !ch.Deleted && !accessory {
			kept := fs.artifacts([]endpoint.Artifact{a})
			if len(kept) == 0 {
				continue
			}
			a = kept[0]
		}
		atLeastTwo, err := s.inProjects(ctx, p.DestRegistry)
		if err != nil {
			return err
		}
		dst, err := destination(ch.Repository, p.DestNamespace, p.DestNamespaceReplaceCount, atLeastTwo)
		if err != nil {
			s.log.Warn("event-based replication: no destination for the repository", "policy", p.Name, "repository", ch.Repository, "error", err)
			continue
		}
		op := OpCopy
		if ch.Deleted {
			op = OpDeletion
		}
		r := resource{SrcRepo: ch.Repository, DstRepo: dst, Artifacts: []artifactRef{{Digest: a.Digest, Tags: a.Tags}}}
		err = s.db.Tx(ctx, "event-based replication", func(tx *sqldb.Tx) error {
			extra := map[string]any{}
			if ch.Operator != "" {
				extra["operator"] = ch.Operator
			}
			id, err := s.tasks.Create(ctx, tx, VendorType, p.ID, task.TriggerEvent, extra)
			if err != nil {
				return err
			}
			return s.addTask(ctx, tx, id, p, op, r, task.TriggerEvent, ch.Operator)
		})
		if err != nil {
			return fmt.Errorf("policy %s: %w", p.Name, err)
		}
	}
	return nil
}

// Harbor's replication payload (webhook event_data.replication).
type replicationPayload struct {
	HarborHostname     string            `json:"harbor_hostname,omitempty"`
	JobStatus          string            `json:"job_status,omitempty"`
	Description        string            `json:"description,omitempty"`
	ArtifactType       string            `json:"artifact_type,omitempty"`
	AuthenticationType string            `json:"authentication_type,omitempty"`
	OverrideMode       bool              `json:"override_mode,omitempty"`
	TriggerType        string            `json:"trigger_type,omitempty"`
	PolicyCreator      string            `json:"policy_creator,omitempty"`
	ExecutionTimestamp int64             `json:"execution_timestamp,omitempty"`
	SrcResource        *payloadResource  `json:"src_resource,omitempty"`
	DestResource       *payloadResource  `json:"dest_resource,omitempty"`
	SuccessfulArtifact []payloadArtifact `json:"successful_artifact,omitempty"`
	FailedArtifact     []payloadArtifact `json:"failed_artifact,omitempty"`
	ExecutionID        int64             `json:"execution_id,omitempty"`
	TaskID             int64             `json:"task_id,omitempty"`
}

type payloadResource struct {
	RegistryName string `json:"registry_name,omitempty"`
	RegistryType string `json:"registry_type"`
	Endpoint     string `json:"endpoint"`
	Namespace    string `json:"namespace,omitempty"`
}

type payloadArtifact struct {
	Type       string   `json:"type"`
	Status     string   `json:"status"`
	NameAndTag string   `json:"name_tag"`
	References []string `json:"references"`
	FailReason string   `json:"fail_reason,omitempty"`
}

// notify raises the REPLICATION webhook event of a task that ended, in
// the project it concerns in lading (the source of a push-based policy,
// the destination of a pull-based one).
func (s *Service) notify(ctx context.Context, j *jobs.Job, a taskArgs, taskErr error) {
	if s.webhooks == nil {
		return
	}
	status := jobs.Success
	if taskErr != nil {
		status = jobs.Error
	}
	remoteID := a.SrcRegistry + a.DstRegistry
	var remote Registry
	if r, err := s.registry(ctx, remoteID); err == nil {
		remote = r
	}
	p, _ := s.policy(ctx, a.Policy)
	exec, _ := s.tasks.Execution(ctx, a.Execution)
	localRepo, remoteRepo := a.SrcRepo, a.DstRepo
	if a.SrcRegistry != 0 {
		localRepo, remoteRepo = a.DstRepo, a.SrcRepo
	}
	ns := func(repo string) (string, string) {
		n, rest, ok := strings.Cut(repo, "/")
		if !ok {
			return "", repo
		}
		return n, rest
	}
	localNS, localName := ns(localRepo)
	remoteNS, _ := ns(remoteRepo)
	pr, err := s.projects.Resolve(ctx, project.Ref{Name: localNS})
	if err != nil {
		return
	}
	trigger := map[string]string{task.TriggerManual: endpoint.TriggerManual, task.TriggerSchedule: endpoint.TriggerScheduled, task.TriggerEvent: endpoint.TriggerEvent}[a.Trigger]
	payload := replicationPayload{
		HarborHostname: strings.Split(s.opt.Host, ":")[0], JobStatus: status, Description: p.Description, ArtifactType: a.ResourceType,
		AuthenticationType: remote.Credential.Type, OverrideMode: a.Override, TriggerType: trigger, PolicyCreator: p.Creator,
		ExecutionTimestamp: exec.StartTime.Unix(), ExecutionID: a.Execution,
	}
	payload.TaskID, _ = s.tasks.TaskOfJob(ctx, j.ID)
	remoteRes := &payloadResource{RegistryName: remote.Name, RegistryType: remote.Type, Endpoint: remote.URL, Namespace: remoteNS}
	localRes := &payloadResource{RegistryType: endpoint.TypeHarbor, Endpoint: s.localURL(), Namespace: localNS}
	if a.SrcRegistry == 0 {
		payload.SrcResource, payload.DestResource = localRes, remoteRes
	} else {
		payload.SrcResource, payload.DestResource = remoteRes, localRes
	}
	refs := strings.Split(a.references(), ",")
	art := payloadArtifact{Type: a.ResourceType, Status: status, NameAndTag: localName + ":" + refs[0], References: refs}
	if taskErr != nil {
		art.FailReason = taskErr.Error()
		payload.FailedArtifact = []payloadArtifact{art}
	} else {
		payload.SuccessfulArtifact = []payloadArtifact{art}
	}
	raw, _ := json.Marshal(payload)
	err = s.webhooks.Publish(ctx, webhook.Event{Type: webhook.Replication, ProjectID: pr.ID, Operator: a.Operator, OccurAt: time.Now(),
		Data: webhook.EventData{Replication: raw}})
	if err != nil {
		s.log.Warn("publishing the REPLICATION webhook event", "execution", a.Execution, "error", err)
	}
}
