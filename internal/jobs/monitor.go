package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// pausedKinds returns the paused kinds.
func (q *Queue) pausedKinds(ctx context.Context) (map[string]bool, error) {
	rows, err := q.db.Query(ctx, `SELECT kind FROM job_queues WHERE paused = TRUE`)
	if err != nil {
		return nil, q.db.Wrap("job queues", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, q.db.Wrap("job queues", err)
		}
		out[k] = true
	}
	return out, q.db.Wrap("job queues", rows.Err())
}

// SetPaused pauses or resumes a kind: a paused kind's pending jobs wait,
// its running ones go on. Pausing SCHEDULER pauses every schedule.
func (q *Queue) SetPaused(ctx context.Context, kind string, paused bool) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	_, err := q.db.Exec(ctx, `INSERT INTO job_queues (kind, paused, updated) VALUES (?, ?, ?)
		ON CONFLICT (kind) DO UPDATE SET paused = excluded.paused, updated = excluded.updated`, kind, paused, sqldb.Nanos(q.db.Now()))
	q.pauseGen.Add(1)
	if err == nil && !paused {
		q.Wake()
	}
	return q.db.Wrap("pause job queue", err)
}

// QueueInfo is a kind's queue as Harbor shows it.
type QueueInfo struct {
	Kind string
	// Count is how many jobs wait.
	Count int64
	// Latency is how long the oldest due job has waited.
	Latency time.Duration
	Paused  bool
}

// Queues lists the registered kinds (and any other kind with jobs or a
// pause state), with their pending jobs.
func (q *Queue) Queues(ctx context.Context) ([]QueueInfo, error) {
	now := sqldb.Nanos(q.db.Now())
	byKind := map[string]*QueueInfo{}
	get := func(k string) *QueueInfo {
		if byKind[k] == nil {
			byKind[k] = &QueueInfo{Kind: k}
		}
		return byKind[k]
	}
	for _, k := range q.Kinds() {
		get(k)
	}
	get(SchedulerKind)
	rows, err := q.db.Query(ctx, `SELECT kind, COUNT(*), MIN(due) FROM jobs WHERE state = 'Pending' GROUP BY kind`)
	if err != nil {
		return nil, q.db.Wrap("job queues", err)
	}
	for rows.Next() {
		var k string
		var n, oldest int64
		if err := rows.Scan(&k, &n, &oldest); err != nil {
			rows.Close()
			return nil, q.db.Wrap("job queues", err)
		}
		qi := get(k)
		qi.Count = n
		if oldest < now {
			qi.Latency = time.Duration(now - oldest)
		}
	}
	rows.Close()
	paused, err := q.pausedKinds(ctx)
	if err != nil {
		return nil, err
	}
	for k := range paused {
		get(k).Paused = true
	}
	out := make([]QueueInfo, 0, len(byKind))
	for _, qi := range byKind {
		out = append(out, *qi)
	}
	slices.SortFunc(out, func(a, b QueueInfo) int { return strings.Compare(a.Kind, b.Kind) })
	return out, nil
}

// Pool is a runner (one per lading process), as Harbor's worker pool.
type Pool struct {
	ID          string
	Host        string
	PID         int
	Started     time.Time
	Heartbeat   time.Time
	Concurrency int
}

// Pools lists the runners that beat recently.
func (q *Queue) Pools(ctx context.Context) ([]Pool, error) {
	rows, err := q.db.Query(ctx, `SELECT id, host, pid, started, heartbeat, concurrency FROM job_pools ORDER BY started, id`)
	if err != nil {
		return nil, q.db.Wrap("job pools", err)
	}
	defer rows.Close()
	out := []Pool{}
	for rows.Next() {
		var p Pool
		var started, hb int64
		if err := rows.Scan(&p.ID, &p.Host, &p.PID, &started, &hb, &p.Concurrency); err != nil {
			return nil, q.db.Wrap("job pools", err)
		}
		p.Started, p.Heartbeat = sqldb.Time(started), sqldb.Time(hb)
		out = append(out, p)
	}
	return out, q.db.Wrap("job pools", rows.Err())
}

// Worker is a slot of a pool and the job it runs, if any.
type Worker struct {
	ID     string
	PoolID string
	// JobID is 0 for an idle worker.
	JobID     int64
	JobKind   string
	Started   time.Time
	CheckedIn time.Time
}

// Workers lists the workers of a pool, or of every pool for "all".
func (q *Queue) Workers(ctx context.Context, pool string) ([]Worker, error) {
	pools, err := q.Pools(ctx)
	if err != nil {
		return nil, err
	}
	if pool != "all" {
		pools = slices.DeleteFunc(pools, func(p Pool) bool { return p.ID != pool })
		if len(pools) == 0 {
			return nil, errdefs.NotFound(fmt.Errorf("job pool %q not found", pool))
		}
	}
	type slotKey struct {
		pool string
		slot int
	}
	busy := map[slotKey]Worker{}
	rows, err := q.db.Query(ctx, `SELECT id, kind, pool, slot, started, updated FROM jobs WHERE state = 'Running' AND pool <> ''`)
	if err != nil {
		return nil, q.db.Wrap("job workers", err)
	}
	for rows.Next() {
		var w Worker
		var slot int
		var started, updated int64
		if err := rows.Scan(&w.JobID, &w.JobKind, &w.PoolID, &slot, &started, &updated); err != nil {
			rows.Close()
			return nil, q.db.Wrap("job workers", err)
		}
		w.Started, w.CheckedIn = sqldb.Time(started), sqldb.Time(updated)
		busy[slotKey{w.PoolID, slot}] = w
	}
	rows.Close()
	out := []Worker{}
	for _, p := range pools {
		for i := range p.Concurrency {
			w, ok := busy[slotKey{p.ID, i}]
			if !ok {
				w = Worker{PoolID: p.ID}
			}
			w.ID = p.ID + "-" + strconv.Itoa(i)
			out = append(out, w)
		}
	}
	return out, nil
}

