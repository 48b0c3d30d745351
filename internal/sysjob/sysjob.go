// Package sysjob runs Harbor's system-wide jobs that have one schedule
// and a history of runs: garbage collection (/system/gc) and the audit
// log purge (/system/purgeaudit). A run is an execution of the vendor
// (package task) with one task, the work job; its log is the job's.
//
// A run starts manually (the schedule API with type Manual: at once, in
// the request's transaction) or from the vendor's schedule, which fires a
// trigger job (kind VENDOR_SCHEDULE) that creates the execution and its
// task. A trigger job may run twice (a process killed after it committed
// and before it finished); the table sysjob_runs, keyed by the trigger
// job's id and written in the same transaction as the execution, makes
// the second run a no-op, so a tick is one run whatever happens.
//
// # Table (owner "sysjob")
//
//	sysjob_runs  trigger_job (primary key), vendor_type, execution_id
package sysjob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/task"
)

// Migrations create the table of scheduled runs.
var Migrations = []sqldb.Migration{{Owner: "sysjob", Name: "scheduled runs", SQL: []string{
	`CREATE TABLE sysjob_runs (
		trigger_job {{int}} PRIMARY KEY,
		vendor_type {{text}} NOT NULL,
		execution_id {{int}} NOT NULL)`,
}}}

// Spec is one system job.
type Spec struct {
	// VendorType names the executions, the schedule and the work job's
	// kind, as Harbor does ("GARBAGE_COLLECTION", "PURGE_AUDIT_LOG").
	VendorType string
	// Resource is the system resource whose permissions the API needs.
	Resource access.Resource
	// Params checks a run's parameters, as the API gives them (JSON
	// numbers as json.Number or float64), and returns what is stored and
	// shown (job_parameters). A failure is errdefs.ErrInvalidArgument.
	Params func(map[string]any) (map[string]any, error)
	// Run does one run; it logs to j.Log. Its context ends when the run
	// is stopped.
	Run func(ctx context.Context, j *jobs.Job, params map[string]any) error
	// Timeout bounds one attempt (0: none); MaxAttempts defaults to 3.
	Timeout     time.Duration
	MaxAttempts int
}

// Service runs one system job.
type Service struct {
	db     *sqldb.DB
	access *access.Checker
	jobs   *jobs.Queue
	tasks  *task.Manager
	spec   Spec
	log    *slog.Logger
}

// New returns the service of spec.
func New(db *sqldb.DB, checker *access.Checker, q *jobs.Queue, tasks *task.Manager, spec Spec, log *slog.Logger) *Service {
	if spec.MaxAttempts <= 0 {
		spec.MaxAttempts = 3
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, access: checker, jobs: q, tasks: tasks, spec: spec, log: log}
}

// TriggerKind is the kind of the job a schedule fires.
func (s *Service) TriggerKind() string { return s.spec.VendorType + "_SCHEDULE" }

// Definitions are the work job and the trigger job, for registration at
// wiring.
func (s *Service) Definitions() []jobs.Definition {
	return []jobs.Definition{
		{Kind: s.spec.VendorType, Run: jobs.Func(s.work), Concurrency: 1, MaxAttempts: s.spec.MaxAttempts, Timeout: s.spec.Timeout},
		{Kind: s.TriggerKind(), Run: jobs.Func(s.trigger), Concurrency: 1, MaxAttempts: 5, Timeout: time.Minute},
	}
}

// workArgs are the work job's arguments.
type workArgs struct {
	Execution int64          `json:"execution"`
	Params    map[string]any `json:"params"`
}

func (s *Service) work(ctx context.Context, j *jobs.Job, a workArgs) error {
	ctx = actor.System(ctx, strings.ToLower(s.spec.VendorType))
	if j.Attempt > 1 {
		j.Log.Info("resuming after an interrupted attempt", "attempt", j.Attempt)
	}
	return s.spec.Run(ctx, j, a.Params)
}

// triggerArgs are the trigger job's arguments: the schedule's parameters.
type triggerArgs struct {
	Params map[string]any `json:"params"`
}

func (s *Service) trigger(ctx context.Context, j *jobs.Job, a triggerArgs) error {
	return s.db.Tx(ctx, "scheduled "+s.spec.VendorType, func(tx *sqldb.Tx) error {
		first, err := Once(ctx, tx, j.ID, s.spec.VendorType)
		if err != nil || !first {
			return err // !first: this tick's run exists
		}
		exec, err := s.start(ctx, tx, task.TriggerSchedule, a.Params)
		if err != nil {
			return err
		}
		return Ran(ctx, tx, j.ID, exec)
	})
}

