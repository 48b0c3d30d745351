package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Migrations create the job service's tables.
var Migrations = []sqldb.Migration{{Owner: "jobs", Name: "job queue, logs, queues, pools and schedules", SQL: []string{
	`CREATE TABLE jobs (
		id {{id}},
		kind {{text}} NOT NULL,
		args {{text}} NOT NULL,
		unique_key {{text}},
		release_key {{bool}} NOT NULL,
		owner {{text}} NOT NULL,
		state {{text}} NOT NULL,
		attempt {{int}} NOT NULL,
		max_attempts {{int}} NOT NULL,
		due {{int}} NOT NULL,
		pool {{text}} NOT NULL,
		slot {{int}} NOT NULL,
		cancel {{bool}} NOT NULL,
		error {{text}} NOT NULL,
		created {{int}} NOT NULL,
		started {{int}} NOT NULL,
		finished {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)`,
	`CREATE INDEX jobs_due ON jobs (state, due)`,
	`CREATE INDEX jobs_kind ON jobs (kind, state, due, id)`,
	`CREATE INDEX jobs_pool ON jobs (pool, state)`,
	`CREATE INDEX jobs_finished ON jobs (owner, finished)`,
	`CREATE TABLE job_log (
		job_id {{int}} NOT NULL,
		seq {{int}} NOT NULL,
		at {{int}} NOT NULL,
		attempt {{int}} NOT NULL,
		level {{text}} NOT NULL,
		line {{text}} NOT NULL,
		PRIMARY KEY (job_id, seq))`,
	`CREATE TABLE job_queues (
		kind {{text}} PRIMARY KEY,
		paused {{bool}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE TABLE job_pools (
		id {{text}} PRIMARY KEY,
		host {{text}} NOT NULL,
		pid {{int}} NOT NULL,
		started {{int}} NOT NULL,
		heartbeat {{int}} NOT NULL,
		concurrency {{int}} NOT NULL)`,
	`CREATE TABLE job_schedules (
		id {{id}},
		vendor_type {{text}} NOT NULL,
		vendor_id {{int}} NOT NULL,
		kind {{text}} NOT NULL,
		args {{text}} NOT NULL,
		cron {{text}} NOT NULL,
		next_at {{int}} NOT NULL,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL,
		UNIQUE (vendor_type, vendor_id))`,
	`CREATE INDEX job_schedules_next ON job_schedules (next_at)`,
}}}

// The states of a job, as Harbor names a task's status.
const (
	Pending = "Pending"
	Running = "Running"
	Success = "Success"
	Error   = "Error"
	Stopped = "Stopped"
)

// Finished reports whether state is final.
func Finished(state string) bool { return state == Success || state == Error || state == Stopped }

// Definition is a kind of job.
type Definition struct {
	// Kind names the kind (Harbor's job type: "WEBHOOK", "IMAGE_SCAN",
	// "GARBAGE_COLLECTION"...): letters, digits, '_' and '-'.
	Kind string
	// Run does one attempt of a job. Its context ends when the job is
	// stopped, times out, loses its lease or the process shuts down.
	Run func(ctx context.Context, j *Job) error
	// Concurrency bounds how many jobs of the kind run at once across
	// every replica; 0 is no bound beyond each runner's workers.
	Concurrency int
	// MaxAttempts is the default for requests that set none; default 5.
	MaxAttempts int
	// Timeout bounds one attempt; 0 is none.
	Timeout time.Duration
	// Backoff is the wait before attempt n+1 after attempt n failed;
	// default exponential from 2s, capped at 10 minutes, with jitter.
	Backoff func(attempt int) time.Duration
}

// Job is one attempt of a job, as its Run function sees it.
type Job struct {
	ID          int64
	Kind        string
	Args        json.RawMessage
	Key         string
	Attempt     int
	MaxAttempts int
	// Log keeps lines with the job, readable through the API. Never log
	// secrets to it.
	Log *slog.Logger
}

