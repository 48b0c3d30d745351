package replication

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Trigger is when a policy runs.
type Trigger struct {
	Type     string           `json:"type"`
	Settings *TriggerSettings `json:"trigger_settings,omitempty"`
}

// TriggerSettings hold a scheduled trigger's cron expression (six
// fields, seconds first).
type TriggerSettings struct {
	Cron string `json:"cron"`
}

// Policy is a replication policy. A registry id of 0 is lading itself:
// exactly one of SrcRegistry and DestRegistry is 0.
type Policy struct {
	ID                        int64
	Name                      string
	Description               string
	Creator                   string
	SrcRegistry               int64
	DestRegistry              int64
	DestNamespace             string
	DestNamespaceReplaceCount int
	Filters                   []Filter
	Trigger                   *Trigger
	ReplicateDeletion         bool
	Override                  bool
	Enabled                   bool
	// Speed limits each task, in KB/s (0: no limit).
	Speed        int32
	CopyByChunk  bool
	SingleActive bool
	Created      time.Time
	Updated      time.Time
}

// PushBased reports whether lading is the source.
func (p Policy) PushBased() bool { return p.SrcRegistry == 0 }

func (p Policy) triggerType() string {
	if p.Trigger == nil || p.Trigger.Type == "" {
		return endpoint.TriggerManual
	}
	return p.Trigger.Type
}

// check validates a policy as Harbor does.
func (s *Service) checkPolicy(ctx context.Context, p *Policy) error {
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" {
		return errdefs.InvalidArgument(errors.New("empty name"))
	}
	if len(p.Name) > maxPolicyName || len(p.Description) > 1024 {
		return errdefs.InvalidArgument(fmt.Errorf("policy name (%d) or description (1024) too long", maxPolicyName))
	}
	if (p.SrcRegistry != 0) == (p.DestRegistry != 0) {
		return errdefs.InvalidArgument(errors.New("either src_registry or dest_registry should be empty and the other one shouldn't be empty"))
	}
	remote := p.SrcRegistry + p.DestRegistry
	if _, err := s.registry(ctx, remote); err != nil {
		if errdefs.IsNotFound(err) {
			return errdefs.InvalidArgument(err)
		}
		return err
	}
	if len(p.Filters) > maxFilters {
		return errdefs.InvalidArgument(fmt.Errorf("at most %d filters", maxFilters))
	}
	for i := range p.Filters {
		if err := p.Filters[i].check(); err != nil {
			return err
		}
	}
	if len(p.DestNamespace) > maxNamespace || p.DestNamespace != "" && !namespaceRe.MatchString(p.DestNamespace) {
		return errdefs.InvalidArgument(fmt.Errorf("invalid destination namespace: %.100s", p.DestNamespace))
	}
	if p.DestNamespaceReplaceCount < -1 || p.DestNamespaceReplaceCount > 127 {
		return errdefs.InvalidArgument(fmt.Errorf("dest_namespace_replace_count %d: want -1 (legacy) to 127", p.DestNamespaceReplaceCount))
	}
	if p.Speed < 0 {
		p.Speed = 0
	}
	if p.Trigger == nil {
		p.Trigger = &Trigger{Type: endpoint.TriggerManual}
	}
	switch p.Trigger.Type {
	case endpoint.TriggerManual, "":
		p.Trigger.Type = endpoint.TriggerManual
	case endpoint.TriggerEvent:
		if !p.PushBased() {
			return errdefs.InvalidArgument(errors.New("event_based triggers need lading as the source registry: the remote registry cannot tell lading of its events"))
		}
		if p.SingleActive {
			return errdefs.InvalidArgument(errors.New("single active replication is not allowed for event_based triggers"))
		}
	case endpoint.TriggerScheduled:
		if p.Trigger.Settings == nil || p.Trigger.Settings.Cron == "" {
			return errdefs.InvalidArgument(fmt.Errorf("the cron string cannot be empty when the trigger type is %s", endpoint.TriggerScheduled))
		}
		c := p.Trigger.Settings.Cron
		if _, err := jobs.ParseCron(c); err != nil {
			return errdefs.InvalidArgument(fmt.Errorf("invalid cron string for scheduled trigger: %.100s: %v", c, err))
		}
		if f := strings.Fields(c); len(f) > 1 && f[1] == "*" {
			return errdefs.InvalidArgument(errors.New("* is not allowed for the Minutes field of the cron setting of replication policy"))
		}
	default:
		return errdefs.InvalidArgument(fmt.Errorf("invalid trigger type %.40q", p.Trigger.Type))
	}
	if p.Trigger.Type != endpoint.TriggerScheduled {
		p.Trigger.Settings = nil
	}
	return nil
}