// start creates an execution and its task in tx.
func (s *Service) start(ctx context.Context, tx *sqldb.Tx, trigger string, params map[string]any) (int64, error) {
	extra := map[string]any{}
	for k, v := range params {
		extra[k] = v
	}
	if op := actor.From(ctx).Name; op != "" && trigger == task.TriggerManual {
		extra["operator"] = op
	}
	exec, err := s.tasks.Create(ctx, tx, s.spec.VendorType, 0, trigger, extra)
	if err != nil {
		return 0, err
	}
	_, err = s.tasks.AddTask(ctx, tx, exec, jobs.Request{Kind: s.spec.VendorType, Args: workArgs{Execution: exec, Params: params}, Key: fmt.Sprintf("%s:%d", strings.ToLower(s.spec.VendorType), exec)}, nil)
	return exec, err
}

func (s *Service) require(ctx context.Context, who access.Subject, a access.Action) error {
	return s.access.Require(ctx, who, a, s.spec.Resource, 0)
}

// Schedule is the vendor's schedule.
type Schedule struct {
	ID      int64
	Type    string // Hourly, Daily, Weekly, Custom
	Cron    string
	Next    time.Time
	Params  map[string]any
	Created time.Time
	Updated time.Time
}

// Schedule returns the schedule; ok is false when there is none.
func (s *Service) Schedule(ctx context.Context, who access.Subject) (sch Schedule, ok bool, err error) {
	if err := s.require(ctx, who, access.Read); err != nil {
		return Schedule{}, false, err
	}
	js, err := s.jobs.GetSchedule(ctx, s.TriggerKind(), 0)
	if errdefs.IsNotFound(err) {
		return Schedule{}, false, nil
	}
	if err != nil {
		return Schedule{}, false, err
	}
	var a triggerArgs
	json.Unmarshal(js.Args, &a)
	return Schedule{ID: js.ID, Type: jobs.TypeOf(js.Cron), Cron: js.Cron, Next: js.Next, Params: a.Params, Created: js.Created, Updated: js.Updated}, true, nil
}

// SetSchedule acts on Harbor's schedule request: Manual runs now (and
// returns the execution's id), None removes the schedule, Hourly, Daily,
// Weekly and Custom (with a six-field cron) set it. create is the
// permission asked: create (POST) or update (PUT).
func (s *Service) SetSchedule(ctx context.Context, who access.Subject, typ, cron string, params map[string]any, create bool) (int64, error) {
	act := access.Update
	if create {
		act = access.Create
	}
	if err := s.require(ctx, who, act); err != nil {
		return 0, err
	}
	if typ != jobs.TypeNone && typ != "" {
		var err error
		if params, err = s.spec.Params(params); err != nil {
			return 0, err
		}
	}
	switch typ {
	case jobs.TypeManual:
		return s.runNow(ctx, params)
	case jobs.TypeNone, "":
		return 0, s.jobs.DeleteSchedule(ctx, s.TriggerKind(), 0)
	}
	c, err := jobs.CronOf(typ, cron)
	if err != nil {
		return 0, fmt.Errorf("invalid cron string for scheduled %s: %w", strings.ToLower(strings.ReplaceAll(s.spec.VendorType, "_", " ")), err)
	}
	_, err = s.jobs.SetSchedule(ctx, jobs.Schedule{VendorType: s.TriggerKind(), Kind: s.TriggerKind(), Args: mustJSON(triggerArgs{Params: params}), Cron: c})
	return 0, err
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// runNow starts a manual run, unless one is running (a conflict).
func (s *Service) runNow(ctx context.Context, params map[string]any) (int64, error) {
	list, _, err := s.tasks.Executions(ctx, s.spec.VendorType, 0, query.Query{}, query.Page{Number: 1, Size: 5})
	if err != nil {
		return 0, err
	}
	for _, e := range list {
		if e.Status == task.StatusRunning {
			return 0, errdefs.Conflict(fmt.Errorf("%s %d is running; wait for it or stop it", strings.ToLower(strings.ReplaceAll(s.spec.VendorType, "_", " ")), e.ID))
		}
	}
	var exec int64
	err = s.db.Tx(ctx, "start "+s.spec.VendorType, func(tx *sqldb.Tx) error {
		var err error
		exec, err = s.start(ctx, tx, task.TriggerManual, params)
		return err
	})
	return exec, err
}

// History lists the runs, newest first.
func (s *Service) History(ctx context.Context, who access.Subject, q query.Query, page query.Page) ([]task.Execution, int64, error) {
	if err := s.require(ctx, who, access.List); err != nil {
		return nil, 0, err
	}
	return s.tasks.Executions(ctx, s.spec.VendorType, 0, q, page)
}

func (s *Service) execution(ctx context.Context, id int64) (task.Execution, error) {
	e, err := s.tasks.Execution(ctx, id)
	if err != nil {
		return task.Execution{}, err
	}
	if e.VendorType != s.spec.VendorType {
		return task.Execution{}, errdefs.NotFound(fmt.Errorf("%s %d not found", strings.ToLower(strings.ReplaceAll(s.spec.VendorType, "_", " ")), id))
	}
	return e, nil
}

// Execution returns a run.
func (s *Service) Execution(ctx context.Context, who access.Subject, id int64) (task.Execution, error) {
	if err := s.require(ctx, who, access.Read); err != nil {
		return task.Execution{}, err
	}
	return s.execution(ctx, id)
}

// Log returns a run's log.
func (s *Service) Log(ctx context.Context, who access.Subject, id int64) ([]byte, error) {
	if err := s.require(ctx, who, access.Read); err != nil {
		return nil, err
	}
	if _, err := s.execution(ctx, id); err != nil {
		return nil, err
	}
	ts, _, err := s.tasks.Tasks(ctx, id, query.Query{}, query.Page{Number: 1, Size: 1})
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, errdefs.NotFound(fmt.Errorf("the log of run %d is not found", id))
	}
	return s.tasks.TaskLog(ctx, ts[0].ID)
}

