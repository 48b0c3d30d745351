// Package webhook tells receivers outside lading what happens in a
// project, as Harbor's webhooks do: a project's webhook policies name
// event types (PUSH_ARTIFACT, SCANNING_COMPLETED, QUOTA_EXCEED...) and
// targets (an http(s) address, an optional Authorization header, whether
// to verify its certificate, a payload format: Harbor's Default or
// CloudEvents 1.0).
//
// An event (Publish) becomes, for each enabled policy of its project that
// wants its type and for each of the policy's targets, an execution with
// one task (package task): a WEBHOOK job that POSTs the payload, retried
// with backoff when the receiver fails. The payload is formatted when the
// event is published; every attempt of a delivery carries the same
// Idempotency-Key header (also the CloudEvents id), so a receiver can
// drop the duplicates that at-least-once delivery may bring (a lading
// killed after the receiver answered and before the answer was recorded
// delivers again). Deliveries go through package outbound: loopback,
// private, link-local and metadata addresses are refused unless the
// administrator allowed them. Receivers' answers are read up to 4 KiB, for
// the delivery log; a receiver that hangs is cut off after the timeout.
// The Authorization header is stored with the policy and the job, and
// never written to a log.
//
// The table, owned by this package:
//
//	webhook_policies
//	  id, project_id, name (unique in the project), description,
//	  targets (JSON: type, address, auth_header, skip_cert_verify,
//	  payload_format), event_types (JSON), creator, enabled, created,
//	  updated
package webhook

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/outbound"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/task"
)

// Migrations create the webhook policies' table.
var Migrations = []sqldb.Migration{{Owner: "webhook", Name: "webhook policies", SQL: []string{
	`CREATE TABLE webhook_policies (
		id {{id}},
		project_id {{int}} NOT NULL,
		name {{text}} NOT NULL,
		description {{text}} NOT NULL,
		targets {{text}} NOT NULL,
		event_types {{text}} NOT NULL,
		creator {{text}} NOT NULL,
		enabled {{bool}} NOT NULL,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL,
		UNIQUE (project_id, name))`,
}}, {Owner: "webhook", Name: "webhook policies go with their project", Func: policiesFollowProject}}

// policiesFollowProject makes deleting a project delete its policies: the
// first table did not reference the project. SQLite cannot add a foreign
// key to a table, so there the table is rebuilt.
func policiesFollowProject(ctx context.Context, tx *sqldb.Tx) error {
	stmts := []string{
		`DELETE FROM webhook_policies WHERE project_id NOT IN (SELECT id FROM projects)`,
		`ALTER TABLE webhook_policies ADD FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE`,
	}
	if tx.Dialect().Name == "sqlite" {
		stmts = []string{
			`CREATE TABLE webhook_policies_new (
				id {{id}},
				project_id {{int}} NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
				name {{text}} NOT NULL,
				description {{text}} NOT NULL,
				targets {{text}} NOT NULL,
				event_types {{text}} NOT NULL,
				creator {{text}} NOT NULL,
				enabled {{bool}} NOT NULL,
				created {{int}} NOT NULL,
				updated {{int}} NOT NULL,
				UNIQUE (project_id, name))`,
			`INSERT INTO webhook_policies_new SELECT id, project_id, name, description, targets, event_types, creator, enabled, created, updated
				FROM webhook_policies WHERE project_id IN (SELECT id FROM projects)`,
			`DROP TABLE webhook_policies`,
			`ALTER TABLE webhook_policies_new RENAME TO webhook_policies`,
		}
	}
	for _, st := range stmts {
		if _, err := tx.ExecDirect(ctx, tx.Dialect().Expand(st)); err != nil {
			return err
		}
	}
	return nil
}

// Kind is the job kind of deliveries, and VendorType the executions'
// vendor type, as Harbor names both.
const (
	Kind       = "WEBHOOK"
	VendorType = "WEBHOOK"
)

// Target is where a policy delivers.
type Target struct {
	Type           string `json:"type"`
	Address        string `json:"address"`
	AuthHeader     string `json:"auth_header,omitempty"`
	SkipCertVerify bool   `json:"skip_cert_verify"`
	PayloadFormat  string `json:"payload_format,omitempty"`
}

