// Package purge is Harbor's audit log purge (/system/purgeaudit): manual
// or scheduled PURGE_AUDIT_LOG runs that delete the audit log's entries
// older than audit_retention_hour hours whose type is one of
// include_event_types ("create_artifact,pull_artifact,other"), or, with
// dry_run, count them. Each run is an execution with a log.
package purge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sysjob"
	"github.com/lading-dev/lading/internal/task"
)

// VendorType is the executions' vendor type and the job kind.
const VendorType = "PURGE_AUDIT_LOG"

// MaxRetentionHours is Harbor's bound on audit_retention_hour.
const MaxRetentionHours = 240000

// Service purges the audit log.
type Service struct {
	*sysjob.Service
	audit *audit.Log
	now   func() time.Time
}

// New returns the service.
func New(db *sqldb.DB, checker *access.Checker, q *jobs.Queue, tasks *task.Manager, log *audit.Log, logger *slog.Logger) *Service {
	s := &Service{audit: log, now: db.Now}
	s.Service = sysjob.New(db, checker, q, tasks, sysjob.Spec{
		VendorType: VendorType, Resource: access.PurgeAuditLog,
		Params: params, Run: s.run, Timeout: 6 * time.Hour, MaxAttempts: 3,
	}, logger)
	return s
}

// params checks Harbor's parameters: audit_retention_hour (required, at
// most 240000), include_event_types (required), dry_run.
func params(in map[string]any) (map[string]any, error) {
	if len(in) == 0 {
		return nil, errdefs.InvalidArgument(errors.New("schedule parameter cann't be empty"))
	}
	hours, ok, err := sysjob.Int(in, "audit_retention_hour")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errdefs.InvalidArgument(errors.New("audit_retention_hour should provide"))
	}
	if hours < 0 || hours > MaxRetentionHours {
		return nil, errdefs.InvalidArgument(fmt.Errorf("audit_retention_hour should be between 0 and %d", MaxRetentionHours))
	}
	types, ok := in["include_event_types"].(string)
	if !ok {
		ops, isOps := in["include_operations"].(string)
		if !isOps {
			return nil, errdefs.InvalidArgument(errors.New("include_event_types should provide"))
		}
		types = eventTypesOf(ops)
	}
	if len(types) > 4096 {
		return nil, errdefs.InvalidArgument(errors.New("include_event_types longer than 4096 bytes"))
	}
	dry, err := sysjob.Bool(in, "dry_run")
	if err != nil {
		return nil, err
	}
	return map[string]any{"audit_retention_hour": hours, "include_event_types": types, "dry_run": dry}, nil
}

// eventTypesOf reads the parameter of Harbor before 2.13,
// include_operations ("create,delete,pull"), as the event types of those
// operations.
func eventTypesOf(ops string) string {
	var out []string
	for op := range strings.SplitSeq(ops, ",") {
		op = strings.ToLower(strings.TrimSpace(op))
		for _, t := range audit.EventTypes {
			if op != "" && strings.HasPrefix(t, op+"_") {
				out = append(out, t)
			}
		}
	}
	return strings.Join(out, ",")
}

func (s *Service) run(ctx context.Context, j *jobs.Job, p map[string]any) error {
	hours, _, _ := sysjob.Int(p, "audit_retention_hour")
	dry, _ := sysjob.Bool(p, "dry_run")
	typesText, _ := p["include_event_types"].(string)
	var types []string
	for t := range strings.SplitSeq(typesText, ",") {
		if t = strings.ToLower(strings.TrimSpace(t)); t != "" {
			types = append(types, t)
		}
	}
	before := s.now().Add(-time.Duration(hours) * time.Hour)
	j.Log.Info("purging the audit log", "older_than", before.UTC().Format(time.RFC3339), "event_types", strings.Join(types, ","), "dry_run", dry)
	n, err := s.audit.PurgeEvents(ctx, before, types, dry)
	if err != nil {
		j.Log.Error("purge failed", "purged", n, "error", err)
		return err
	}
	if dry {
		j.Log.Info(fmt.Sprintf("dry run: %d audit log entries would be purged", n))
	} else {
		j.Log.Info(fmt.Sprintf("purged %d audit log entries", n))
	}
	return nil
}