// Stop stops a run (a finished one stays as it is).
func (s *Service) Stop(ctx context.Context, who access.Subject, id int64) error {
	if err := s.require(ctx, who, access.Stop); err != nil {
		return err
	}
	if _, err := s.execution(ctx, id); err != nil {
		return err
	}
	return s.tasks.Stop(ctx, id)
}

// Latest returns the newest run; ok is false when there is none.
func (s *Service) Latest(ctx context.Context) (task.Execution, bool, error) {
	list, _, err := s.tasks.Executions(ctx, s.spec.VendorType, 0, query.Query{}, query.Page{Number: 1, Size: 1})
	if err != nil || len(list) == 0 {
		return task.Execution{}, false, err
	}
	return list[0], true, nil
}

// Int reads an integer parameter (a JSON number, as json.Number or
// float64, or a decimal string); ok is false when it is absent.
func Int(params map[string]any, key string) (n int64, ok bool, err error) {
	v, present := params[key]
	if !present || v == nil {
		return 0, false, nil
	}
	switch x := v.(type) {
	case json.Number:
		n, err = x.Int64()
	case float64:
		n = int64(x)
		if float64(n) != x {
			err = errors.New("not an integer")
		}
	case int64:
		n = x
	case int:
		n = int64(x)
	case string:
		err = json.Unmarshal([]byte(x), &n)
	default:
		err = fmt.Errorf("a %T", v)
	}
	if err != nil {
		return 0, true, errdefs.InvalidArgument(fmt.Errorf("%s should be integer format: %v", key, err))
	}
	return n, true, nil
}

// Bool reads a boolean parameter (false when absent).
func Bool(params map[string]any, key string) (bool, error) {
	v, ok := params[key]
	if !ok || v == nil {
		return false, nil
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch x {
		case "true":
			return true, nil
		case "false", "":
			return false, nil
		}
	}
	return false, errdefs.InvalidArgument(fmt.Errorf("%s should be true or false", key))
}

// Once records, in tx, that the trigger job jobID of vendorType runs; it
// reports false when it had already (the run it started exists, or will
// with tx): a trigger job that runs twice starts one run.
func Once(ctx context.Context, tx *sqldb.Tx, jobID int64, vendorType string) (bool, error) {
	res, err := tx.Exec(ctx, `INSERT INTO sysjob_runs (trigger_job, vendor_type, execution_id) VALUES (?, ?, 0) ON CONFLICT (trigger_job) DO NOTHING`, jobID, vendorType)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Ran records, in tx, the execution a trigger job started.
func Ran(ctx context.Context, tx *sqldb.Tx, jobID, execution int64) error {
	_, err := tx.Exec(ctx, `UPDATE sysjob_runs SET execution_id = ? WHERE trigger_job = ?`, execution, jobID)
	return err
}
