// Package task is Harbor's execution and task model over the job service:
// an execution is one run of something a vendor does (a webhook policy
// delivering an event, a replication policy, a retention run, a garbage
// collection, a scan of all artifacts), identified by the vendor's type
// and id; its tasks are jobs. Harbor's APIs show executions with their
// status and task metrics, and tasks with their status, run count and
// log; this package answers them for every vendor.
//
// A task's status is its job's state, read from the job service when
// asked, and an execution's is derived from its tasks' as Harbor derives
// it (Running while any task is pending or running, else Error if any
// failed, else Stopped if any was stopped, else Success), unless the
// vendor set one (MarkError). Nothing is kept in step, so nothing can
// drift: a job that finishes, or that runs again after its process died,
// is seen as it is.
//
// Tables (owner "task"):
//
//	executions  id, vendor_type, vendor_id, trigger (MANUAL, SCHEDULE,
//	            EVENT), extra_attrs (JSON), status ('' : derived),
//	            status_message, start_time, updated
//	tasks       id, execution_id, job_id, extra_attrs (JSON), created
//
// The jobs of an execution are owned by it (jobs.Request.Owner =
// "execution:ID"): the job service keeps them until the execution is
// deleted.
package task

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Migrations create the tables of executions and tasks.
var Migrations = []sqldb.Migration{{Owner: "task", Name: "executions and tasks", SQL: []string{
	`CREATE TABLE executions (
		id {{id}},
		vendor_type {{text}} NOT NULL,
		vendor_id {{int}} NOT NULL,
		trigger {{text}} NOT NULL,
		extra_attrs {{text}} NOT NULL,
		status {{text}} NOT NULL,
		status_message {{text}} NOT NULL,
		start_time {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE INDEX executions_vendor ON executions (vendor_type, vendor_id, id)`,
	`CREATE TABLE tasks (
		id {{id}},
		execution_id {{int}} NOT NULL,
		job_id {{int}} NOT NULL,
		extra_attrs {{text}} NOT NULL,
		created {{int}} NOT NULL)`,
	`CREATE INDEX tasks_execution ON tasks (execution_id, id)`,
}}}

// Triggers, as Harbor names them.
const (
	TriggerManual   = "MANUAL"
	TriggerSchedule = "SCHEDULE"
	TriggerEvent    = "EVENT"
)

// Harbor's statuses (also the job service's states).
const (
	StatusPending = jobs.Pending
	StatusRunning = jobs.Running
	StatusSuccess = jobs.Success
	StatusError   = jobs.Error
	StatusStopped = jobs.Stopped
)

// Metrics count an execution's tasks by status.
type Metrics struct {
	TaskCount          int64 `json:"task_count"`
	SuccessTaskCount   int64 `json:"success_task_count"`
	ErrorTaskCount     int64 `json:"error_task_count"`
	PendingTaskCount   int64 `json:"pending_task_count"`
	RunningTaskCount   int64 `json:"running_task_count"`
	ScheduledTaskCount int64 `json:"scheduled_task_count"`
	StoppedTaskCount   int64 `json:"stopped_task_count"`
}

// Execution is one run of a vendor.
type Execution struct {
	ID            int64
	VendorType    string
	VendorID      int64
	Status        string
	StatusMessage string
	Metrics       Metrics
	Trigger       string
	ExtraAttrs    map[string]any
	StartTime     time.Time
	// EndTime is when the last task finished, once all have.
	EndTime    time.Time
	UpdateTime time.Time
}

// Task is one job of an execution (or one part of a job that several
// tasks share: AddTasks).
type Task struct {
	ID            int64
	ExecutionID   int64
	JobID         int64
	Status        string
	StatusMessage string
	RunCount      int
	ExtraAttrs    map[string]any
	CreationTime  time.Time
	StartTime     time.Time
	UpdateTime    time.Time
	EndTime       time.Time
}

// Manager keeps executions and tasks.
type Manager struct {
	db *sqldb.DB
	q  *jobs.Queue
}

// New returns the manager over db and the job service q.
func New(db *sqldb.DB, q *jobs.Queue) *Manager { return &Manager{db: db, q: q} }

// Owner is the job owner name of an execution's jobs.
func Owner(execution int64) string { return "execution:" + strconv.FormatInt(execution, 10) }

func encode(extra map[string]any) (string, error) {
	if extra == nil {
		return "{}", nil
	}
	b, err := json.Marshal(extra)
	return string(b), err
}

