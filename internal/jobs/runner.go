package jobs

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lading-dev/lading/internal/sqldb"
)

var (
	errStopped   = errors.New("the job was stopped")
	errLostLease = errors.New("the job's lease was lost (another runner took it over)")
	errShutdown  = errors.New("lading is shutting down")
)

// runner is one process's worker pool.
type runner struct {
	q     *Queue
	id    string
	slots []bool // slot -> busy
	mu    sync.Mutex
	// jobs are the attempts running here, by job id.
	jobs map[int64]*attempt
	wg   sync.WaitGroup
	done chan struct{} // a slot was freed
	// hot are the kinds whose last claim filled every slot asked for.
	hot       map[string]bool
	pausedSet map[string]bool
	pausedAt  time.Time
	pausedGen int64
}

// attempt is a job running in this process.
type attempt struct {
	Job
	slot   int
	log    *logBuffer
	cancel context.CancelCauseFunc
}

// Run works jobs until ctx ends, then stops claiming, cancels the running
// attempts, gives them back to the queue (not counting them as attempts)
// and returns. One Run per process.
func (q *Queue) Run(ctx context.Context) error {
	r := &runner{q: q, id: newID(), slots: make([]bool, q.opt.Workers), jobs: map[int64]*attempt{}, done: make(chan struct{}, 1), hot: map[string]bool{}}
	if err := r.register(ctx); err != nil {
		return err
	}
	q.log.Info("job service started", "pool", r.id, "workers", q.opt.Workers, "lease", q.opt.Lease)
	runCtx, stopAll := context.WithCancelCause(context.WithoutCancel(ctx))
	var hb sync.WaitGroup
	hb.Add(1)
	go func() { defer hb.Done(); r.heartbeats(ctx) }()
	poll := time.NewTicker(q.opt.Poll)
	defer poll.Stop()
	var lastHousekeep, lastSchedules time.Time
	for ctx.Err() == nil {
		if time.Since(lastHousekeep) > time.Minute {
			lastHousekeep = time.Now()
			r.housekeep(ctx)
		}
		if time.Since(lastSchedules) >= q.opt.Poll {
			lastSchedules = time.Now()
			if err := q.fireSchedules(ctx); err != nil && ctx.Err() == nil {
				q.log.Warn("firing schedules", "error", err)
			}
		}
		claimed, err := r.claimAll(ctx, runCtx)
		if err != nil && ctx.Err() == nil {
			q.log.Warn("claiming jobs", "error", err)
		}
		if claimed && r.free() > 0 {
			continue
		}
		select {
		case <-ctx.Done():
		case <-q.wake:
		case <-r.done:
		case <-poll.C:
		}
	}
	stopAll(errShutdown)
	r.wg.Wait()
	hb.Wait()
	end, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	q.db.Exec(end, `DELETE FROM job_pools WHERE id = ?`, r.id)
	q.log.Info("job service stopped", "pool", r.id)
	return nil
}

func (r *runner) register(ctx context.Context) error {
	host := r.q.opt.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	now := sqldb.Nanos(r.q.db.Now())
	_, err := r.q.db.Exec(ctx, `INSERT INTO job_pools (id, host, pid, started, heartbeat, concurrency) VALUES (?, ?, ?, ?, ?, ?)`,
		r.id, host, os.Getpid(), now, now, len(r.slots))
	return r.q.db.Wrap("register job pool", err)
}

func (r *runner) free() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, busy := range r.slots {
		if !busy {
			n++
		}
	}
	return n
}

// takeSlots reserves up to n free slots.
func (r *runner) takeSlots(n int) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for i, busy := range r.slots {
		if len(out) == n {
			break
		}
		if !busy {
			r.slots[i] = true
			out = append(out, i)
		}
	}
	return out
}

func (r *runner) freeSlot(i int) {
	r.mu.Lock()
	r.slots[i] = false
	r.mu.Unlock()
	select {
	case r.done <- struct{}{}:
	default:
	}
}

// claimAll claims due jobs of every registered, unpaused kind that has
// some, while slots are free. It reports whether it claimed any. Kinds
// whose last claim was full are claimed again without asking first.
func (r *runner) claimAll(ctx, runCtx context.Context) (bool, error) {
	paused, err := r.paused(ctx)
	if err != nil {
		return false, err
	}
	kinds := make([]string, 0, len(r.hot))
	for k := range r.hot {
		kinds = append(kinds, k)
	}
	probed := false
	claimed := false
	for i := 0; i < len(kinds) || !probed; i++ {
		if i == len(kinds) {
			probed = true
			due, err := r.q.dueKinds(ctx)
			if err != nil {
				return claimed, err
			}
			for _, k := range due {
				if !r.hot[k] {
					kinds = append(kinds, k)
				}
			}
			if i == len(kinds) {
				break
			}
		}
		kind := kinds[i]
		d, ok := r.q.def(kind)
		if !ok || paused[kind] {
			delete(r.hot, kind)
			continue
		}
		slots := r.takeSlots(r.free())
		if len(slots) == 0 {
			break
		}
		jobs, err := r.claim(ctx, d, slots)
		for _, s := range slots[len(jobs):] {
			r.freeSlot(s)
		}
		if err != nil {
			return claimed, err
		}
		if len(jobs) == len(slots) {
			r.hot[kind] = true
		} else {
			delete(r.hot, kind)
		}
		for _, a := range jobs {
			claimed = true
			r.start(runCtx, d, a)
		}
	}
	return claimed, nil
}

