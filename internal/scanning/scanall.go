package scanning

import (
	"context"
	"errors"
	"fmt"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/task"
)

// The scan of all artifacts (Harbor's SCAN_ALL): an execution of vendor
// SCAN_ALL whose tasks are the IMAGE_SCAN jobs of every image, made by a
// SCAN_ALL job (so that a schedule, firing once across replicas, and a
// manual trigger go the same way).

const vendorScanAll = "SCAN_ALL"

type scanAllArgs struct {
	// Execution is the execution a manual trigger made; 0 for a
	// scheduled run, which makes its own.
	Execution int64 `json:"execution,omitempty"`
}

func (s *Service) ScanAllSchedule(ctx context.Context, who access.Subject) (scanapi.Schedule, error) {
	if err := s.requireSystem(ctx, who, access.Read, access.ScanAll); err != nil {
		return scanapi.Schedule{}, err
	}
	sch, err := s.d.Jobs.GetSchedule(ctx, vendorScanAll, 0)
	if errdefs.IsNotFound(err) {
		return scanapi.Schedule{Type: scanapi.ScheduleNone}, nil
	}
	if err != nil {
		return scanapi.Schedule{}, err
	}
	return scanapi.Schedule{ID: sch.ID, Type: jobs.TypeOf(sch.Cron), Cron: sch.Cron, NextScheduled: sch.Next, Created: sch.Created, Updated: sch.Updated}, nil
}

func (s *Service) SetScanAllSchedule(ctx context.Context, who access.Subject, sch scanapi.Schedule) error {
	if err := s.requireSystem(ctx, who, access.Create, access.ScanAll); err != nil {
		return err
	}
	switch sch.Type {
	case scanapi.ScheduleManual:
		return s.triggerScanAll(ctx, who)
	case scanapi.ScheduleNone, "":
		return s.d.Jobs.DeleteSchedule(ctx, vendorScanAll, 0)
	}
	c, err := jobs.CronOf(sch.Type, sch.Cron)
	if err != nil {
		return err
	}
	_, err = s.d.Jobs.SetSchedule(ctx, jobs.Schedule{VendorType: vendorScanAll, Kind: KindScanAll, Cron: c})
	return err
}

// triggerScanAll starts a scan of all now, unless one runs.
func (s *Service) triggerScanAll(ctx context.Context, who access.Subject) error {
	if e, ok, err := s.latestScanAll(ctx, ""); err != nil {
		return err
	} else if ok && e.Status == task.StatusRunning {
		return errdefs.Conflict(errors.New("a scan of all artifacts is running; stop it first"))
	}
	return s.d.DB.Tx(ctx, "trigger scan all", func(tx *sqldb.Tx) error {
		exec, err := s.d.Tasks.Create(ctx, tx, vendorScanAll, 0, task.TriggerManual, map[string]any{"operator": who.Name})
		if err != nil {
			return err
		}
		_, _, err = s.d.Jobs.EnqueueTx(ctx, tx, jobs.Request{Kind: KindScanAll, Args: scanAllArgs{Execution: exec}, Key: fmt.Sprintf("scanall:%d", exec)})
		return err
	})
}

// latestScanAll is the newest execution (of a trigger, or any).
func (s *Service) latestScanAll(ctx context.Context, trigger string) (task.Execution, bool, error) {
	q := query.Query{}
	if trigger != "" {
		q = q.With("trigger", trigger)
	}
	list, _, err := s.d.Tasks.Executions(ctx, vendorScanAll, 0, q, query.Page{Number: 1, Size: 1})
	if err != nil || len(list) == 0 {
		return task.Execution{}, false, err
	}
	return list[0], true, nil
}

func (s *Service) StopScanAll(ctx context.Context, who access.Subject) error {
	if err := s.requireSystem(ctx, who, access.Stop, access.ScanAll); err != nil {
		return err
	}
	e, ok, err := s.latestScanAll(ctx, "")
	if err != nil {
		return err
	}
	if !ok {
		return errdefs.InvalidArgument(errors.New("no scan of all artifacts was found"))
	}
	return s.d.Tasks.Stop(ctx, e.ID) // a finished one stays as it is
}

func (s *Service) ScanAllMetrics(ctx context.Context, who access.Subject, scheduled bool) (scanapi.Stats, error) {
	if err := s.requireSystem(ctx, who, access.Read, access.ScanAll); err != nil {
		return scanapi.Stats{}, err
	}
	trigger := ""
	if scheduled {
		trigger = task.TriggerSchedule
	}
	e, ok, err := s.latestScanAll(ctx, trigger)
	if err != nil || !ok {
		return scanapi.Stats{Metrics: map[string]int64{}}, err
	}
	m := e.Metrics
	st := scanapi.Stats{
		Total:     m.TaskCount,
		Completed: m.SuccessTaskCount + m.ErrorTaskCount + m.StoppedTaskCount,
		Ongoing:   e.Status == task.StatusRunning,
		Trigger:   e.Trigger,
		Metrics:   map[string]int64{},
	}
	for k, n := range map[string]int64{task.StatusPending: m.PendingTaskCount, task.StatusRunning: m.RunningTaskCount, task.StatusSuccess: m.SuccessTaskCount,
		task.StatusError: m.ErrorTaskCount, task.StatusStopped: m.StoppedTaskCount} {
		if n > 0 {
			st.Metrics[k] = n
		}
	}
	return st, nil
}

// runScanAll queues a scan of every image, as tasks of the execution, a
// page of artifacts per transaction.
func (s *Service) runScanAll(ctx context.Context, j *jobs.Job, a scanAllArgs) error {
	exec := a.Execution
	if exec == 0 {
		err := s.d.DB.Tx(ctx, "scheduled scan all", func(tx *sqldb.Tx) error {
			var err error
			exec, err = s.d.Tasks.Create(ctx, tx, vendorScanAll, 0, task.TriggerSchedule, map[string]any{"job": j.ID})
			return err
		})
		if err != nil {
			return err
		}
	}
	regs := map[int64]registration{}
	var after int64
	n := 0
	for {
		page, err := s.d.Artifacts.Page(ctx, after, 200)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].ID
		err = s.d.DB.Tx(ctx, "scan all: queue", func(tx *sqldb.Tx) error {
			for _, art := range page {
				if !scannable(art.ManifestMediaType, art.ArtifactType, art.MediaType) || isIndex(art.ManifestMediaType) {
					continue // an index's images are artifacts of their own
				}
				reg, ok := regs[art.ProjectID]
				if !ok {
					r, err := s.scannerOf(ctx, tx, art.ProjectID)
					if err != nil {
						return err
					}
					reg, regs[art.ProjectID] = r, r
				}
				if err := s.queueScan(ctx, tx, targetOf(art), scanapi.TypeVulnerability, reg, queued{execution: exec, operator: "scan all", again: true}); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	j.Log.Info(fmt.Sprintf("queued the scan of %d images", n), "execution", exec)
	return nil
}
