// Package retention is Harbor's tag retention: a project's policy of
// rules (package doc of Rule: templates such as latestPushedK or
// nDaysSinceLastPull, over the repositories and tags their selectors
// take) that decides which artifacts stay; the others are deleted, unless
// an immutable rule protects one of their tags. Runs are manual (with an
// optional dry run, which deletes nothing) or scheduled.
//
// A run is an execution of vendor RETENTION (package task) with one task
// per repository that a rule applies to; the tasks of up to 50
// repositories share a RETENTION job (a job, its claim and its commits
// per repository made a run over 1,000 repositories take most of a
// minute). The job first plans: it reads each repository's artifacts,
// decides for each (retain, delete or immutable, and why) and stores the
// plans of all its repositories in one transaction; a dry run ends there
// (its plans are its outcome). Then it deletes what the plans say,
// repository by repository, one artifact at a time, recording each
// deletion. A job killed midway runs again (its lease expires) and
// resumes the stored plans rather than deciding afresh; before
// each deletion it checks that the artifact is as planned (not pushed
// again, no new tag, not protected meanwhile), so a resumed run never
// deletes more than the first decided, nor anything that changed since.
// The plan is the task's log: every artifact with its decision and reason.
// A run that deleted something raises TAG_RETENTION for webhooks, once.
//
// # Tables (owner "retention")
//
//	retention_policies   id, project_id (unique; deleted with the project),
//	                     algorithm, rules (JSON), trigger_spec (JSON),
//	                     created, updated
//	retention_tasks      execution_id, repository ("project/name"),
//	                     planned (when the plan was made), total, retained,
//	                     published (TAG_RETENTION raised)
//	retention_decisions  execution_id, repository, seq, digest, tags (JSON),
//	                     kind, push_time, pull_time, created_time, action
//	                     (RETAIN, DEL, IMMUTABLE), reason, state (a
//	                     deletion's: pending, deleted, skipped, dry-run),
//	                     note
package retention

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/immutable"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sysjob"
	"github.com/lading-dev/lading/internal/task"
	"github.com/lading-dev/lading/internal/webhook"
)

// Migrations create the retention tables; they follow the project tables.
var Migrations = []sqldb.Migration{{Owner: "retention", Name: "policies and run plans", SQL: []string{
	`CREATE TABLE retention_policies (
		id {{id}},
		project_id {{int}} NOT NULL UNIQUE REFERENCES projects (id) ON DELETE CASCADE,
		algorithm {{text}} NOT NULL,
		rules {{text}} NOT NULL,
		trigger_spec {{text}} NOT NULL,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE TABLE retention_tasks (
		execution_id {{int}} NOT NULL,
		repository {{text}} NOT NULL,
		planned {{int}} NOT NULL,
		total {{int}} NOT NULL,
		retained {{int}} NOT NULL,
		published {{bool}} NOT NULL,
		PRIMARY KEY (execution_id, repository))`,
	`CREATE TABLE retention_decisions (
		execution_id {{int}} NOT NULL,
		repository {{text}} NOT NULL,
		seq {{int}} NOT NULL,
		digest {{text}} NOT NULL,
		tags {{text}} NOT NULL,
		kind {{text}} NOT NULL,
		push_time {{int}} NOT NULL,
		pull_time {{int}} NOT NULL,
		created_time {{int}} NOT NULL,
		action {{text}} NOT NULL,
		reason {{text}} NOT NULL,
		state {{text}} NOT NULL,
		note {{text}} NOT NULL,
		PRIMARY KEY (execution_id, repository, seq))`,
}}}

// VendorType names retention's executions and its job kind; TriggerKind
// is the kind of the job a policy's schedule fires.
const (
	VendorType  = "RETENTION"
	Kind        = "RETENTION"
	TriggerKind = "RETENTION_SCHEDULE"
)

// Options configure the service.
type Options struct {
	Log *slog.Logger
	// Concurrency bounds the repositories worked at once across replicas
	// (0: the job service's workers).
	Concurrency int
	// Hostname is the registry's host name for TAG_RETENTION payloads.
	Hostname string
}

// Service keeps retention policies and runs them.
type Service struct {
	db        *sqldb.DB
	access    *access.Checker
	audit     *audit.Log
	projects  *project.Service
	artifacts *artifact.Service
	immutable *immutable.Service
	jobs      *jobs.Queue
	tasks     *task.Manager
	webhooks  *webhook.Service
	opt       Options
	log       *slog.Logger
}

