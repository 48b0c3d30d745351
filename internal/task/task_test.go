package task_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sqldb/sqldbtest"
	"github.com/lading-dev/lading/internal/task"
)

func TestExecutions(t *testing.T) {
	ctx := context.Background()
	db := sqldbtest.SQLite(t, append(append([]sqldb.Migration(nil), jobs.Migrations...), task.Migrations...))
	q := jobs.New(db, jobs.Options{Poll: 20 * time.Millisecond, Lease: time.Second})
	q.Register(jobs.Definition{Kind: "T", MaxAttempts: 1, Backoff: func(int) time.Duration { return 0 }, Run: jobs.Func(func(_ context.Context, j *jobs.Job, fail bool) error {
		j.Log.Info("ran")
		if fail {
			return errors.New("failed on purpose")
		}
		return nil
	})})
	m := task.New(db, q)
	var execs []int64
	for i, fails := range [][]bool{{false, false}, {false, true}, {}} {
		err := db.Tx(ctx, "create", func(tx *sqldb.Tx) error {
			id, err := m.Create(ctx, tx, "REPLICATION", 9, task.TriggerManual, map[string]any{"n": i})
			for _, f := range fails {
				if _, err := m.AddTask(ctx, tx, id, jobs.Request{Kind: "T", Args: f}, nil); err != nil {
					return err
				}
			}
			execs = append(execs, id)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); q.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	var list []task.Execution
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		list, _, err = m.Executions(ctx, "REPLICATION", 9, query.Query{}, query.Page{Number: 1, Size: 10})
		if err != nil {
			t.Fatal(err)
		}
		if list[1].Status != task.StatusRunning && list[2].Status != task.StatusRunning || time.Now().After(deadline) {
			break
		}
	}
	// Newest first: the empty one, the failed one, the successful one.
	if list[0].Status != task.StatusSuccess || list[1].Status != task.StatusError || list[2].Status != task.StatusSuccess ||
		list[1].Metrics.TaskCount != 2 || list[1].Metrics.ErrorTaskCount != 1 || list[1].Metrics.SuccessTaskCount != 1 || list[2].EndTime.IsZero() {
		t.Fatalf("executions: %+v", list)
	}
	tasks, total, err := m.Tasks(ctx, execs[1], query.Query{}, query.Page{Number: 1, Size: 10})
	if err != nil || total != 2 || tasks[1].Status != task.StatusError || tasks[1].StatusMessage != "failed on purpose" || tasks[1].RunCount != 1 {
		t.Fatalf("tasks: %+v %v", tasks, err)
	}
	if log, err := m.TaskLog(ctx, tasks[0].ID); err != nil || len(log) == 0 {
		t.Errorf("task log: %q %v", log, err)
	}
	// Keep the newest execution only.
	if err := m.Sweep(ctx, "REPLICATION", 1); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := m.Executions(ctx, "REPLICATION", 9, query.Query{}, query.Page{Number: 1, Size: 10}); total != 1 {
		t.Errorf("%d executions after the sweep, want 1", total)
	}
	if _, err := q.Get(ctx, tasks[0].JobID); err == nil {
		t.Error("a swept execution's job is still there")
	}
}