// paused returns the paused kinds, read at most once per poll interval
// (a pause made by this process is seen at once).
func (r *runner) paused(ctx context.Context) (map[string]bool, error) {
	if r.pausedSet != nil && time.Since(r.pausedAt) < r.q.opt.Poll && r.pausedGen == r.q.pauseGen.Load() {
		return r.pausedSet, nil
	}
	gen := r.q.pauseGen.Load()
	p, err := r.q.pausedKinds(ctx)
	if err != nil {
		return nil, err
	}
	r.pausedSet, r.pausedAt, r.pausedGen = p, time.Now(), gen
	return p, nil
}

// dueKinds lists the registered kinds that have jobs due now (pending,
// or running with an expired lease): two index probes per kind, reads
// only, so that an idle runner never writes.
func (q *Queue) dueKinds(ctx context.Context) ([]string, error) {
	now := sqldb.Nanos(q.db.Now())
	var out []string
	for _, k := range q.Kinds() {
		var due bool
		err := q.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM jobs WHERE kind = ? AND state = 'Pending' AND due <= ?)
			OR EXISTS (SELECT 1 FROM jobs WHERE kind = ? AND state = 'Running' AND due <= ?)`, k, now, k, now).Scan(&due)
		if err != nil {
			return nil, q.db.Wrap("due jobs", err)
		}
		if due {
			out = append(out, k)
		}
	}
	// Kinds take turns: no kind starves another of slots.
	for i := range out {
		j := i + int(time.Now().UnixNano()%int64(len(out)-i))
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// kindLock is the advisory lock key of a kind's claims on PostgreSQL.
func kindLock(kind string) int64 {
	h := fnv.New64a()
	h.Write([]byte("lading-jobs:" + kind))
	return int64(h.Sum64())
}

type claimedRow struct {
	id, attempt, max int64
	cancel, expired  bool
}

// claim takes up to len(slots) due jobs of d's kind, in one transaction.
func (r *runner) claim(ctx context.Context, d Definition, slots []int) ([]*attempt, error) {
	q := r.q
	dia := q.db.Dialect()
	var out []*attempt
	err := q.db.Tx(ctx, "claim "+d.Kind, func(tx *sqldb.Tx) error {
		out = out[:0]
		now := q.db.Now()
		n := len(slots)
		if d.Concurrency > 0 {
			if dia.ForUpdate != "" {
				if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(?)`, kindLock(d.Kind)); err != nil {
					return err
				}
			}
			var running int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM jobs WHERE kind = ? AND state = 'Running' AND due > ?`, d.Kind, sqldb.Nanos(now)).Scan(&running); err != nil {
				return err
			}
			n = min(n, d.Concurrency-running)
			if n <= 0 {
				return nil
			}
		}
		lock := ""
		if dia.ForUpdate != "" {
			lock = dia.ForUpdate + " SKIP LOCKED"
		}
		// Expired leases first (rare), then pending jobs in order: each
		// an index range read in order, without sorting the queue.
		var due []claimedRow
		for _, state := range []string{Running, Pending} {
			if len(due) >= n {
				break
			}
			rows, err := tx.Query(ctx, `SELECT id, attempt, max_attempts, cancel FROM jobs WHERE kind = ? AND state = ? AND due <= ?
				ORDER BY due, id LIMIT ?`+lock, d.Kind, state, sqldb.Nanos(now), n-len(due))
			if err != nil {
				return err
			}
			for rows.Next() {
				c := claimedRow{expired: state == Running}
				if err := rows.Scan(&c.id, &c.attempt, &c.max, &c.cancel); err != nil {
					rows.Close()
					return err
				}
				due = append(due, c)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		ns := sqldb.Nanos(now)
		for _, c := range due {
			if c.cancel || c.attempt >= c.max {
				// A lease expired on a job that was being stopped, or
				// that has no attempt left: it ends here.
				state, msg := Stopped, "stopped; its runner stopped answering"
				if !c.cancel {
					state, msg = Error, fmt.Sprintf("attempt %d of %d did not finish: its runner stopped answering (lease expired)", c.attempt, c.max)
				}
				if _, err := tx.Exec(ctx, `UPDATE jobs SET state = ?, error = ?, finished = ?, updated = ?, unique_key = CASE WHEN release_key THEN NULL ELSE unique_key END WHERE id = ?`,
					state, msg, ns, ns, c.id); err != nil {
					return err
				}
				continue
			}
			a := &attempt{Job: Job{ID: c.id}, slot: slots[len(out)]}
			if c.expired {
				a.Attempt = int(c.attempt) // the attempt whose lease expired
			}
			out = append(out, a)
		}
		return r.take(ctx, tx, now, out)
	})
	return out, err
}

// take marks the claimed jobs running, in one statement, and reads them.
// A job's log lines are numbered from the attempt's start time (in
// nanoseconds), so lines sort in order across attempts without asking
// the log for its last number.
func (r *runner) take(ctx context.Context, tx *sqldb.Tx, now time.Time, claimed []*attempt) error {
	if len(claimed) == 0 {
		return nil
	}
	q := r.q
	ns := sqldb.Nanos(now)
	args := []any{sqldb.Nanos(now.Add(q.opt.Lease)), r.id}
	slot := "CASE id"
	in := make([]any, 0, len(claimed))
	byID := map[int64]*attempt{}
	for _, a := range claimed {
		slot += " WHEN ? THEN CAST(? AS BIGINT)"
		args = append(args, a.ID, a.slot)
		in = append(in, a.ID)
		byID[a.ID] = a
	}
	args = append(args, ns, ns)
	args = append(args, in...)
	rows, err := tx.Query(ctx, `UPDATE jobs SET state = 'Running', attempt = attempt + 1, due = ?, pool = ?, slot = `+slot+` END, started = ?, updated = ?
		WHERE id IN (?`+strings.Repeat(", ?", len(in)-1)+`) RETURNING id, kind, args, COALESCE(unique_key, ''), attempt, max_attempts`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var kind, jargs, key string
		var attempt, max int
		if err := rows.Scan(&id, &kind, &jargs, &key, &attempt, &max); err != nil {
			return err
		}
		a := byID[id]
		prev := a.Attempt
		a.Kind, a.Args, a.Key, a.Attempt, a.MaxAttempts = kind, []byte(jargs), key, attempt, max
		a.log = newLogBuffer(id, attempt, ns, q.opt.MaxLogLines)
		if prev > 0 {
			a.log.add(now, "WARN", fmt.Sprintf("attempt %d did not finish: its runner stopped answering (lease expired)", prev))
		}
	}
	return rows.Err()
}

// start runs an attempt in its own goroutine.
func (r *runner) start(runCtx context.Context, d Definition, a *attempt) {
	ctx, cancel := context.WithCancelCause(runCtx)
	a.cancel = cancel
	a.Log = a.log.logger()
	r.mu.Lock()
	r.jobs[a.ID] = a
	r.mu.Unlock()
	r.q.mu.Lock()
	r.q.running[a.ID] = cancel
	r.q.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.freeSlot(a.slot)
		defer func() {
			r.mu.Lock()
			delete(r.jobs, a.ID)
			r.mu.Unlock()
			r.q.mu.Lock()
			delete(r.q.running, a.ID)
			r.q.mu.Unlock()
			cancel(nil)
		}()
		a.log.add(time.Now(), "INFO", fmt.Sprintf("attempt %d of %d started on pool %s", a.Attempt, a.MaxAttempts, r.id))
		runCtx := ctx
		if d.Timeout > 0 {
			var c context.CancelFunc
			runCtx, c = context.WithTimeoutCause(ctx, d.Timeout, fmt.Errorf("the attempt took longer than %s", d.Timeout))
			defer c()
		}
		err := runSafely(runCtx, d, &a.Job)
		if err == nil && runCtx.Err() != nil {
			err = context.Cause(runCtx)
		}
		r.finish(a, d, err, context.Cause(ctx))
	}()
}

func runSafely(ctx context.Context, d Definition, j *Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return d.Run(ctx, j)
}

// finish records how an attempt ended, fenced on the attempt: if the
// lease was lost meanwhile, nothing changes.
func (r *runner) finish(a *attempt, d Definition, err, cause error) {
	q := r.q
	now := q.db.Now()
	state, msg, due := Success, "", now
	switch {
	case err == nil:
		a.log.add(now, "INFO", "succeeded")
	case errors.Is(cause, errLostLease):
		a.log.add(now, "WARN", "abandoned: "+errLostLease.Error())
		q.flushLog(a, "")
		return
	case errors.Is(cause, errStopped):
		state, msg = Stopped, "stopped"
		a.log.add(now, "INFO", "stopped")
	case errors.Is(cause, errShutdown):
		state = Pending
		a.log.add(now, "INFO", "interrupted by shutdown; it will run again")
	case IsPermanent(err) || a.Attempt >= a.MaxAttempts:
		state, msg = Error, err.Error()
		a.log.add(now, "ERROR", fmt.Sprintf("failed: %v", err))
	default:
		state, msg = Pending, err.Error()
		wait := d.Backoff(a.Attempt)
		due = now.Add(wait)
		a.log.add(now, "WARN", fmt.Sprintf("attempt %d failed: %v; retrying in %s", a.Attempt, err, wait.Round(time.Millisecond)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = q.db.Tx(ctx, "finish job", func(tx *sqldb.Tx) error {
		ns := sqldb.Nanos(now)
		var res interface{ RowsAffected() (int64, error) }
		var err error
		switch state {
		case Pending:
			back := 0
			if errors.Is(cause, errShutdown) {
				back = 1 // a shutdown does not use up an attempt
			}
			res, err = tx.Exec(ctx, `UPDATE jobs SET state = 'Pending', attempt = attempt - ?, due = ?, error = ?, updated = ?
				WHERE id = ? AND state = 'Running' AND pool = ? AND slot = ? AND attempt = ?`,
				back, sqldb.Nanos(due), msg, ns, a.ID, r.id, a.slot, a.Attempt)
		default:
			res, err = tx.Exec(ctx, `UPDATE jobs SET state = ?, error = ?, finished = ?, updated = ?, cancel = FALSE,
				unique_key = CASE WHEN release_key THEN NULL ELSE unique_key END
				WHERE id = ? AND state = 'Running' AND pool = ? AND slot = ? AND attempt = ?`,
				state, msg, ns, ns, a.ID, r.id, a.slot, a.Attempt)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			a.log.add(now, "WARN", "the outcome was not recorded: the lease had been lost")
		}
		return a.log.flush(ctx, tx)
	})
	if err != nil {
		q.log.Error("recording a job's outcome", "job", a.ID, "kind", a.Kind, "error", err)
	}
	if state == Pending {
		q.Wake()
	}
}

// flushLog stores an attempt's pending log lines.
func (q *Queue) flushLog(a *attempt, _ string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.db.Tx(ctx, "job log", func(tx *sqldb.Tx) error { return a.log.flush(ctx, tx) }); err != nil {
		q.log.Warn("storing a job's log", "job", a.ID, "error", err)
	}
}

// heartbeats renew the leases of this runner's jobs, store their logs and
// learn of stop requests, every Lease/3, until ctx ends.
func (r *runner) heartbeats(ctx context.Context) {
	t := time.NewTicker(r.q.opt.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.heartbeat(ctx); err != nil && ctx.Err() == nil {
			r.q.log.Warn("renewing job leases", "error", err)
		}
	}
}

func (r *runner) heartbeat(ctx context.Context) error {
	q := r.q
	r.mu.Lock()
	mine := make([]*attempt, 0, len(r.jobs))
	for _, a := range r.jobs {
		mine = append(mine, a)
	}
	r.mu.Unlock()
	var held, stop []int64
	err := q.db.Tx(ctx, "job heartbeat", func(tx *sqldb.Tx) error {
		held, stop = held[:0], stop[:0]
		now := q.db.Now()
		if _, err := tx.Exec(ctx, `UPDATE job_pools SET heartbeat = ? WHERE id = ?`, sqldb.Nanos(now), r.id); err != nil {
			return err
		}
		if len(mine) == 0 {
			return nil
		}
		rows, err := tx.Query(ctx, `UPDATE jobs SET due = ?, updated = ? WHERE pool = ? AND state = 'Running' AND due > ? RETURNING id, cancel`,
			sqldb.Nanos(now.Add(q.opt.Lease)), sqldb.Nanos(now), r.id, sqldb.Nanos(now))
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var cancel bool
			if err := rows.Scan(&id, &cancel); err != nil {
				rows.Close()
				return err
			}
			held = append(held, id)
			if cancel {
				stop = append(stop, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, a := range mine {
			if err := a.log.flush(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, a := range mine {
		switch {
		case slices.Contains(stop, a.ID):
			a.cancel(errStopped)
		case !slices.Contains(held, a.ID):
			a.cancel(errLostLease)
		}
	}
	return nil
}

// housekeep purges old jobs and forgets pools that stopped beating.
func (r *runner) housekeep(ctx context.Context) {
	q := r.q
	if n, err := q.Purge(ctx); err != nil && ctx.Err() == nil {
		q.log.Warn("purging old jobs", "error", err)
	} else if n > 0 {
		q.log.Info("purged old jobs", "jobs", n)
	}
	gone := sqldb.Nanos(q.db.Now().Add(-10 * max(q.opt.Lease, time.Minute)))
	if _, err := q.db.Exec(ctx, `DELETE FROM job_pools WHERE heartbeat < ?`, gone); err != nil && ctx.Err() == nil {
		q.log.Warn("forgetting stopped job pools", "error", err)
	}
}