// Func adapts a function of typed arguments to Definition.Run: the job's
// arguments are decoded into an A; arguments that do not decode fail the
// job permanently.
func Func[A any](fn func(ctx context.Context, j *Job, args A) error) func(context.Context, *Job) error {
	return func(ctx context.Context, j *Job) error {
		var a A
		if err := json.Unmarshal(j.Args, &a); err != nil {
			return Permanent(fmt.Errorf("job %d (%s): arguments: %w", j.ID, j.Kind, err))
		}
		return fn(ctx, j, a)
	}
}

// permanent marks an error not worth retrying.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as final: the job fails without further attempts.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Request asks for a job.
type Request struct {
	Kind string
	// Args are the job's arguments, encoded as JSON (a json.RawMessage
	// is taken as is).
	Args any
	// Key, when set, makes the request idempotent: see the package doc.
	Key string
	// ReleaseKey frees Key when the job finishes.
	ReleaseKey bool
	// Owner, when set, keeps the job until the owner deletes it (Delete)
	// rather than purging it after the retention period.
	Owner string
	// RunAt delays the job; zero runs it now.
	RunAt time.Time
	// MaxAttempts overrides the kind's.
	MaxAttempts int
}

// Options configure a queue.
type Options struct {
	Log *slog.Logger
	// Workers is how many jobs this process runs at once; default 10.
	Workers int
	// Lease is how long a claimed job stays claimed without renewal;
	// default 30s. A process that dies holds its jobs this long.
	Lease time.Duration
	// Poll is how often an idle runner looks for work that other
	// processes queued; default 1s (jobs queued by this process wake it
	// at once).
	Poll time.Duration
	// Retention is how long finished jobs without an owner are kept;
	// default 7 days.
	Retention time.Duration
	// Host names this process in the pool listing; default os.Hostname.
	Host string
	// MaxLogLines bounds the lines kept per attempt; default 2000.
	MaxLogLines int
}

// Queue is the job queue.
type Queue struct {
	db   *sqldb.DB
	opt  Options
	log  *slog.Logger
	wake chan struct{}

	mu   sync.Mutex
	defs map[string]Definition
	// running maps the jobs this process runs to their cancel functions.
	running map[int64]context.CancelCauseFunc
	// pauseGen counts this process's pauses and resumes.
	pauseGen atomic.Int64
}

// New returns the queue over db (migrated with Migrations).
func New(db *sqldb.DB, o Options) *Queue {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Workers <= 0 {
		o.Workers = 10
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.MaxLogLines <= 0 {
		o.MaxLogLines = 2000
	}
	return &Queue{db: db, opt: o, log: o.Log, wake: make(chan struct{}, 1), defs: map[string]Definition{}, running: map[int64]context.CancelCauseFunc{}}
}

// Register adds a kind of job. It panics on a bad or repeated definition:
// registration is wiring, done once at start.
func (q *Queue) Register(d Definition) {
	if err := checkKind(d.Kind); err != nil || d.Run == nil {
		panic(fmt.Sprintf("jobs: bad definition of %q: %v", d.Kind, err))
	}
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = 5
	}
	if d.Backoff == nil {
		d.Backoff = DefaultBackoff
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.defs[d.Kind]; ok {
		panic("jobs: kind " + d.Kind + " registered twice")
	}
	q.defs[d.Kind] = d
}

// Kinds returns the registered kinds.
func (q *Queue) Kinds() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]string, 0, len(q.defs))
	for k := range q.defs {
		out = append(out, k)
	}
	return out
}

func (q *Queue) def(kind string) (Definition, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	d, ok := q.defs[kind]
	return d, ok
}

func checkKind(kind string) error {
	if kind == "" || len(kind) > 64 || strings.Trim(kind, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		return errdefs.InvalidArgument(fmt.Errorf("job kind %q: want 1 to 64 letters, digits, '_' or '-'", kind))
	}
	return nil
}