// Deps are the services retention uses.
type Deps struct {
	DB        *sqldb.DB
	Access    *access.Checker
	Audit     *audit.Log
	Projects  *project.Service
	Artifacts *artifact.Service
	Immutable *immutable.Service
	Jobs      *jobs.Queue
	Tasks     *task.Manager
	// Webhooks, when set, hear TAG_RETENTION.
	Webhooks *webhook.Service
}

// New returns the service.
func New(d Deps, o Options) *Service {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: d.DB, access: d.Access, audit: d.Audit, projects: d.Projects, artifacts: d.Artifacts, immutable: d.Immutable,
		jobs: d.Jobs, tasks: d.Tasks, webhooks: d.Webhooks, opt: o, log: o.Log}
}

// Definitions are the run and trigger jobs, for registration at wiring.
func (s *Service) Definitions() []jobs.Definition {
	return []jobs.Definition{
		{Kind: Kind, Run: jobs.Func(s.run), Concurrency: s.opt.Concurrency, MaxAttempts: 5, Timeout: 6 * time.Hour},
		{Kind: TriggerKind, Run: jobs.Func(s.scheduled), Concurrency: 1, MaxAttempts: 5, Timeout: 10 * time.Minute},
	}
}

// lookup is who the service acts as once the caller's permission is
// checked (to read and delete artifacts).
var lookup = access.Subject{Kind: access.KindUser, Name: "lading", SysAdmin: true}

const policyCols = `id, project_id, algorithm, rules, trigger_spec, created, updated`

