// Package gc is garbage collection as Harbor's API runs it
// (/system/gc): manual or scheduled runs of the registry's online
// collector as GARBAGE_COLLECTION jobs, each an execution with a log,
// with Harbor's parameters: dry_run (report, delete nothing),
// delete_untagged (delete artifacts that no tag, index or subject keeps,
// before collecting) and workers (1 to 10 blob deletions at once).
//
// A dry run reports what a real run with the same parameters would
// delete: the untagged artifacts, and the blobs that nothing would
// reference once they were gone, with their bytes (Harbor's "eligible for
// deletion" and "could free up" lines).
//
// The collector itself is the registry's (internal/registry's Collector,
// with its collection lock that dies with its process); the wiring hands
// it over as a Collector, which also recounts the projects' quotas after
// a run that deleted something. A run killed midway runs again as the
// job's next attempt: the collector decides every deletion afresh under
// its lock, so nothing is deleted twice or by mistake.
package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sysjob"
	"github.com/lading-dev/lading/internal/task"
)

// VendorType is the executions' vendor type and the job kind.
const VendorType = "GARBAGE_COLLECTION"

// Options are a run's parameters.
type Options struct {
	DryRun         bool
	DeleteUntagged bool
	// Workers bounds the deletions at once (1 to 10).
	Workers int
}

// Report says what a run deleted (or, in a dry run, would).
type Report struct {
	UntaggedArtifacts int
	Blobs             int
	Bytes             int64
	UploadsExpired    int
}

// Collector collects the registry's garbage, logging what it does to log,
// and recounts quotas after a run that deleted something.
type Collector interface {
	Collect(ctx context.Context, o Options, log *slog.Logger) (Report, error)
}

// Service runs garbage collection.
type Service struct {
	*sysjob.Service
	collector Collector
}

// New returns the service; its collector is set at wiring (SetCollector).
func New(db *sqldb.DB, checker *access.Checker, q *jobs.Queue, tasks *task.Manager, log *slog.Logger) *Service {
	s := &Service{}
	s.Service = sysjob.New(db, checker, q, tasks, sysjob.Spec{
		VendorType: VendorType, Resource: access.GarbageCollection,
		Params: params, Run: s.run, Timeout: 24 * time.Hour, MaxAttempts: 3,
	}, log)
	return s
}

// SetCollector sets the registry's collector.
func (s *Service) SetCollector(c Collector) { s.collector = c }

// params checks Harbor's parameters: dry_run, delete_untagged, workers.
func params(in map[string]any) (map[string]any, error) {
	dry, err := sysjob.Bool(in, "dry_run")
	if err != nil {
		return nil, err
	}
	untagged, err := sysjob.Bool(in, "delete_untagged")
	if err != nil {
		return nil, err
	}
	workers, ok, err := sysjob.Int(in, "workers")
	if err != nil {
		return nil, err
	}
	if !ok {
		workers = 1
	}
	if workers <= 0 || workers > 10 {
		return nil, errdefs.InvalidArgument(fmt.Errorf("Error: Invalid number of workers:%d. Workers must be greater than 0 and less than or equal to 10.", workers))
	}
	return map[string]any{"dry_run": dry, "delete_untagged": untagged, "workers": workers}, nil
}

func (s *Service) run(ctx context.Context, j *jobs.Job, p map[string]any) error {
	if s.collector == nil {
		return jobs.Permanent(errors.New("no collector: the registry is not wired"))
	}
	dry, _ := sysjob.Bool(p, "dry_run")
	untagged, _ := sysjob.Bool(p, "delete_untagged")
	workers, _, _ := sysjob.Int(p, "workers")
	o := Options{DryRun: dry, DeleteUntagged: untagged, Workers: max(1, min(10, int(workers)))}
	j.Log.Info("garbage collection started", "dry_run", o.DryRun, "delete_untagged", o.DeleteUntagged, "workers", o.Workers)
	start := time.Now()
	rep, err := s.collector.Collect(ctx, o, j.Log)
	if err != nil {
		j.Log.Error("garbage collection failed", "error", err)
		return err
	}
	// Harbor's two summary lines, then lading's.
	verb := "deleted"
	if o.DryRun {
		verb = "would delete"
		j.Log.Info(fmt.Sprintf("%d blobs and %d manifests eligible for deletion", rep.Blobs, rep.UntaggedArtifacts))
		j.Log.Info(fmt.Sprintf("The GC could free up %s space (%d bytes), the size is a rough estimation.", megabytes(rep.Bytes), rep.Bytes))
	} else {
		j.Log.Info(fmt.Sprintf("%d blobs and %d manifests are actually deleted", rep.Blobs, rep.UntaggedArtifacts))
		j.Log.Info(fmt.Sprintf("The GC job actual frees up %s space (%d bytes).", megabytes(rep.Bytes), rep.Bytes))
	}
	j.Log.Info(fmt.Sprintf("garbage collection finished: %s %d untagged artifacts, %d blobs (%d bytes), %d expired uploads",
		verb, rep.UntaggedArtifacts, rep.Blobs, rep.Bytes, rep.UploadsExpired), "duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// megabytes writes a size as Harbor's GC log does (whole MB).
func megabytes(n int64) string { return fmt.Sprintf("%d MB", n/(1<<20)) }