// DefaultBackoff waits 2s before the second attempt, doubling each time up
// to 10 minutes, with ±20% jitter so that jobs failed together do not
// retry together.
func DefaultBackoff(attempt int) time.Duration {
	d := 2 * time.Second * time.Duration(math.Pow(2, float64(min(max(attempt-1, 0), 20))))
	d = min(d, 10*time.Minute)
	return time.Duration(float64(d) * (0.8 + 0.4*mrand.Float64()))
}

// Enqueue adds a job in a transaction of its own.
func (q *Queue) Enqueue(ctx context.Context, r Request) (id int64, created bool, err error) {
	err = q.db.Tx(ctx, "enqueue "+r.Kind, func(tx *sqldb.Tx) error {
		id, created, err = q.EnqueueTx(ctx, tx, r)
		return err
	})
	return id, created, err
}

// EnqueueTx adds a job in tx: it exists if and only if tx commits. When
// r.Key is held by another job, it returns that job's id and created
// false.
func (q *Queue) EnqueueTx(ctx context.Context, tx *sqldb.Tx, r Request) (id int64, created bool, err error) {
	if err := checkKind(r.Kind); err != nil {
		return 0, false, err
	}
	if len(r.Key) > 512 {
		return 0, false, errdefs.InvalidArgument(fmt.Errorf("job key is %d bytes long; at most 512", len(r.Key)))
	}
	var args []byte
	switch a := r.Args.(type) {
	case json.RawMessage:
		args = a
	case nil:
		args = []byte("null")
	default:
		if args, err = json.Marshal(a); err != nil {
			return 0, false, errdefs.InvalidArgument(fmt.Errorf("job %s: arguments: %w", r.Kind, err))
		}
	}
	attempts := r.MaxAttempts
	if attempts <= 0 {
		attempts = 5
		if d, ok := q.def(r.Kind); ok {
			attempts = d.MaxAttempts
		}
	}
	now := q.db.Now()
	due := now
	if r.RunAt.After(now) {
		due = r.RunAt
	}
	var key any
	if r.Key != "" {
		key = r.Key
	}
	err = tx.QueryRow(ctx, `INSERT INTO jobs (kind, args, unique_key, release_key, owner, state, attempt, max_attempts, due, pool, slot, cancel, error, created, started, finished, updated)
		VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, '', 0, FALSE, '', ?, 0, 0, ?)
		ON CONFLICT (unique_key) DO NOTHING RETURNING id`,
		r.Kind, string(args), key, r.ReleaseKey, r.Owner, Pending, attempts, sqldb.Nanos(due), sqldb.Nanos(now), sqldb.Nanos(now)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRow(ctx, `SELECT id FROM jobs WHERE unique_key = ?`, r.Key).Scan(&id)
		return id, false, err
	}
	if err != nil {
		return 0, false, err
	}
	tx.AfterCommit(q.Wake)
	return id, true, nil
}

// Wake tells this process's runner to look for work now.
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Info is a job as stored.
type Info struct {
	ID          int64
	Kind        string
	Args        json.RawMessage
	Key         string
	Owner       string
	State       string
	Attempt     int
	MaxAttempts int
	// Due is when a pending job may run, or a running job's lease ends.
	Due     time.Time
	Pool    string
	Slot    int
	Cancel  bool
	Error   string
	Created time.Time
	// Started is when the last attempt started, Finished when the job
	// finished; zero otherwise.
	Started, Finished, Updated time.Time
}

const infoCols = `id, kind, args, COALESCE(unique_key, ''), owner, state, attempt, max_attempts, due, pool, slot, cancel, error, created, started, finished, updated`

