package server_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registry/server"
	lretention "github.com/lading-dev/lading/internal/retention"
	"github.com/lading-dev/lading/internal/selector"
	"github.com/lading-dev/lading/internal/task"
)

// BenchmarkRetentionDryRun100k is a retention dry run over 100,000
// artifacts in 1,000 repositories of one project (latestPushedK 10: each
// task decides 100 artifacts and keeps 10):
//
//	go test -run '^$' -bench RetentionDryRun100k -benchtime 1x ./internal/registry/server/
//
// It reports the run's wall time and the heap's peak above what the
// seeded server held before the run.
func BenchmarkRetentionDryRun100k(b *testing.B) {
	const repos, perRepo = 1000, 100
	srv := harbortest.Start(b, harbortest.WithConfig(func(c *server.Config) { c.Jobs.Poll = 20 * time.Millisecond }))
	ctx := context.Background()
	for r := range repos {
		seedArtifacts(b, srv, fmt.Sprintf("library/r%04d", r), perRepo)
	}
	admin := srv.AdminSubject(b)
	id, err := srv.Core.Retention.Create(ctx, admin, lretention.Policy{Algorithm: "or",
		Rules: []lretention.Rule{{Action: "retain", Template: lretention.LatestPushedK, Params: map[string]any{lretention.LatestPushedK: 10.0},
			TagSelectors: []selector.Selector{{Kind: selector.Kind, Decoration: selector.Matches, Pattern: "**"}}}},
		Trigger: lretention.Trigger{Kind: "Schedule", Settings: map[string]any{"cron": ""}},
		Scope:   lretention.Scope{Level: "project", Ref: 1}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		elapsed, peak := measure(func() {
			exec, err := srv.Core.Retention.Trigger(ctx, admin, id, true)
			if err != nil {
				b.Fatal(err)
			}
			for {
				e, err := srv.Core.Tasks.Execution(ctx, exec)
				if err != nil {
					b.Fatal(err)
				}
				if e.Status != task.StatusRunning && e.Status != task.StatusPending {
					if e.Status != task.StatusSuccess {
						b.Fatalf("execution %d: %s", exec, e.Status)
					}
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
		b.ReportMetric(elapsed.Seconds(), "run-s")
		b.ReportMetric(peak, "peak-heap-MiB")
	}
}

// measure runs fn and returns its wall time and the heap's peak above
// what was live before it (MiB), sampled every 20ms.
func measure(fn func()) (time.Duration, float64) {
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
		}
	})
	t0 := time.Now()
	fn()
	elapsed := time.Since(t0)
	close(stop)
	wg.Wait()
	p := peak.Load()
	if p < base.HeapAlloc {
		return elapsed, 0
	}
	return elapsed, float64(p-base.HeapAlloc) / (1 << 20)
}