func scanPolicy(r sqldb.Row) (Policy, error) {
	var p Policy
	var rules, trigger string
	var created, updated int64
	err := r.Scan(&p.ID, &p.Scope.Ref, &p.Algorithm, &rules, &trigger, &created, &updated)
	if err != nil {
		return p, err
	}
	p.Scope.Level = "project"
	if err := json.Unmarshal([]byte(rules), &p.Rules); err != nil {
		return p, fmt.Errorf("retention policy %d: rules: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(trigger), &p.Trigger); err != nil {
		return p, fmt.Errorf("retention policy %d: trigger: %w", p.ID, err)
	}
	p.Created, p.Updated = sqldb.Time(created), sqldb.Time(updated)
	return p, nil
}

func (s *Service) policy(ctx context.Context, id int64) (Policy, error) {
	p, err := scanPolicy(s.db.QueryRow(ctx, `SELECT `+policyCols+` FROM retention_policies WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Policy{}, errdefs.NotFound(fmt.Errorf("retention policy %d not found", id))
	}
	return p, s.db.Wrap("retention policy", err)
}

// authorized loads a policy and checks who may do a on it.
func (s *Service) authorized(ctx context.Context, who access.Subject, id int64, a access.Action) (Policy, access.ProjectInfo, error) {
	p, err := s.policy(ctx, id)
	if err != nil {
		return Policy{}, access.ProjectInfo{}, err
	}
	info, err := s.projects.Authorize(ctx, who, project.Ref{ID: p.Scope.Ref}, a, access.TagRetention)
	return p, info, err
}

// Metadata lists the rule templates and selectors (any authenticated
// caller may ask).
func (s *Service) Metadata(ctx context.Context, who access.Subject) error {
	if !who.Authenticated() {
		return access.Refuse(who, access.Read, access.TagRetention)
	}
	return nil
}

// Get returns a policy.
func (s *Service) Get(ctx context.Context, who access.Subject, id int64) (Policy, error) {
	p, _, err := s.authorized(ctx, who, id, access.Read)
	return p, err
}

// Create adds a project's policy (a project has at most one) and returns
// its id.
func (s *Service) Create(ctx context.Context, who access.Subject, p Policy) (int64, error) {
	if err := p.check(); err != nil {
		return 0, err
	}
	info, err := s.projects.Authorize(ctx, who, project.Ref{ID: p.Scope.Ref}, access.Create, access.TagRetention)
	if errdefs.IsNotFound(err) {
		return 0, errdefs.InvalidArgument(fmt.Errorf("invalid Project id %d", p.Scope.Ref))
	}
	if err != nil {
		return 0, err
	}
	rules, _ := json.Marshal(p.Rules)
	trigger, _ := json.Marshal(p.Trigger)
	now := sqldb.Nanos(s.db.Now())
	var id int64
	err = s.db.Tx(ctx, "create retention policy", func(tx *sqldb.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO retention_policies (project_id, algorithm, rules, trigger_spec, created, updated) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			info.ID, p.Algorithm, string(rules), string(trigger), now, now).Scan(&id)
		if sqldb.IsUniqueViolation(err) {
			var old int64
			tx.QueryRow(ctx, `SELECT id FROM retention_policies WHERE project_id = ?`, info.ID).Scan(&old)
			return errdefs.InvalidArgument(fmt.Errorf("project %d already has retention policy %d", info.ID, old))
		}
		if err != nil {
			return err
		}
		if err := s.projects.SetMetadataTx(ctx, tx, info.ID, map[string]string{"retention_id": strconv.FormatInt(id, 10)}); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: info.ID, Operation: "create", ResourceType: "retention_policy", Resource: fmt.Sprintf("%s/%d", info.Name, id),
			Description: fmt.Sprintf("create retention policy %d of project %s with %d rules", id, info.Name, len(p.Rules))})
	})
	if err != nil {
		return 0, err
	}
	return id, s.schedule(ctx, id, p.Trigger)
}

// schedule sets or removes a policy's schedule.
func (s *Service) schedule(ctx context.Context, id int64, t Trigger) error {
	c := t.Cron()
	if c == "" {
		return s.jobs.DeleteSchedule(ctx, TriggerKind, id)
	}
	args, _ := json.Marshal(triggerArgs{Policy: id})
	_, err := s.jobs.SetSchedule(ctx, jobs.Schedule{VendorType: TriggerKind, VendorID: id, Kind: TriggerKind, Args: args, Cron: c})
	return err
}

// Update replaces a policy's rules and trigger (not its project).
func (s *Service) Update(ctx context.Context, who access.Subject, id int64, p Policy) error {
	old, info, err := s.authorized(ctx, who, id, access.Update)
	if err != nil {
		return err
	}
	if p.Scope.Level == "" {
		p.Scope = old.Scope
	}
	if err := p.check(); err != nil {
		return err
	}
	if p.Scope.Ref != old.Scope.Ref {
		return errdefs.InvalidArgument(errors.New("a retention policy cannot move to another project"))
	}
	rules, _ := json.Marshal(p.Rules)
	trigger, _ := json.Marshal(p.Trigger)
	err = s.db.Tx(ctx, "update retention policy", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE retention_policies SET algorithm = ?, rules = ?, trigger_spec = ?, updated = ? WHERE id = ?`,
			p.Algorithm, string(rules), string(trigger), sqldb.Nanos(s.db.Now()), id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: info.ID, Operation: "update", ResourceType: "retention_policy", Resource: fmt.Sprintf("%s/%d", info.Name, id),
			Description: fmt.Sprintf("update retention policy %d of project %s: %d rules, schedule %q", id, info.Name, len(p.Rules), p.Trigger.Cron())})
	})
	if err != nil {
		return err
	}
	return s.schedule(ctx, id, p.Trigger)
}