// Create adds an execution in tx.
func (m *Manager) Create(ctx context.Context, tx *sqldb.Tx, vendorType string, vendorID int64, trigger string, extra map[string]any) (int64, error) {
	attrs, err := encode(extra)
	if err != nil {
		return 0, errdefs.InvalidArgument(fmt.Errorf("execution attributes: %w", err))
	}
	now := sqldb.Nanos(m.db.Now())
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO executions (vendor_type, vendor_id, trigger, extra_attrs, status, status_message, start_time, updated)
		VALUES (?, ?, ?, ?, '', '', ?, ?) RETURNING id`, vendorType, vendorID, trigger, attrs, now, now).Scan(&id)
	return id, err
}

// AddTask adds a task to an execution in tx: its job is enqueued with
// req, owned by the execution.
func (m *Manager) AddTask(ctx context.Context, tx *sqldb.Tx, execution int64, req jobs.Request, extra map[string]any) (int64, error) {
	attrs, err := encode(extra)
	if err != nil {
		return 0, errdefs.InvalidArgument(fmt.Errorf("task attributes: %w", err))
	}
	req.Owner = Owner(execution)
	job, _, err := m.q.EnqueueTx(ctx, tx, req)
	if err != nil {
		return 0, err
	}
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO tasks (execution_id, job_id, extra_attrs, created) VALUES (?, ?, ?, ?) RETURNING id`,
		execution, job, attrs, sqldb.Nanos(m.db.Now())).Scan(&id)
	return id, err
}

// AddTasks adds, in tx, tasks to an execution that share one job,
// enqueued with req: a vendor whose tasks are many and small (retention's
// repositories) runs them as batches rather than paying a job each. Each
// task shows its job's status; an execution's Metrics count jobs.
func (m *Manager) AddTasks(ctx context.Context, tx *sqldb.Tx, execution int64, req jobs.Request, extras []map[string]any) ([]int64, error) {
	req.Owner = Owner(execution)
	job, _, err := m.q.EnqueueTx(ctx, tx, req)
	if err != nil {
		return nil, err
	}
	now := sqldb.Nanos(m.db.Now())
	ids := make([]int64, len(extras))
	for i, extra := range extras {
		attrs, err := encode(extra)
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("task attributes: %w", err))
		}
		if err := tx.QueryRow(ctx, `INSERT INTO tasks (execution_id, job_id, extra_attrs, created) VALUES (?, ?, ?, ?) RETURNING id`,
			execution, job, attrs, now).Scan(&ids[i]); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// SetStatus sets, in tx, an execution's status and message if its status
// is from ("" is the derived status, the tasks' say once it is set back
// to ""), and reports whether it did: a vendor marks an execution Running
// while it prepares its tasks, then hands it to its tasks, and a Stop
// that came first wins.
func (m *Manager) SetStatus(ctx context.Context, tx *sqldb.Tx, execution int64, from, to, message string) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE executions SET status = ?, status_message = ?, updated = ? WHERE id = ? AND status = ?`,
		to, message, sqldb.Nanos(m.db.Now()), execution, from)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// MarkError ends an execution as failed with a message (a vendor that
// could not even create its tasks).
func (m *Manager) MarkError(ctx context.Context, execution int64, message string) error {
	_, err := m.db.Exec(ctx, `UPDATE executions SET status = ?, status_message = ?, updated = ? WHERE id = ?`,
		StatusError, message, sqldb.Nanos(m.db.Now()), execution)
	return m.db.Wrap("mark execution", err)
}

const execCols = `id, vendor_type, vendor_id, trigger, extra_attrs, status, status_message, start_time, updated`

func scanExec(r sqldb.Row) (Execution, error) {
	var e Execution
	var attrs string
	var start, updated int64
	err := r.Scan(&e.ID, &e.VendorType, &e.VendorID, &e.Trigger, &attrs, &e.Status, &e.StatusMessage, &start, &updated)
	if err == nil {
		json.Unmarshal([]byte(attrs), &e.ExtraAttrs)
	}
	e.StartTime, e.UpdateTime = sqldb.Time(start), sqldb.Time(updated)
	return e, err
}

// ExecutionFields are the keys an execution listing may filter and sort
// by.
var ExecutionFields = query.Fields{
	"id":         {Column: "id", Kind: query.Int},
	"trigger":    {Column: "trigger"},
	"start_time": {Column: "start_time", Kind: query.Time},
	"status":     {Column: "status"},
}

// Execution returns an execution.
func (m *Manager) Execution(ctx context.Context, id int64) (Execution, error) {
	e, err := scanExec(m.db.QueryRow(ctx, `SELECT `+execCols+` FROM executions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Execution{}, errdefs.NotFound(fmt.Errorf("execution %d not found", id))
	}
	if err != nil {
		return Execution{}, m.db.Wrap("execution", err)
	}
	list := []Execution{e}
	if err := m.fill(ctx, list); err != nil {
		return Execution{}, err
	}
	return list[0], nil
}