// Policy is a project's webhook policy.
type Policy struct {
	ID          int64
	ProjectID   int64
	Name        string
	Description string
	Targets     []Target
	EventTypes  []string
	Creator     string
	Enabled     bool
	Created     time.Time
	Updated     time.Time
}

// Settings tells whether notifications are on (Harbor's
// notification_enable).
type Settings func(ctx context.Context) (enabled bool, err error)

// Options configure the service.
type Options struct {
	Log *slog.Logger
	// Outbound decides which addresses deliveries may reach.
	Outbound *outbound.Policy
	// Timeout bounds one delivery attempt; default 10s.
	Timeout time.Duration
	// MaxAttempts of a delivery; default 5 (Harbor: 3 retries).
	MaxAttempts int
	// UserAgent of deliveries; default "lading".
	UserAgent string
	// Concurrency bounds deliveries at once across replicas; default 16.
	Concurrency int
	// RepoCreated tells when a repository was created, for payloads'
	// date_created (zero: unknown, left out).
	RepoCreated func(ctx context.Context, repo string) time.Time
}

// Service keeps webhook policies and delivers events.
type Service struct {
	db       *sqldb.DB
	access   *access.Checker
	audit    *audit.Log
	projects *project.Service
	jobs     *jobs.Queue
	tasks    *task.Manager
	settings Settings
	opt      Options
	log      *slog.Logger
	clients  [2]*httpClient // by skip_cert_verify
}

