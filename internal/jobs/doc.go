// Package jobs is lading's job service: a persistent queue of jobs in the
// metadata database (SQLite embedded, PostgreSQL when replicas share one),
// worked by every lading serve process, with retries, per-kind
// concurrency limits, idempotency keys, cron schedules, a stored log per
// job, stop, and pause/resume per kind. It replaces Harbor's jobservice
// and its Redis.
//
// # Using it
//
// A kind of job is a function, registered explicitly when lading serve is
// wired (never from init):
//
//	q.Register(jobs.Definition{
//		Kind:        "WEBHOOK",             // Harbor's job type names, upper case
//		Run:         jobs.Func(deliver),    // func(ctx, *jobs.Job, Args) error
//		Concurrency: 8,                     // at most 8 at once, across replicas
//		MaxAttempts: 5,                     // retried with backoff until then
//		Timeout:     time.Minute,
//	})
//
// and enqueued, in a transaction of the caller's (so the job exists if and
// only if the change that asked for it committed) or on its own:
//
//	id, created, err := q.EnqueueTx(ctx, tx, jobs.Request{Kind: "WEBHOOK", Args: args, Key: "delivery:" + uuid})
//
// A Key makes the enqueue idempotent: a second request with the same key
// returns the first job's id (created false). With ReleaseKey the key is
// freed when the job finishes ("scan this digest unless a scan is already
// queued"); without, it is held as long as the job is kept.
//
// A job runs at least once: a process killed mid-job loses its lease and
// the job runs again elsewhere, so a job's effect must be idempotent, by
// its key (Job.Key) or by its id. Job.Log is a *slog.Logger whose lines
// are stored with the job (GET /api/v2.0/jobservice/jobs/{id}/log); it
// must never be given secrets. Returning Permanent(err) fails a job
// without retrying it. Schedules (SetSchedule) enqueue a job of a kind on
// a cron expression, once per tick across all replicas.
//
// # Why not River
//
// riverqueue/river (v0.51, served by the proxy for Go 1.26) was evaluated:
// it keeps its own schema and migration line (river_migration), outside
// the one ordered migration list that lading checks at every start; its
// SQLite driver is marked "early testing" and asks for a one-connection
// pool, while lading's SQLite handle serves the whole registry; stuck jobs
// are rescued by age (RescueStuckJobsAfter, an hour by default) rather
// than by a renewed lease; global per-kind concurrency limits are in River
// Pro only; its periodic jobs are configured in code per client, whereas
// Harbor's schedules are data created through the API; and its pgx driver
// wants a pgxpool of its own beside lading's database/sql handle. The
// queue below is a few hundred lines of SQL over lading's sqldb and uses
// each database's own tools: FOR UPDATE SKIP LOCKED on PostgreSQL, the
// single writer of an IMMEDIATE transaction on SQLite.
//
// # Claiming and leases
//
// A runner (Queue.Run, one per process: a "pool" in Harbor's words) claims
// due jobs of one kind in one transaction: it counts the kind's running
// jobs against the kind's Concurrency (on PostgreSQL under a transaction
// advisory lock per kind, so two replicas cannot both take the last
// slot), selects due jobs (FOR UPDATE SKIP LOCKED on PostgreSQL) and marks
// them running with a lease (due = now + Lease) and its pool id. While a
// job runs, the runner renews the leases of all its jobs in one statement
// every Lease/3 and learns of stop requests. A job whose lease expired (its
// process died or hung) is due again: the next claim runs it as a new
// attempt, and a late finish of the old attempt changes nothing (every
// finish is fenced on pool, slot and attempt). An idle runner reads, never
// writes: it asks which kinds have due jobs before it claims.
//
// # Tables (owner "jobs")
//
//	jobs
//	  id, kind, args (JSON), unique_key (NULL: none; unique), release_key,
//	  owner ('' : purged after Options.Retention; else kept until its
//	  owner deletes it), state (Pending, Running, Success, Error, Stopped),
//	  attempt (attempts started), max_attempts, due (Pending: not before;
//	  Running: lease expiry), pool, slot, cancel (stop requested), error,
//	  created, started, finished, updated (unix nanoseconds)
//	job_log        job_id, seq, at, attempt, level, line
//	job_queues     kind, paused, updated
//	job_pools      id, host, pid, started, heartbeat, concurrency
//	job_schedules  id, vendor_type, vendor_id (unique together), kind, args,
//	               cron, next_at, created, updated
package jobs