// Executions lists a vendor's executions (every vendor of the type when
// vendorID < 0), newest first unless sorted otherwise.
func (m *Manager) Executions(ctx context.Context, vendorType string, vendorID int64, q query.Query, page query.Page) ([]Execution, int64, error) {
	c, err := q.SQL(m.db.Dialect(), ExecutionFields, "id DESC", "id")
	if err != nil {
		return nil, 0, err
	}
	where := ` WHERE vendor_type = ? AND vendor_id = ?`
	args := []any{vendorType, vendorID}
	if vendorID < 0 {
		where, args = ` WHERE vendor_type = ?`, []any{vendorType}
	}
	if w := c.WhereSQL(); w != "" {
		where += " AND " + strings.TrimPrefix(w, " WHERE ")
		args = append(args, c.Args...)
	}
	out, total, err := sqldb.ListPage(ctx, m.db, "executions", execCols, where, args, c.OrderBy+page.LimitSQL(), scanExec)
	if err != nil {
		return nil, 0, err
	}
	return out, total, m.fill(ctx, out)
}

// fill derives the executions' metrics, status and end time from their
// jobs.
func (m *Manager) fill(ctx context.Context, list []Execution) error {
	owners := make([]string, len(list))
	for i, e := range list {
		owners[i] = Owner(e.ID)
	}
	tallies, err := m.q.Tallies(ctx, owners)
	if err != nil {
		return err
	}
	for i := range list {
		e := &list[i]
		t := tallies[Owner(e.ID)]
		e.Metrics = Metrics{
			TaskCount:        t.Total(),
			SuccessTaskCount: t.ByState[jobs.Success],
			ErrorTaskCount:   t.ByState[jobs.Error],
			PendingTaskCount: t.ByState[jobs.Pending],
			RunningTaskCount: t.ByState[jobs.Running],
			StoppedTaskCount: t.ByState[jobs.Stopped],
		}
		unfinished := e.Metrics.PendingTaskCount + e.Metrics.RunningTaskCount
		if unfinished == 0 && t.Total() > 0 {
			e.EndTime = t.LastFinished
		}
		if e.Status != "" {
			continue
		}
		switch {
		case unfinished > 0:
			e.Status = StatusRunning
		case e.Metrics.ErrorTaskCount > 0:
			e.Status = StatusError
		case e.Metrics.StoppedTaskCount > 0:
			e.Status = StatusStopped
		default:
			e.Status = StatusSuccess
		}
		if e.EndTime.IsZero() && unfinished == 0 {
			e.EndTime = e.StartTime
		}
	}
	return nil
}

// TaskFields are the keys a task listing may filter and sort by.
var TaskFields = query.Fields{
	"id":            {Column: "id", Kind: query.Int},
	"creation_time": {Column: "created", Kind: query.Time},
}

const taskCols = `id, execution_id, job_id, extra_attrs, created`

func scanTask(r sqldb.Row) (Task, error) {
	var t Task
	var attrs string
	var created int64
	err := r.Scan(&t.ID, &t.ExecutionID, &t.JobID, &attrs, &created)
	if err == nil {
		json.Unmarshal([]byte(attrs), &t.ExtraAttrs)
	}
	t.CreationTime = sqldb.Time(created)
	return t, err
}

// Tasks lists an execution's tasks.
func (m *Manager) Tasks(ctx context.Context, execution int64, q query.Query, page query.Page) ([]Task, int64, error) {
	c, err := q.SQL(m.db.Dialect(), TaskFields, "id ASC", "id")
	if err != nil {
		return nil, 0, err
	}
	where, args := ` WHERE execution_id = ?`, []any{execution}
	if w := c.WhereSQL(); w != "" {
		where += " AND " + strings.TrimPrefix(w, " WHERE ")
		args = append(args, c.Args...)
	}
	out, total, err := sqldb.ListPage(ctx, m.db, "tasks", taskCols, where, args, c.OrderBy+page.LimitSQL(), scanTask)
	if err != nil {
		return nil, 0, err
	}
	return out, total, m.fillTasks(ctx, out)
}