// New returns the service.
func New(db *sqldb.DB, checker *access.Checker, log *audit.Log, projects *project.Service, q *jobs.Queue, tasks *task.Manager, settings Settings, o Options) *Service {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Outbound == nil {
		o.Outbound = outbound.New()
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.UserAgent == "" {
		o.UserAgent = "lading"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	s := &Service{db: db, access: checker, audit: log, projects: projects, jobs: q, tasks: tasks, settings: settings, opt: o, log: o.Log}
	s.clients[0] = newHTTPClient(o.Outbound, o.Timeout, false)
	s.clients[1] = newHTTPClient(o.Outbound, o.Timeout, true)
	return s
}

// Definition is the delivery job, for registration at wiring.
func (s *Service) Definition() jobs.Definition {
	return jobs.Definition{Kind: Kind, Run: jobs.Func(s.deliver), Concurrency: s.opt.Concurrency, MaxAttempts: s.opt.MaxAttempts, Timeout: s.opt.Timeout + 5*time.Second}
}

// check validates a policy as Harbor's handler does, normalizing targets.
func (s *Service) check(p *Policy) error {
	if strings.TrimSpace(p.Name) == "" {
		return errdefs.InvalidArgument(errors.New("a webhook policy needs a name"))
	}
	if len(p.Name) > 256 || len(p.Description) > 1024 {
		return errdefs.InvalidArgument(errors.New("webhook policy name (256) or description (1024) too long"))
	}
	if len(p.EventTypes) == 0 {
		return errdefs.InvalidArgument(errors.New("empty event type"))
	}
	for _, t := range p.EventTypes {
		if !slices.Contains(EventTypes, t) {
			return errdefs.InvalidArgument(fmt.Errorf("unsupported event type %.64q", t))
		}
	}
	if len(p.Targets) == 0 {
		return errdefs.InvalidArgument(fmt.Errorf("empty notification target with policy %s", p.Name))
	}
	if len(p.Targets) > 16 {
		return errdefs.InvalidArgument(errors.New("at most 16 targets per policy"))
	}
	for i := range p.Targets {
		t := &p.Targets[i]
		if t.Type == "" {
			t.Type = NotifyTypeHTTP
		}
		if t.Type != NotifyTypeHTTP {
			return errdefs.InvalidArgument(fmt.Errorf("unsupported target type %.32q with policy %s", t.Type, p.Name))
		}
		if t.PayloadFormat == "" {
			t.PayloadFormat = FormatDefault
		}
		if !slices.Contains(PayloadFormats, t.PayloadFormat) {
			return errdefs.InvalidArgument(fmt.Errorf("unsupported payload format type: %.32s", t.PayloadFormat))
		}
		if len(t.AuthHeader) > 4096 || strings.ContainsAny(t.AuthHeader, "\r\n\x00") {
			return errdefs.InvalidArgument(errors.New("auth_header must be one line of at most 4096 bytes"))
		}
		u, err := s.opt.Outbound.CheckURL(t.Address)
		if err != nil {
			return fmt.Errorf("target address: %w", err)
		}
		t.Address = u.String()
	}
	return nil
}

const policyCols = `id, project_id, name, description, targets, event_types, creator, enabled, created, updated`

func scanPolicy(r sqldb.Row) (Policy, error) {
	var p Policy
	var targets, types string
	var created, updated int64
	err := r.Scan(&p.ID, &p.ProjectID, &p.Name, &p.Description, &targets, &types, &p.Creator, &p.Enabled, &created, &updated)
	if err == nil {
		json.Unmarshal([]byte(targets), &p.Targets)
		json.Unmarshal([]byte(types), &p.EventTypes)
	}
	p.Created, p.Updated = sqldb.Time(created), sqldb.Time(updated)
	return p, err
}

func (s *Service) policy(ctx context.Context, projectID, id int64) (Policy, error) {
	p, err := scanPolicy(s.db.QueryRow(ctx, `SELECT `+policyCols+` FROM webhook_policies WHERE id = ? AND project_id = ?`, id, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return Policy{}, errdefs.NotFound(fmt.Errorf("project id:%d, webhook policy id: %d not found", projectID, id))
	}
	return p, s.db.Wrap("webhook policy", err)
}

// PolicyFields are the keys a policy listing may filter and sort by.
var PolicyFields = query.Fields{
	"id":            {Column: "id", Kind: query.Int},
	"name":          {Column: "name"},
	"enabled":       {Column: "enabled", Kind: query.Bool},
	"creation_time": {Column: "created", Kind: query.Time},
	"update_time":   {Column: "updated", Kind: query.Time},
}

// Policies lists a project's policies.
func (s *Service) Policies(ctx context.Context, who access.Subject, ref project.Ref, q query.Query, page query.Page) ([]Policy, int64, error) {
	p, err := s.projects.Authorize(ctx, who, ref, access.List, access.NotificationPolicy)
	if err != nil {
		return nil, 0, err
	}
	c, err := q.SQL(s.db.Dialect(), PolicyFields, "created DESC, id DESC", "id")
	if err != nil {
		return nil, 0, err
	}
	where, args := ` WHERE project_id = ?`, []any{p.ID}
	if w := c.WhereSQL(); w != "" {
		where += " AND " + strings.TrimPrefix(w, " WHERE ")
		args = append(args, c.Args...)
	}
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_policies`+where, args...).Scan(&total); err != nil {
		return nil, 0, s.db.Wrap("webhook policies", err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+policyCols+` FROM webhook_policies`+where+` ORDER BY `+c.OrderBy+page.LimitSQL(), args...)
	if err != nil {
		return nil, 0, s.db.Wrap("webhook policies", err)
	}
	defer rows.Close()
	out := []Policy{}
	for rows.Next() {
		pol, err := scanPolicy(rows)
		if err != nil {
			return nil, 0, s.db.Wrap("webhook policies", err)
		}
		out = append(out, pol)
	}
	return out, total, s.db.Wrap("webhook policies", rows.Err())
}

// Policy returns a policy of a project.
func (s *Service) Policy(ctx context.Context, who access.Subject, ref project.Ref, id int64) (Policy, error) {
	p, err := s.projects.Authorize(ctx, who, ref, access.Read, access.NotificationPolicy)
	if err != nil {
		return Policy{}, err
	}
	return s.policy(ctx, p.ID, id)
}

// Create adds a policy to a project and returns its id.
func (s *Service) Create(ctx context.Context, who access.Subject, ref project.Ref, pol Policy) (int64, error) {
	p, err := s.projects.Authorize(ctx, who, ref, access.Create, access.NotificationPolicy)
	if err != nil {
		return 0, err
	}
	if err := s.check(&pol); err != nil {
		return 0, err
	}
	targets, _ := json.Marshal(pol.Targets)
	types, _ := json.Marshal(pol.EventTypes)
	now := sqldb.Nanos(s.db.Now())
	var id int64
	err = s.db.Tx(ctx, "create webhook policy", func(tx *sqldb.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO webhook_policies (project_id, name, description, targets, event_types, creator, enabled, created, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, p.ID, pol.Name, pol.Description, string(targets), string(types), who.Name, pol.Enabled, now, now).Scan(&id)
		if sqldb.IsUniqueViolation(err) {
			return errdefs.Conflict(fmt.Errorf("project %s already has a webhook policy named %q", p.Name, pol.Name))
		}
		if err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "create", ResourceType: "webhook_policy", Resource: pol.Name,
			Description: fmt.Sprintf("create webhook policy %s in project %s", pol.Name, p.Name)})
	})
	return id, err
}

// Update replaces a policy's settings.
func (s *Service) Update(ctx context.Context, who access.Subject, ref project.Ref, id int64, pol Policy) error {
	p, err := s.projects.Authorize(ctx, who, ref, access.Update, access.NotificationPolicy)
	if err != nil {
		return err
	}
	if _, err := s.policy(ctx, p.ID, id); err != nil {
		return err
	}
	if err := s.check(&pol); err != nil {
		return err
	}
	targets, _ := json.Marshal(pol.Targets)
	types, _ := json.Marshal(pol.EventTypes)
	return s.db.Tx(ctx, "update webhook policy", func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE webhook_policies SET name = ?, description = ?, targets = ?, event_types = ?, enabled = ?, updated = ? WHERE id = ? AND project_id = ?`,
			pol.Name, pol.Description, string(targets), string(types), pol.Enabled, sqldb.Nanos(s.db.Now()), id, p.ID)
		if sqldb.IsUniqueViolation(err) {
			return errdefs.Conflict(fmt.Errorf("project %s already has a webhook policy named %q", p.Name, pol.Name))
		}
		if err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "update", ResourceType: "webhook_policy", Resource: pol.Name,
			Description: fmt.Sprintf("update webhook policy %s in project %s", pol.Name, p.Name)})
	})
}