const policyCols = `id, name, description, creator, src_registry_id, dest_registry_id, dest_namespace, dest_namespace_replace_count, filters, trigger,
	replicate_deletion, override, enabled, speed, copy_by_chunk, single_active, created, updated`

func scanPolicy(row sqldb.Row) (Policy, error) {
	var p Policy
	var fs, trig string
	var created, updated int64
	err := row.Scan(&p.ID, &p.Name, &p.Description, &p.Creator, &p.SrcRegistry, &p.DestRegistry, &p.DestNamespace, &p.DestNamespaceReplaceCount,
		&fs, &trig, &p.ReplicateDeletion, &p.Override, &p.Enabled, &p.Speed, &p.CopyByChunk, &p.SingleActive, &created, &updated)
	if err != nil {
		return p, err
	}
	json.Unmarshal([]byte(fs), &p.Filters)
	for i := range p.Filters {
		p.Filters[i].check() // label values back to []string
	}
	json.Unmarshal([]byte(trig), &p.Trigger)
	p.Created, p.Updated = sqldb.Time(created), sqldb.Time(updated)
	return p, nil
}

func (s *Service) policy(ctx context.Context, id int64) (Policy, error) {
	p, err := scanPolicy(s.db.QueryRow(ctx, `SELECT `+policyCols+` FROM replication_policies WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Policy{}, errdefs.NotFound(fmt.Errorf("replication policy %d not found", id))
	}
	return p, s.db.Wrap("replication policy", err)
}

// PolicyFields are the keys a policy listing may filter and sort by.
var PolicyFields = query.Fields{
	"id":               {Column: "id", Kind: query.Int},
	"name":             {Column: "name"},
	"enabled":          {Column: "enabled", Kind: query.Bool},
	"src_registry_id":  {Column: "src_registry_id", Kind: query.Int},
	"dest_registry_id": {Column: "dest_registry_id", Kind: query.Int},
	"creation_time":    {Column: "created", Kind: query.Time},
	"update_time":      {Column: "updated", Kind: query.Time},
}

// Policies lists the policies.
func (s *Service) Policies(ctx context.Context, who access.Subject, q query.Query, page query.Page) ([]Policy, int64, error) {
	if err := s.access.Require(ctx, who, access.List, access.ReplicationPolicy, 0); err != nil {
		return nil, 0, err
	}
	c, err := q.SQL(s.db.Dialect(), PolicyFields, "id", "id")
	if err != nil {
		return nil, 0, err
	}
	return sqldb.ListPage(ctx, s.db, "replication_policies", policyCols, c.WhereSQL(), c.Args, c.OrderBy+page.LimitSQL(), scanPolicy)
}

// Policy returns a policy.
func (s *Service) Policy(ctx context.Context, who access.Subject, id int64) (Policy, error) {
	if err := s.access.Require(ctx, who, access.Read, access.ReplicationPolicy, 0); err != nil {
		return Policy{}, err
	}
	return s.policy(ctx, id)
}

// RegistryOf returns a policy's registry for answers (secret masked): id
// 0 is lading itself.
func (s *Service) RegistryOf(ctx context.Context, id int64) (Registry, error) {
	if id == 0 {
		return Registry{Name: "Local", Endpoint: endpoint.Endpoint{Type: endpoint.TypeHarbor, URL: s.localURL()}, Status: Healthy}, nil
	}
	r, err := s.registry(ctx, id)
	return r.masked(), err
}

func (s *Service) localURL() string {
	if s.opt.Host == "" {
		return ""
	}
	if strings.Contains(s.opt.Host, "://") {
		return s.opt.Host
	}
	return "http://" + s.opt.Host
}

func encodePolicy(p Policy) (string, string) {
	fs := "[]"
	if len(p.Filters) > 0 {
		b, _ := json.Marshal(p.Filters)
		fs = string(b)
	}
	b, _ := json.Marshal(p.Trigger)
	return fs, string(b)
}

// CreatePolicy adds a policy and returns its id.
func (s *Service) CreatePolicy(ctx context.Context, who access.Subject, p Policy) (int64, error) {
	if err := s.access.Require(ctx, who, access.Create, access.ReplicationPolicy, 0); err != nil {
		return 0, err
	}
	if err := s.checkPolicy(ctx, &p); err != nil {
		return 0, err
	}
	fs, trig := encodePolicy(p)
	now := sqldb.Nanos(s.db.Now())
	var id int64
	err := s.db.Tx(ctx, "create replication policy", func(tx *sqldb.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO replication_policies (name, description, creator, src_registry_id, dest_registry_id, dest_namespace, dest_namespace_replace_count,
			filters, trigger, replicate_deletion, override, enabled, speed, copy_by_chunk, single_active, created, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			p.Name, p.Description, who.Name, p.SrcRegistry, p.DestRegistry, p.DestNamespace, p.DestNamespaceReplaceCount, fs, trig,
			p.ReplicateDeletion, p.Override, p.Enabled, p.Speed, p.CopyByChunk, p.SingleActive, now, now).Scan(&id)
		if sqldb.IsUniqueViolation(err) {
			return errdefs.Conflict(fmt.Errorf("a replication policy named %q already exists", p.Name))
		}
		if err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "create", ResourceType: "replication_policy", Resource: p.Name,
			Description: fmt.Sprintf("create replication policy %s", p.Name)})
	})
	if err != nil {
		return 0, err
	}
	p.ID = id
	return id, s.schedule(ctx, p)
}

// UpdatePolicy replaces a policy's settings.
func (s *Service) UpdatePolicy(ctx context.Context, who access.Subject, id int64, p Policy) error {
	if err := s.access.Require(ctx, who, access.Update, access.ReplicationPolicy, 0); err != nil {
		return err
	}
	if _, err := s.policy(ctx, id); err != nil {
		return err
	}
	if err := s.checkPolicy(ctx, &p); err != nil {
		return err
	}
	p.ID = id
	fs, trig := encodePolicy(p)
	err := s.db.Tx(ctx, "update replication policy", func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE replication_policies SET name = ?, description = ?, src_registry_id = ?, dest_registry_id = ?, dest_namespace = ?,
			dest_namespace_replace_count = ?, filters = ?, trigger = ?, replicate_deletion = ?, override = ?, enabled = ?, speed = ?, copy_by_chunk = ?,
			single_active = ?, updated = ? WHERE id = ?`,
			p.Name, p.Description, p.SrcRegistry, p.DestRegistry, p.DestNamespace, p.DestNamespaceReplaceCount, fs, trig, p.ReplicateDeletion,
			p.Override, p.Enabled, p.Speed, p.CopyByChunk, p.SingleActive, sqldb.Nanos(s.db.Now()), id)
		if sqldb.IsUniqueViolation(err) {
			return errdefs.Conflict(fmt.Errorf("a replication policy named %q already exists", p.Name))
		}
		if err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "update", ResourceType: "replication_policy", Resource: p.Name,
			Description: fmt.Sprintf("update replication policy %s", p.Name)})
	})
	if err != nil {
		return err
	}
	return s.schedule(ctx, p)
}