// Delete removes a policy, its schedule and its finished runs; running
// runs are stopped (and go when they end, with the housekeeping).
func (s *Service) Delete(ctx context.Context, who access.Subject, id int64) error {
	_, info, err := s.authorized(ctx, who, id, access.Delete)
	if err != nil {
		return err
	}
	if err := s.jobs.DeleteSchedule(ctx, TriggerKind, id); err != nil {
		return err
	}
	execs, _, err := s.tasks.Executions(ctx, VendorType, id, query.Query{}, query.Page{})
	if err != nil {
		return err
	}
	for _, e := range execs {
		if e.Status == task.StatusRunning {
			if err := s.tasks.Stop(ctx, e.ID); err != nil {
				return err
			}
		}
	}
	return s.db.Tx(ctx, "delete retention policy", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM retention_policies WHERE id = ?`, id); err != nil {
			return err
		}
		if err := s.projects.DeleteMetadataTx(ctx, tx, info.ID, "retention_id"); err != nil {
			return err
		}
		if err := s.tasks.DeleteVendor(ctx, tx, VendorType, id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: info.ID, Operation: "delete", ResourceType: "retention_policy", Resource: fmt.Sprintf("%s/%d", info.Name, id)})
	})
}

// Trigger starts a run of a policy now and returns the execution's id. A
// run of the policy still running is a conflict.
func (s *Service) Trigger(ctx context.Context, who access.Subject, id int64, dryRun bool) (int64, error) {
	p, _, err := s.authorized(ctx, who, id, access.Update)
	if err != nil {
		return 0, err
	}
	if e, ok, err := s.running(ctx, id); err != nil {
		return 0, err
	} else if ok {
		return 0, errdefs.Conflict(fmt.Errorf("retention execution %d of policy %d is still running; stop it or wait", e, id))
	}
	work, err := s.work(ctx, p)
	if err != nil {
		return 0, err
	}
	var exec int64
	err = s.db.Tx(ctx, "trigger retention", func(tx *sqldb.Tx) error {
		exec, err = s.launch(ctx, tx, p, work, task.TriggerManual, dryRun, who.Name)
		return err
	})
	return exec, err
}

// running returns a running execution of a policy.
func (s *Service) running(ctx context.Context, policy int64) (int64, bool, error) {
	list, _, err := s.tasks.Executions(ctx, VendorType, policy, query.Query{}, query.Page{Number: 1, Size: 3})
	if err != nil {
		return 0, false, err
	}
	for _, e := range list {
		if e.Status == task.StatusRunning {
			return e.ID, true, nil
		}
	}
	return 0, false, nil
}

// repoWork is one repository of a run and the rules that apply to it.
type repoWork struct {
	repo  string // "project/name"
	rules []Rule
}

// work lists the repositories of a policy's project that one of its rules
// applies to, with those rules.
func (s *Service) work(ctx context.Context, p Policy) ([]repoWork, error) {
	names, err := s.artifacts.RepositoryNames(ctx, p.Scope.Ref)
	if err != nil {
		return nil, err
	}
	var out []repoWork
	for _, full := range names {
		_, name, _ := strings.Cut(full, "/")
		var rules []Rule
		for _, r := range p.Rules {
			if r.Takes(name) {
				rules = append(rules, r)
			}
		}
		if len(rules) > 0 {
			out = append(out, repoWork{repo: full, rules: rules})
		}
	}
	return out, nil
}

// runArgs are a RETENTION job's arguments: a batch of repositories of a
// run (Repositories, with the indexes of the Rules that apply to each),
// or, for jobs queued before batches, one (Repository, all the Rules).
type runArgs struct {
	Execution    int64       `json:"execution"`
	Policy       int64       `json:"policy"`
	Project      int64       `json:"project"`
	Repository   string      `json:"repository,omitempty"`
	Repositories []repoRules `json:"repositories,omitempty"`
	DryRun       bool        `json:"dry_run"`
	Rules        []Rule      `json:"rules"`
	Operator     string      `json:"operator,omitempty"`
}

// repoRules is one repository of a batch and the rules (indexes into
// runArgs.Rules) that apply to it.
type repoRules struct {
	Repository string `json:"repository"`
	Rules      []int  `json:"rules"`
}

// repos returns the repositories of a job with their rules.
func (a runArgs) repos() []repoWork {
	if len(a.Repositories) == 0 && a.Repository != "" {
		return []repoWork{{repo: a.Repository, rules: a.Rules}}
	}
	out := make([]repoWork, 0, len(a.Repositories))
	for _, r := range a.Repositories {
		w := repoWork{repo: r.Repository}
		for _, i := range r.Rules {
			if i >= 0 && i < len(a.Rules) {
				w.rules = append(w.rules, a.Rules[i])
			}
		}
		out = append(out, w)
	}
	return out
}

// batchSize is how many repositories one RETENTION job works: each is
// still a task of its own (with its plan and counts), but a job, its
// claims and its commits are paid per batch.
const batchSize = 50

// launch creates, in tx, an execution of p with a task per repository,
// the tasks of batchSize repositories sharing a job.
func (s *Service) launch(ctx context.Context, tx *sqldb.Tx, p Policy, work []repoWork, trigger string, dryRun bool, operator string) (int64, error) {
	extra := map[string]any{"dry_run": dryRun}
	if operator != "" {
		extra["operator"] = operator
	}
	exec, err := s.tasks.Create(ctx, tx, VendorType, p.ID, trigger, extra)
	if err != nil {
		return 0, err
	}
	for start := 0; start < len(work); start += batchSize {
		batch := work[start:min(start+batchSize, len(work))]
		a := runArgs{Execution: exec, Policy: p.ID, Project: p.Scope.Ref, DryRun: dryRun, Operator: operator}
		index := map[int]int{}
		extras := make([]map[string]any, len(batch))
		for i, w := range batch {
			rr := repoRules{Repository: w.repo, Rules: []int{}}
			for _, r := range w.rules {
				k, ok := index[r.ID]
				if !ok {
					k = len(a.Rules)
					index[r.ID] = k
					a.Rules = append(a.Rules, r)
				}
				rr.Rules = append(rr.Rules, k)
			}
			a.Repositories = append(a.Repositories, rr)
			_, name, _ := strings.Cut(w.repo, "/")
			extras[i] = map[string]any{"repository": name, "dry_run": dryRun}
		}
		req := jobs.Request{Kind: Kind, Args: a, Key: fmt.Sprintf("retention:%d:%s", exec, batch[0].repo)}
		if _, err := s.tasks.AddTasks(ctx, tx, exec, req, extras); err != nil {
			return 0, err
		}
	}
	return exec, nil
}

// triggerArgs are a RETENTION_SCHEDULE job's arguments.
type triggerArgs struct {
	Policy int64 `json:"policy"`
}

// scheduled starts a run of a policy from its schedule: once per tick
// (sysjob's record of trigger jobs), skipped while a run is going.
func (s *Service) scheduled(ctx context.Context, j *jobs.Job, a triggerArgs) error {
	p, err := s.policy(ctx, a.Policy)
	if errdefs.IsNotFound(err) {
		j.Log.Info("the retention policy is gone; removing its schedule", "policy", a.Policy)
		return s.jobs.DeleteSchedule(ctx, TriggerKind, a.Policy)
	}
	if err != nil {
		return err
	}
	if e, ok, err := s.running(ctx, p.ID); err != nil {
		return err
	} else if ok {
		j.Log.Warn("skipping this tick: a run of the policy is still going", "policy", p.ID, "execution", e)
		return nil
	}
	work, err := s.work(ctx, p)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, "scheduled retention", func(tx *sqldb.Tx) error {
		first, err := sysjob.Once(ctx, tx, j.ID, VendorType)
		if err != nil || !first {
			return err
		}
		exec, err := s.launch(ctx, tx, p, work, task.TriggerSchedule, false, "")
		if err != nil {
			return err
		}
		j.Log.Info("started a scheduled retention run", "policy", p.ID, "execution", exec, "repositories", len(work))
		return sysjob.Ran(ctx, tx, j.ID, exec)
	})
}

// Execution is a run as Harbor's RetentionExecution shows it.
type Execution struct {
	ID        int64
	PolicyID  int64
	Status    string
	Trigger   string
	DryRun    bool
	StartTime time.Time
	EndTime   time.Time
}

func toExecution(e task.Execution) Execution {
	dry, _ := e.ExtraAttrs["dry_run"].(bool)
	return Execution{ID: e.ID, PolicyID: e.VendorID, Status: e.Status, Trigger: e.Trigger, DryRun: dry, StartTime: e.StartTime, EndTime: e.EndTime}
}

// Executions lists a policy's runs, newest first.
func (s *Service) Executions(ctx context.Context, who access.Subject, id int64, page query.Page) ([]Execution, int64, error) {
	if _, _, err := s.authorized(ctx, who, id, access.List); err != nil {
		return nil, 0, err
	}
	list, total, err := s.tasks.Executions(ctx, VendorType, id, query.Query{}, page)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Execution, len(list))
	for i, e := range list {
		out[i] = toExecution(e)
	}
	return out, total, nil
}

// execution checks that exec is a run of policy id.
func (s *Service) execution(ctx context.Context, id, exec int64) (task.Execution, error) {
	e, err := s.tasks.Execution(ctx, exec)
	if err != nil {
		return task.Execution{}, err
	}
	if e.VendorType != VendorType || e.VendorID != id {
		return task.Execution{}, errdefs.NotFound(fmt.Errorf("retention policy %d: execution id %d not found", id, exec))
	}
	return e, nil
}

// Operate does an action on a run: "stop" is the only one.
func (s *Service) Operate(ctx context.Context, who access.Subject, id, exec int64, action string) error {
	if action != "stop" {
		return errdefs.InvalidArgument(fmt.Errorf("action should be 'stop', not %.32q", action))
	}
	if _, _, err := s.authorized(ctx, who, id, access.Update); err != nil {
		return err
	}
	if _, err := s.execution(ctx, id, exec); err != nil {
		return err
	}
	return s.tasks.Stop(ctx, exec)
}

// Task is a repository of a run, as Harbor's RetentionExecutionTask
// shows it.
type Task struct {
	ID          int64
	ExecutionID int64
	Repository  string
	JobID       int64
	Status      string
	StatusCode  int
	StartTime   time.Time
	EndTime     time.Time
	Total       int64
	Retained    int64
}

// statusCode is Harbor's job status code.
func statusCode(status string) int {
	switch status {
	case task.StatusPending:
		return 0
	case task.StatusRunning:
		return 2
	}
	return 3
}

// Tasks lists a run's tasks.
func (s *Service) Tasks(ctx context.Context, who access.Subject, id, exec int64, page query.Page) ([]Task, int64, error) {
	if _, _, err := s.authorized(ctx, who, id, access.List); err != nil {
		return nil, 0, err
	}
	if _, err := s.execution(ctx, id, exec); err != nil {
		return nil, 0, err
	}
	list, total, err := s.tasks.Tasks(ctx, exec, query.Query{}, page)
	if err != nil {
		return nil, 0, err
	}
	counts, err := s.counts(ctx, exec)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Task, len(list))
	for i, t := range list {
		name, _ := t.ExtraAttrs["repository"].(string)
		c := counts[name]
		out[i] = Task{ID: t.ID, ExecutionID: t.ExecutionID, Repository: name, JobID: t.JobID, Status: t.Status, StatusCode: statusCode(t.Status),
			StartTime: t.StartTime, EndTime: t.EndTime, Total: c[0], Retained: c[1]}
	}
	return out, total, nil
}

// counts returns each repository's total and retained of a run, by the
// repository's name within its project.
func (s *Service) counts(ctx context.Context, exec int64) (map[string][2]int64, error) {
	rows, err := s.db.Query(ctx, `SELECT repository, total, retained FROM retention_tasks WHERE execution_id = ?`, exec)
	if err != nil {
		return nil, s.db.Wrap("retention tasks", err)
	}
	defer rows.Close()
	out := map[string][2]int64{}
	for rows.Next() {
		var repo string
		var total, retained int64
		if err := rows.Scan(&repo, &total, &retained); err != nil {
			return nil, s.db.Wrap("retention tasks", err)
		}
		_, name, _ := strings.Cut(repo, "/")
		out[name] = [2]int64{total, retained}
	}
	return out, s.db.Wrap("retention tasks", rows.Err())
}

// TaskLog returns a task's log: its job's lines, then the plan, an
// artifact per line with its decision and why.
func (s *Service) TaskLog(ctx context.Context, who access.Subject, id, exec, taskID int64) ([]byte, error) {
	_, info, err := s.authorized(ctx, who, id, access.Read)
	if err != nil {
		return nil, err
	}
	if _, err := s.execution(ctx, id, exec); err != nil {
		return nil, err
	}
	t, err := s.tasks.Task(ctx, taskID)
	if err != nil {
		return nil, err
	}
	if t.ExecutionID != exec {
		return nil, errdefs.NotFound(fmt.Errorf("retention execution %d: task %d not found", exec, taskID))
	}
	lines, err := s.tasks.TaskLog(ctx, taskID)
	if err != nil {
		return nil, err
	}
	name, _ := t.ExtraAttrs["repository"].(string)
	table, err := s.planTable(ctx, exec, info.Name+"/"+name)
	if err != nil {
		return nil, err
	}
	return append(lines, table...), nil
}

// Sweep keeps the newest 50 runs of each policy and forgets the plans of
// runs that are gone (housekeeping).
func (s *Service) Sweep(ctx context.Context) error {
	if err := s.tasks.Sweep(ctx, VendorType, 50); err != nil {
		return err
	}
	rows, err := s.db.Query(ctx, `SELECT DISTINCT execution_id FROM retention_tasks`)
	if err != nil {
		return s.db.Wrap("retention sweep", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return s.db.Wrap("retention sweep", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if _, err := s.tasks.Execution(ctx, id); !errdefs.IsNotFound(err) {
			continue
		}
		err := s.db.Tx(ctx, "forget retention plans", func(tx *sqldb.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM retention_decisions WHERE execution_id = ?`, id); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM retention_tasks WHERE execution_id = ?`, id)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// system is the actor of retention's deletions.
func system(ctx context.Context) context.Context { return actor.System(ctx, "retention") }