// Delete removes a policy and its finished executions.
func (s *Service) Delete(ctx context.Context, who access.Subject, ref project.Ref, id int64) error {
	p, err := s.projects.Authorize(ctx, who, ref, access.Delete, access.NotificationPolicy)
	if err != nil {
		return err
	}
	pol, err := s.policy(ctx, p.ID, id)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, "delete webhook policy", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_policies WHERE id = ? AND project_id = ?`, id, p.ID); err != nil {
			return err
		}
		if err := s.tasks.DeleteVendor(ctx, tx, VendorType, id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "delete", ResourceType: "webhook_policy", Resource: pol.Name,
			Description: fmt.Sprintf("delete webhook policy %s in project %s", pol.Name, p.Name)})
	})
}

// Supported lists the event types, notify types and payload formats
// (anyone who may read the project's policies may ask).
func (s *Service) Supported(ctx context.Context, who access.Subject, ref project.Ref) error {
	_, err := s.projects.Authorize(ctx, who, ref, access.Read, access.NotificationPolicy)
	return err
}

// Executions lists a policy's executions.
func (s *Service) Executions(ctx context.Context, who access.Subject, ref project.Ref, policyID int64, q query.Query, page query.Page) ([]task.Execution, int64, error) {
	if err := s.readPolicy(ctx, who, ref, policyID); err != nil {
		return nil, 0, err
	}
	return s.tasks.Executions(ctx, VendorType, policyID, q, page)
}

// Tasks lists an execution's tasks.
func (s *Service) Tasks(ctx context.Context, who access.Subject, ref project.Ref, policyID, execID int64, q query.Query, page query.Page) ([]task.Task, int64, error) {
	if err := s.readExecution(ctx, who, ref, policyID, execID); err != nil {
		return nil, 0, err
	}
	return s.tasks.Tasks(ctx, execID, q, page)
}

// TaskLog returns a delivery's log.
func (s *Service) TaskLog(ctx context.Context, who access.Subject, ref project.Ref, policyID, execID, taskID int64) ([]byte, error) {
	if err := s.readExecution(ctx, who, ref, policyID, execID); err != nil {
		return nil, err
	}
	t, err := s.tasks.Task(ctx, taskID)
	if err != nil {
		return nil, err
	}
	if t.ExecutionID != execID {
		return nil, errdefs.NotFound(fmt.Errorf("task %d not found in execution %d", taskID, execID))
	}
	return s.tasks.TaskLog(ctx, taskID)
}

func (s *Service) readPolicy(ctx context.Context, who access.Subject, ref project.Ref, policyID int64) error {
	p, err := s.projects.Authorize(ctx, who, ref, access.Read, access.NotificationPolicy)
	if err != nil {
		return err
	}
	_, err = s.policy(ctx, p.ID, policyID)
	return err
}

func (s *Service) readExecution(ctx context.Context, who access.Subject, ref project.Ref, policyID, execID int64) error {
	if err := s.readPolicy(ctx, who, ref, policyID); err != nil {
		return err
	}
	e, err := s.tasks.Execution(ctx, execID)
	if err != nil {
		return err
	}
	if e.VendorType != VendorType || e.VendorID != policyID {
		return errdefs.NotFound(fmt.Errorf("execution %d not found in policy %d", execID, policyID))
	}
	return nil
}

// delivery is a WEBHOOK job's arguments.
type delivery struct {
	PolicyID    int64  `json:"policy_id"`
	EventType   string `json:"event_type"`
	Address     string `json:"address"`
	Format      string `json:"format"`
	AuthHeader  string `json:"auth_header,omitempty"`
	SkipVerify  bool   `json:"skip_cert_verify"`
	ContentType string `json:"content_type"`
	Payload     string `json:"payload"`
	Key         string `json:"key"`
}

// Publish delivers an event to the policies of its project that want it,
// in a transaction of its own. It only queues: deliveries are jobs. An
// event no policy wants costs one read (pulls are frequent).
func (s *Service) Publish(ctx context.Context, e Event) error {
	var n int64
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_policies WHERE project_id = ? AND enabled = TRUE AND event_types LIKE ?`,
		e.ProjectID, "%\""+e.Type+"\"%").Scan(&n)
	if err != nil {
		return s.db.Wrap("webhook policies", err)
	}
	if n == 0 {
		return nil
	}
	return s.db.Tx(ctx, "publish "+e.Type, func(tx *sqldb.Tx) error { return s.PublishTx(ctx, tx, e) })
}