// schedule keeps a policy's schedule in step with its trigger.
func (s *Service) schedule(ctx context.Context, p Policy) error {
	if !p.Enabled || p.triggerType() != endpoint.TriggerScheduled {
		return s.jobs.DeleteSchedule(ctx, VendorType, p.ID)
	}
	args, _ := json.Marshal(scheduleArgs{Policy: p.ID})
	_, err := s.jobs.SetSchedule(ctx, jobs.Schedule{VendorType: VendorType, VendorID: p.ID, Kind: ScheduleKind, Args: args, Cron: p.Trigger.Settings.Cron})
	return err
}

// DeletePolicy removes a policy, its schedule and its finished
// executions; a policy with a run in progress is kept (412).
func (s *Service) DeletePolicy(ctx context.Context, who access.Subject, id int64) error {
	if err := s.access.Require(ctx, who, access.Delete, access.ReplicationPolicy, 0); err != nil {
		return err
	}
	p, err := s.policy(ctx, id)
	if err != nil {
		return err
	}
	if n, err := s.running(ctx, id); err != nil {
		return err
	} else if n > 0 {
		return errdefs.FailedPrecondition(fmt.Errorf("the replication policy %d has %d execution(s) in progress; stop them first", id, n))
	}
	if err := s.jobs.DeleteSchedule(ctx, VendorType, id); err != nil {
		return err
	}
	return s.db.Tx(ctx, "delete replication policy", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM replication_policies WHERE id = ?`, id); err != nil {
			return err
		}
		if err := s.tasks.DeleteVendor(ctx, tx, VendorType, id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "delete", ResourceType: "replication_policy", Resource: p.Name,
			Description: fmt.Sprintf("delete replication policy %s", p.Name)})
	})
}