func scanInfo(r sqldb.Row) (Info, error) {
	var i Info
	var args string
	var due, created, started, finished, updated int64
	err := r.Scan(&i.ID, &i.Kind, &args, &i.Key, &i.Owner, &i.State, &i.Attempt, &i.MaxAttempts, &due, &i.Pool, &i.Slot, &i.Cancel, &i.Error, &created, &started, &finished, &updated)
	i.Args = json.RawMessage(args)
	i.Due, i.Created, i.Started, i.Finished, i.Updated = sqldb.Time(due), sqldb.Time(created), sqldb.Time(started), sqldb.Time(finished), sqldb.Time(updated)
	return i, err
}

// Get returns a job.
func (q *Queue) Get(ctx context.Context, id int64) (Info, error) {
	i, err := scanInfo(q.db.QueryRow(ctx, `SELECT `+infoCols+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Info{}, errdefs.NotFound(fmt.Errorf("job %d not found", id))
	}
	return i, q.db.Wrap("job", err)
}

// GetMany returns the jobs with the given ids that exist, by id.
func (q *Queue) GetMany(ctx context.Context, ids []int64) (map[int64]Info, error) {
	out := map[int64]Info{}
	for len(ids) > 0 {
		n := min(len(ids), 200)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		rows, err := q.db.Query(ctx, `SELECT `+infoCols+` FROM jobs WHERE id IN (?`+strings.Repeat(", ?", n-1)+`)`, args...)
		if err != nil {
			return nil, q.db.Wrap("jobs", err)
		}
		for rows.Next() {
			i, err := scanInfo(rows)
			if err != nil {
				rows.Close()
				return nil, q.db.Wrap("jobs", err)
			}
			out[i.ID] = i
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, q.db.Wrap("jobs", err)
		}
		ids = ids[n:]
	}
	return out, nil
}

// Stop stops a job: a pending one at once, a running one as soon as its
// runner learns of it (at once in this process, within Lease/3 in
// another), when its context is cancelled. Stopping a finished job
// changes nothing.
func (q *Queue) Stop(ctx context.Context, id int64) error {
	var state string
	err := q.db.Tx(ctx, "stop job", func(tx *sqldb.Tx) error {
		err := tx.QueryRow(ctx, `SELECT state FROM jobs WHERE id = ?`+q.db.Dialect().ForUpdate, id).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return errdefs.NotFound(fmt.Errorf("job %d not found", id))
		}
		if err != nil {
			return err
		}
		now := sqldb.Nanos(q.db.Now())
		switch state {
		case Pending:
			_, err = tx.Exec(ctx, `UPDATE jobs SET state = ?, error = 'stopped before it ran', finished = ?, updated = ?,
				unique_key = CASE WHEN release_key THEN NULL ELSE unique_key END WHERE id = ?`, Stopped, now, now, id)
		case Running:
			_, err = tx.Exec(ctx, `UPDATE jobs SET cancel = TRUE, updated = ? WHERE id = ?`, now, id)
		}
		return err
	})
	if err != nil {
		return err
	}
	if state == Running {
		q.mu.Lock()
		cancel := q.running[id]
		q.mu.Unlock()
		if cancel != nil {
			cancel(errStopped)
		}
	}
	return nil
}