// PublishTx is Publish in a transaction of the caller's: the deliveries
// are queued if and only if tx commits.
func (s *Service) PublishTx(ctx context.Context, tx *sqldb.Tx, e Event) error {
	if !slices.Contains(EventTypes, e.Type) {
		return errdefs.InvalidArgument(fmt.Errorf("unknown event type %q", e.Type))
	}
	if on, err := s.settings(ctx); err != nil || !on {
		return err
	}
	if e.OccurAt.IsZero() {
		e.OccurAt = s.db.Now()
	}
	if e.RequestID == "" {
		e.RequestID = actor.From(ctx).RequestID
	}
	rows, err := tx.Query(ctx, `SELECT `+policyCols+` FROM webhook_policies WHERE project_id = ? AND enabled = TRUE ORDER BY id`, e.ProjectID)
	if err != nil {
		return err
	}
	var pols []Policy
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			rows.Close()
			return err
		}
		if slices.Contains(p.EventTypes, e.Type) {
			pols = append(pols, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, p := range pols {
		for _, t := range p.Targets {
			if err := s.queue(ctx, tx, e, p, t); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) queue(ctx context.Context, tx *sqldb.Tx, e Event, p Policy, t Target) error {
	key := newKey()
	body, ctype, err := format(e, p.ID, t.PayloadFormat, key)
	if err != nil {
		return err
	}
	exec, err := s.tasks.Create(ctx, tx, VendorType, p.ID, task.TriggerEvent, map[string]any{"event_type": e.Type, "payload": string(body)})
	if err != nil {
		return err
	}
	d := delivery{PolicyID: p.ID, EventType: e.Type, Address: t.Address, Format: t.PayloadFormat, AuthHeader: t.AuthHeader,
		SkipVerify: t.SkipCertVerify, ContentType: ctype, Payload: string(body), Key: key}
	_, err = s.tasks.AddTask(ctx, tx, exec, jobs.Request{Kind: Kind, Args: d, Key: "webhook:" + key}, map[string]any{"address": redactURL(t.Address), "idempotency_key": key})
	return err
}

func newKey() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // a version 4 UUID
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