func (m *Manager) fillTasks(ctx context.Context, list []Task) error {
	ids := make([]int64, len(list))
	for i, t := range list {
		ids[i] = t.JobID
	}
	js, err := m.q.GetMany(ctx, ids)
	if err != nil {
		return err
	}
	for i := range list {
		t := &list[i]
		j, ok := js[t.JobID]
		if !ok {
			t.Status, t.StatusMessage = StatusError, "the job's record was purged"
			continue
		}
		t.Status, t.StatusMessage, t.RunCount = j.State, j.Error, j.Attempt
		t.StartTime, t.UpdateTime, t.EndTime = j.Started, j.Updated, j.Finished
	}
	return nil
}

// Task returns a task.
func (m *Manager) Task(ctx context.Context, id int64) (Task, error) {
	t, err := scanTask(m.db.QueryRow(ctx, `SELECT `+taskCols+` FROM tasks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Task{}, errdefs.NotFound(fmt.Errorf("task %d not found", id))
	}
	if err != nil {
		return Task{}, m.db.Wrap("task", err)
	}
	list := []Task{t}
	return list[0], m.fillTasks(ctx, list)
}

// TaskOfJob returns the id of the task whose job is job (0 when none).
func (m *Manager) TaskOfJob(ctx context.Context, job int64) (int64, error) {
	var id int64
	err := m.db.QueryRow(ctx, `SELECT id FROM tasks WHERE job_id = ?`, job).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, m.db.Wrap("task of job", err)
}

// TaskLog returns a task's log: its job's.
func (m *Manager) TaskLog(ctx context.Context, id int64) ([]byte, error) {
	t, err := m.Task(ctx, id)
	if err != nil {
		return nil, err
	}
	return m.q.Log(ctx, t.JobID)
}

// Stop stops an execution's unfinished tasks.
func (m *Manager) Stop(ctx context.Context, execution int64) error {
	return m.q.StopOwned(ctx, Owner(execution))
}

// DeleteVendor deletes, in tx, a vendor's executions whose jobs have
// finished, their tasks and jobs (a deleted policy's history). Running
// ones stay until they finish.
func (m *Manager) DeleteVendor(ctx context.Context, tx *sqldb.Tx, vendorType string, vendorID int64) error {
	rows, err := tx.Query(ctx, `SELECT id FROM executions WHERE vendor_type = ? AND vendor_id = ?`, vendorType, vendorID)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	return m.deleteExecutions(ctx, tx, ids)
}

func (m *Manager) deleteExecutions(ctx context.Context, tx *sqldb.Tx, ids []int64) error {
	for _, id := range ids {
		if err := m.q.DeleteOwned(ctx, tx, Owner(id)); err != nil {
			return err
		}
		left, err := m.q.CountOwned(ctx, tx, Owner(id))
		if err != nil {
			return err
		}
		if left > 0 {
			continue // unfinished jobs: keep the execution
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tasks WHERE execution_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM executions WHERE id = ?`, id); err != nil {
			return err
		}
	}
	return nil
}

// Sweep keeps the newest keep executions of each vendor of vendorType and
// deletes the older ones that have finished (Harbor keeps 50 webhook
// executions per policy).
func (m *Manager) Sweep(ctx context.Context, vendorType string, keep int) error {
	rows, err := m.db.Query(ctx, `SELECT vendor_id, COUNT(*) FROM executions WHERE vendor_type = ? GROUP BY vendor_id HAVING COUNT(*) > ?`, vendorType, keep)
	if err != nil {
		return m.db.Wrap("sweep executions", err)
	}
	var vendors []int64
	for rows.Next() {
		var v, n int64
		if err := rows.Scan(&v, &n); err != nil {
			rows.Close()
			return m.db.Wrap("sweep executions", err)
		}
		vendors = append(vendors, v)
	}
	rows.Close()
	for _, v := range vendors {
		err := m.db.Tx(ctx, "sweep executions", func(tx *sqldb.Tx) error {
			rows, err := tx.Query(ctx, `SELECT id FROM executions WHERE vendor_type = ? AND vendor_id = ? ORDER BY id DESC LIMIT 1000 OFFSET ?`, vendorType, v, keep)
			if err != nil {
				return err
			}
			var ids []int64
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
			}
			rows.Close()
			return m.deleteExecutions(ctx, tx, ids)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