// StopRunning stops every running job, for Harbor's "all".
func (q *Queue) StopRunning(ctx context.Context) error {
	rows, err := q.db.Query(ctx, `SELECT id FROM jobs WHERE state = 'Running'`)
	if err != nil {
		return q.db.Wrap("running jobs", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return q.db.Wrap("running jobs", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if err := q.Stop(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// Monitor is the job service as Harbor's API exposes it to system
// administrators: every method checks the jobservice-monitor permission
// (list to read, stop to act), as Harbor's handlers do.
type Monitor struct {
	q      *Queue
	access *access.Checker
}

// NewMonitor returns the monitor of q.
func NewMonitor(q *Queue, checker *access.Checker) *Monitor { return &Monitor{q: q, access: checker} }

func (m *Monitor) require(ctx context.Context, who access.Subject, a access.Action) error {
	return m.access.Require(ctx, who, a, access.JobServiceMonitor, 0)
}

// Pools lists the worker pools.
func (m *Monitor) Pools(ctx context.Context, who access.Subject) ([]Pool, error) {
	if err := m.require(ctx, who, access.List); err != nil {
		return nil, err
	}
	return m.q.Pools(ctx)
}

// Workers lists a pool's workers ("all": every pool's).
func (m *Monitor) Workers(ctx context.Context, who access.Subject, pool string) ([]Worker, error) {
	if err := m.require(ctx, who, access.List); err != nil {
		return nil, err
	}
	return m.q.Workers(ctx, pool)
}

// Queues lists the queues.
func (m *Monitor) Queues(ctx context.Context, who access.Subject) ([]QueueInfo, error) {
	if err := m.require(ctx, who, access.List); err != nil {
		return nil, err
	}
	return m.q.Queues(ctx)
}

// QueueAction does Harbor's action ("stop", "pause" or "resume") on the
// queue of kind, or of every kind for "all".
func (m *Monitor) QueueAction(ctx context.Context, who access.Subject, kind, action string) error {
	if err := m.require(ctx, who, access.Stop); err != nil {
		return err
	}
	action = strings.ToLower(action)
	if action != "stop" && action != "pause" && action != "resume" {
		return errdefs.InvalidArgument(fmt.Errorf("action %q: want stop, pause or resume", action))
	}
	var kinds []string
	if strings.EqualFold(kind, "all") {
		qs, err := m.q.Queues(ctx)
		if err != nil {
			return err
		}
		for _, qi := range qs {
			kinds = append(kinds, qi.Kind)
		}
	} else {
		kind = strings.ToUpper(kind)
		if err := checkKind(kind); err != nil {
			return err
		}
		if _, ok := m.q.def(kind); !ok && kind != SchedulerKind {
			return errdefs.NotFound(fmt.Errorf("job queue %q not found", kind))
		}
		kinds = []string{kind}
	}
	for _, k := range kinds {
		var err error
		switch action {
		case "stop":
			_, err = m.q.StopPending(ctx, k)
		case "pause":
			err = m.q.SetPaused(ctx, k, true)
		case "resume":
			err = m.q.SetPaused(ctx, k, false)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// StopJob stops a running job by id, or every running job for "all".
func (m *Monitor) StopJob(ctx context.Context, who access.Subject, id string) error {
	if err := m.require(ctx, who, access.Stop); err != nil {
		return err
	}
	if strings.EqualFold(id, "all") {
		return m.q.StopRunning(ctx)
	}
	n, err := parseID(id)
	if err != nil {
		return err
	}
	return m.q.Stop(ctx, n)
}

// JobLog returns a job's log.
func (m *Monitor) JobLog(ctx context.Context, who access.Subject, id string) ([]byte, error) {
	if err := m.require(ctx, who, access.List); err != nil {
		return nil, err
	}
	n, err := parseID(id)
	if err != nil {
		return nil, err
	}
	return m.q.Log(ctx, n)
}

// Schedules lists the schedules.
func (m *Monitor) Schedules(ctx context.Context, who access.Subject, page query.Page) ([]Schedule, int64, error) {
	if err := m.require(ctx, who, access.List); err != nil {
		return nil, 0, err
	}
	return m.q.Schedules(ctx, page)
}

// SchedulerPaused reports whether schedules are paused (Harbor answers it
// to any authenticated caller, for job type "all" only).
func (m *Monitor) SchedulerPaused(ctx context.Context, who access.Subject, kind string) (bool, error) {
	if !who.Authenticated() {
		return false, access.Refuse(who, access.Read, access.JobServiceMonitor)
	}
	if !strings.EqualFold(kind, "all") {
		return false, errdefs.InvalidArgument(errors.New("job_type can only be 'all'"))
	}
	paused, err := m.q.pausedKinds(ctx)
	return paused[SchedulerKind], err
}

func parseID(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errdefs.NotFound(fmt.Errorf("job %q not found", s))
	}
	return n, nil
}
