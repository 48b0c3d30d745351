package jobs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sqldb/sqldbtest"
)

// BenchmarkThroughput enqueues no-op jobs from 4 goroutines, each in its
// own transaction as callers do, while one runner (10 workers) works
// them, and reports jobs enqueued and executed per second. The baseline,
// measured on the same database in the same run, is the least durable
// work a job needs: two write transactions (insert a row, then mark it
// done) with nothing else; "x-baseline" is the queue's rate over it.
func BenchmarkThroughput(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchThroughput(b, sqldbtest.SQLite(b, jobs.Migrations)) })
	b.Run("postgres", func(b *testing.B) {
		srv := pgtest.Start(b)
		benchThroughput(b, sqldbtest.Postgres(b, srv, jobs.Migrations))
	})
}

func benchThroughput(b *testing.B, db *sqldb.DB) {
	ctx := context.Background()
	if _, err := db.Exec(ctx, `CREATE TABLE bench_baseline (id `+db.Dialect().Expand("{{id}}")+`, done `+db.Dialect().Expand("{{bool}}")+` NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	q := jobs.New(db, jobs.Options{Workers: 10, Poll: 50 * time.Millisecond})
	q.Register(jobs.Definition{Kind: "NOOP", MaxAttempts: 1, Run: func(context.Context, *jobs.Job) error { return nil }})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); q.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	n := b.N
	start := time.Now()
	parallel(4, n, func() {
		if _, _, err := q.Enqueue(ctx, jobs.Request{Kind: "NOOP"}); err != nil {
			b.Error(err)
		}
	})
	for {
		var left int64
		db.QueryRow(ctx, `SELECT COUNT(*) FROM jobs WHERE state <> 'Success'`).Scan(&left)
		if left == 0 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	rate := float64(n) / time.Since(start).Seconds()
	b.StopTimer()

	base := time.Now()
	parallel(4, n, func() {
		var id int64
		err := db.Tx(ctx, "baseline insert", func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, `INSERT INTO bench_baseline (done) VALUES (FALSE) RETURNING id`).Scan(&id)
		})
		if err == nil {
			err = db.Tx(ctx, "baseline done", func(tx *sqldb.Tx) error {
				_, err := tx.Exec(ctx, `UPDATE bench_baseline SET done = TRUE WHERE id = ?`, id)
				return err
			})
		}
		if err != nil {
			b.Error(err)
		}
	})
	baseRate := float64(n) / time.Since(base).Seconds()
	b.ReportMetric(rate, "jobs/s")
	b.ReportMetric(baseRate, "baseline/s")
	b.ReportMetric(rate/baseRate, "x-baseline")
}

// parallel calls fn n times from g goroutines.
func parallel(g, n int, fn func()) {
	var wg sync.WaitGroup
	ch := make(chan struct{}, n)
	for range n {
		ch <- struct{}{}
	}
	close(ch)
	for range g {
		wg.Go(func() {
			for range ch {
				fn()
			}
		})
	}
	wg.Wait()
}
