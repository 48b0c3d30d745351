package jobs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sqldb/postgres"
	"github.com/lading-dev/lading/internal/sqldb/sqlite"
)

// The process tests run jobs in child processes (this test binary again,
// as TestHelperProcess), so that a real process can be killed with
// SIGKILL in the middle of jobs, and two processes can share one
// PostgreSQL as two replicas do.

// effectMigrations are the job service's tables and the test's: runs
// records every execution of a job (pid, attempt), effects the job's
// effect, applied idempotently by the job's key.
var effectMigrations = append(append([]sqldb.Migration(nil), jobs.Migrations...), sqldb.Migration{Owner: "test", Name: "effects", SQL: []string{
	`CREATE TABLE test_runs (id {{id}}, job_key {{text}} NOT NULL, pid {{int}} NOT NULL, attempt {{int}} NOT NULL)`,
	`CREATE TABLE test_effects (job_key {{text}} PRIMARY KEY, pid {{int}} NOT NULL)`,
}})

const helperEnv = "LADING_JOBS_HELPER"

// TestHelperProcess is a job runner when run as a child of the tests
// below; otherwise it does nothing.
func TestHelperProcess(t *testing.T) {
	target := os.Getenv(helperEnv)
	if target == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	db, err := openTarget(ctx, target)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	q := jobs.New(db, jobs.Options{Workers: 4, Lease: time.Second, Poll: 50 * time.Millisecond})
	pid := os.Getpid()
	q.Register(jobs.Definition{Kind: "EFFECT", MaxAttempts: 10, Run: func(ctx context.Context, j *jobs.Job) error {
		if _, err := db.Exec(ctx, `INSERT INTO test_runs (job_key, pid, attempt) VALUES (?, ?, ?)`, j.Key, pid, j.Attempt); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond) // the window a kill lands in
		_, err := db.Exec(ctx, `INSERT INTO test_effects (job_key, pid) VALUES (?, ?) ON CONFLICT (job_key) DO NOTHING`, j.Key, pid)
		return err
	}})
	q.Run(ctx)
	os.Exit(0)
}

func openTarget(ctx context.Context, target string) (*sqldb.DB, error) {
	var db *sqldb.DB
	var err error
	if path, ok := strings.CutPrefix(target, "sqlite:"); ok {
		db, err = sqlite.Open(ctx, path)
	} else {
		db, err = postgres.Open(ctx, target)
	}
	if err != nil {
		return nil, err
	}
	return db, sqldb.Migrate(ctx, db, effectMigrations)
}

func helper(t *testing.T, target string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+target)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func count(t *testing.T, db *sqldb.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func enqueueEffects(t *testing.T, db *sqldb.DB, n int) {
	t.Helper()
	q := jobs.New(db, jobs.Options{})
	for i := range n {
		if _, _, err := q.Enqueue(context.Background(), jobs.Request{Kind: "EFFECT", Key: fmt.Sprintf("effect-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKillMidJob kills a runner process with SIGKILL while it runs jobs,
// starts another, and checks that every job finished and had its effect
// exactly once: the jobs interrupted mid-run ran again (their leases
// expired), and their effect, idempotent by the job's key, counted once.
func TestKillMidJob(t *testing.T) {
	const n = 120
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := openTarget(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	enqueueEffects(t, db, n)

	first := helper(t, "sqlite:"+path)
	waitFor(t, "30 effects", func() bool { return count(t, db, `SELECT COUNT(*) FROM test_effects`) >= 30 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	running := count(t, db, `SELECT COUNT(*) FROM jobs WHERE state = 'Running'`)
	t.Logf("killed the runner with %d jobs running and %d effects applied", running, count(t, db, `SELECT COUNT(*) FROM test_effects`))

	helper(t, "sqlite:"+path)
	waitFor(t, "every job to finish", func() bool {
		return count(t, db, `SELECT COUNT(*) FROM jobs WHERE state IN ('Success', 'Error', 'Stopped')`) == n
	})
	if got := count(t, db, `SELECT COUNT(*) FROM jobs WHERE state = 'Success'`); got != n {
		t.Errorf("%d of %d jobs succeeded", got, n)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM test_effects`); got != n {
		t.Errorf("%d effects, want %d (one per job)", got, n)
	}
	if got := count(t, db, `SELECT COUNT(DISTINCT job_key) FROM test_runs`); got != n {
		t.Errorf("%d jobs ran, want %d", got, n)
	}
	again := count(t, db, `SELECT COUNT(*) FROM jobs WHERE attempt > 1`)
	t.Logf("%d executions for %d jobs; %d jobs ran again after the kill", count(t, db, `SELECT COUNT(*) FROM test_runs`), n, again)
	if running > 0 && again == 0 {
		t.Errorf("%d jobs were running when the runner was killed, but none ran a second attempt", running)
	}
	if running == 0 {
		t.Logf("no job was running at the kill; the test proved less than it could")
	}
}

// TestReplicasPostgres runs two runner processes on one PostgreSQL: every
// job runs on exactly one of them, exactly once.
func TestReplicasPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL; skipped with -short")
	}
	const n = 400
	ctx := context.Background()
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	db, err := openTarget(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	helper(t, url)
	helper(t, url)
	waitFor(t, "two pools", func() bool { return count(t, db, `SELECT COUNT(*) FROM job_pools`) == 2 })
	enqueueEffects(t, db, n)
	waitFor(t, "every job to finish", func() bool {
		return count(t, db, `SELECT COUNT(*) FROM jobs WHERE state IN ('Success', 'Error', 'Stopped')`) == n
	})
	if got := count(t, db, `SELECT COUNT(*) FROM jobs WHERE state = 'Success'`); got != n {
		t.Errorf("%d of %d jobs succeeded", got, n)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM test_runs`); got != n {
		t.Errorf("%d executions of %d jobs, want exactly one each", got, n)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM (SELECT job_key FROM test_runs GROUP BY job_key HAVING COUNT(*) > 1) d`); got != 0 {
		t.Errorf("%d jobs ran more than once", got)
	}
	pids := count(t, db, `SELECT COUNT(DISTINCT pid) FROM test_runs`)
	t.Logf("%d jobs ran on %d replicas", n, pids)
	if pids != 2 {
		t.Errorf("jobs ran on %d replicas, want both", pids)
	}
}