// StopPending stops every pending job of kind ("" for every kind), as
// Harbor's "stop" action on a queue does, and returns how many.
func (q *Queue) StopPending(ctx context.Context, kind string) (int64, error) {
	now := sqldb.Nanos(q.db.Now())
	cond, args := "", []any{Stopped, now, now, Pending}
	if kind != "" {
		cond, args = " AND kind = ?", append(args, kind)
	}
	res, err := q.db.Exec(ctx, `UPDATE jobs SET state = ?, error = 'stopped before it ran', finished = ?, updated = ?,
		unique_key = CASE WHEN release_key THEN NULL ELSE unique_key END WHERE state = ?`+cond, args...)
	if err != nil {
		return 0, q.db.Wrap("stop pending jobs", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Delete removes finished jobs and their logs (an owner's cleanup);
// unfinished ones are left alone.
func (q *Queue) Delete(ctx context.Context, tx *sqldb.Tx, ids []int64) error {
	for len(ids) > 0 {
		n := min(len(ids), 200)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		in := `(?` + strings.Repeat(", ?", n-1) + `)`
		if _, err := tx.Exec(ctx, `DELETE FROM job_log WHERE job_id IN `+in+` AND job_id IN (SELECT id FROM jobs WHERE state IN ('Success', 'Error', 'Stopped'))`, args...); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM jobs WHERE id IN `+in+` AND state IN ('Success', 'Error', 'Stopped')`, args...); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// Purge deletes finished jobs without an owner that finished before
// Options.Retention ago, and their logs.
func (q *Queue) Purge(ctx context.Context) (int64, error) {
	before := sqldb.Nanos(q.db.Now().Add(-q.opt.Retention))
	var n int64
	err := q.db.Tx(ctx, "purge jobs", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM job_log WHERE job_id IN (SELECT id FROM jobs WHERE owner = '' AND finished > 0 AND finished < ?)`, before); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM jobs WHERE owner = '' AND finished > 0 AND finished < ?`, before)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Tally counts an owner's jobs by state.
type Tally struct {
	ByState map[string]int64
	// LastFinished is when the last of them finished.
	LastFinished time.Time
}

// Total is the number of jobs counted.
func (t Tally) Total() int64 {
	var n int64
	for _, c := range t.ByState {
		n += c
	}
	return n
}

// Tallies counts the jobs of each owner by state.
func (q *Queue) Tallies(ctx context.Context, owners []string) (map[string]Tally, error) {
	out := map[string]Tally{}
	for len(owners) > 0 {
		n := min(len(owners), 200)
		args := make([]any, n)
		for i, o := range owners[:n] {
			args[i] = o
		}
		rows, err := q.db.Query(ctx, `SELECT owner, state, COUNT(*), MAX(finished) FROM jobs WHERE owner IN (?`+strings.Repeat(", ?", n-1)+`) GROUP BY owner, state`, args...)
		if err != nil {
			return nil, q.db.Wrap("job tallies", err)
		}
		for rows.Next() {
			var owner, state string
			var c, fin int64
			if err := rows.Scan(&owner, &state, &c, &fin); err != nil {
				rows.Close()
				return nil, q.db.Wrap("job tallies", err)
			}
			t := out[owner]
			if t.ByState == nil {
				t.ByState = map[string]int64{}
			}
			t.ByState[state] += c
			if ft := sqldb.Time(fin); ft.After(t.LastFinished) {
				t.LastFinished = ft
			}
			out[owner] = t
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, q.db.Wrap("job tallies", err)
		}
		owners = owners[n:]
	}
	return out, nil
}

// StopOwned stops every unfinished job of an owner.
func (q *Queue) StopOwned(ctx context.Context, owner string) error {
	rows, err := q.db.Query(ctx, `SELECT id FROM jobs WHERE owner = ? AND state IN ('Pending', 'Running')`, owner)
	if err != nil {
		return q.db.Wrap("stop jobs", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return q.db.Wrap("stop jobs", err)
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

// DeleteOwned removes, in tx, an owner's finished jobs and their logs;
// unfinished ones are left alone.
func (q *Queue) DeleteOwned(ctx context.Context, tx *sqldb.Tx, owner string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM job_log WHERE job_id IN (SELECT id FROM jobs WHERE owner = ? AND state IN ('Success', 'Error', 'Stopped'))`, owner); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM jobs WHERE owner = ? AND state IN ('Success', 'Error', 'Stopped')`, owner)
	return err
}

// CountOwned counts, in tx, an owner's jobs.
func (q *Queue) CountOwned(ctx context.Context, tx *sqldb.Tx, owner string) (int64, error) {
	var n int64
	err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM jobs WHERE owner = ?`, owner).Scan(&n)
	return n, err
}
