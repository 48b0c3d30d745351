package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// SchedulerKind is the queue that, paused, pauses every schedule (Harbor's
// "SCHEDULER" job type).
const SchedulerKind = "SCHEDULER"

// Harbor's schedule types and the cron expressions of the fixed ones.
// Cron expressions have six fields, seconds first, seconds always 0
// (Harbor's ValidateCronString); times are UTC.
const (
	TypeHourly = "Hourly"
	TypeDaily  = "Daily"
	TypeWeekly = "Weekly"
	TypeCustom = "Custom"
	TypeManual = "Manual"
	TypeNone   = "None"

	CronHourly = "0 0 * * * *"
	CronDaily  = "0 0 0 * * *"
	CronWeekly = "0 0 0 * * 0"
)

var cronParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// maxCron bounds a cron expression's length.
const maxCron = 128

// ParseCron checks a cron expression as Harbor does: six fields (seconds,
// minutes, hours, day of month, month, day of week), the seconds field 0,
// and a schedule that fires at least once in the next five years.
func ParseCron(expr string) (cron.Schedule, error) {
	if expr == "" {
		return nil, errdefs.InvalidArgument(errors.New("empty cron expression"))
	}
	if len(expr) > maxCron {
		return nil, errdefs.InvalidArgument(fmt.Errorf("cron expression is %d bytes long; at most %d", len(expr), maxCron))
	}
	if strings.HasPrefix(expr, "@") || strings.Contains(expr, "TZ=") {
		return nil, errdefs.InvalidArgument(fmt.Errorf("cron expression %q: descriptors and time zones are not supported; use six fields", expr))
	}
	fields := strings.Fields(expr)
	if len(fields) != 6 {
		return nil, errdefs.InvalidArgument(fmt.Errorf("cron expression %q has %d fields; want 6 (second minute hour day-of-month month day-of-week)", expr, len(fields)))
	}
	if fields[0] != "0" {
		return nil, errdefs.InvalidArgument(fmt.Errorf("cron expression %q: the first field (seconds) must be 0", expr))
	}
	s, err := parseSafely(expr)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("cron expression %q: %v", expr, err))
	}
	if s.Next(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, errdefs.InvalidArgument(fmt.Errorf("cron expression %q never fires", expr))
	}
	return s, nil
}

func parseSafely(expr string) (s cron.Schedule, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	return cronParser.Parse(expr)
}

// CronOf returns the cron expression of a Harbor schedule type (cron is
// the expression of a Custom one), or "" for None and Manual.
func CronOf(typ, expr string) (string, error) {
	switch typ {
	case TypeHourly:
		return CronHourly, nil
	case TypeDaily:
		return CronDaily, nil
	case TypeWeekly:
		return CronWeekly, nil
	case TypeCustom, "Schedule":
		_, err := ParseCron(expr)
		return expr, err
	case TypeNone, TypeManual, "":
		return "", nil
	}
	return "", errdefs.InvalidArgument(fmt.Errorf("schedule type %q: want Hourly, Daily, Weekly, Custom, Manual or None", typ))
}

// TypeOf is the Harbor schedule type of a cron expression.
func TypeOf(expr string) string {
	switch expr {
	case "":
		return TypeNone
	case CronHourly:
		return TypeHourly
	case CronDaily:
		return TypeDaily
	case CronWeekly:
		return TypeWeekly
	}
	return TypeCustom
}

// Schedule enqueues a job of Kind with Args at every tick of Cron. A
// vendor (Harbor's vendor_type, such as "GARBAGE_COLLECTION" or
// "SCAN_ALL", and an id, 0 for system-wide ones) has at most one.
type Schedule struct {
	ID         int64
	VendorType string
	VendorID   int64
	Kind       string
	Args       json.RawMessage
	Cron       string
	// Next is the next tick.
	Next             time.Time
	Created, Updated time.Time
}

// SetSchedule creates or replaces the schedule of s.VendorType and
// s.VendorID and returns its id. The first tick is the first after now.
func (q *Queue) SetSchedule(ctx context.Context, s Schedule) (int64, error) {
	if err := checkKind(s.Kind); err != nil {
		return 0, err
	}
	if s.VendorType == "" {
		return 0, errdefs.InvalidArgument(errors.New("a schedule needs a vendor type"))
	}
	sched, err := ParseCron(s.Cron)
	if err != nil {
		return 0, err
	}
	if len(s.Args) == 0 {
		s.Args = json.RawMessage("null")
	}
	now := q.db.Now()
	next := sched.Next(now.UTC())
	var id int64
	err = q.db.Tx(ctx, "set schedule", func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO job_schedules (vendor_type, vendor_id, kind, args, cron, next_at, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (vendor_type, vendor_id) DO UPDATE SET kind = excluded.kind, args = excluded.args, cron = excluded.cron, next_at = excluded.next_at, updated = excluded.updated
			RETURNING id`, s.VendorType, s.VendorID, s.Kind, string(s.Args), s.Cron, sqldb.Nanos(next), sqldb.Nanos(now), sqldb.Nanos(now)).Scan(&id)
	})
	return id, err
}

// DeleteSchedule removes a vendor's schedule; none is not an error.
func (q *Queue) DeleteSchedule(ctx context.Context, vendorType string, vendorID int64) error {
	_, err := q.db.Exec(ctx, `DELETE FROM job_schedules WHERE vendor_type = ? AND vendor_id = ?`, vendorType, vendorID)
	return q.db.Wrap("delete schedule", err)
}

const scheduleCols = `id, vendor_type, vendor_id, kind, args, cron, next_at, created, updated`

func scanSchedule(r sqldb.Row) (Schedule, error) {
	var s Schedule
	var args string
	var next, created, updated int64
	err := r.Scan(&s.ID, &s.VendorType, &s.VendorID, &s.Kind, &args, &s.Cron, &next, &created, &updated)
	s.Args = json.RawMessage(args)
	s.Next, s.Created, s.Updated = sqldb.Time(next), sqldb.Time(created), sqldb.Time(updated)
	return s, err
}

// GetSchedule returns a vendor's schedule; errdefs.ErrNotFound when it
// has none.
func (q *Queue) GetSchedule(ctx context.Context, vendorType string, vendorID int64) (Schedule, error) {
	s, err := scanSchedule(q.db.QueryRow(ctx, `SELECT `+scheduleCols+` FROM job_schedules WHERE vendor_type = ? AND vendor_id = ?`, vendorType, vendorID))
	if errors.Is(err, sql.ErrNoRows) {
		return Schedule{}, errdefs.NotFound(fmt.Errorf("no schedule for %s %d", vendorType, vendorID))
	}
	return s, q.db.Wrap("schedule", err)
}

// Schedules lists the schedules by id.
func (q *Queue) Schedules(ctx context.Context, page query.Page) ([]Schedule, int64, error) {
	var total int64
	if err := q.db.QueryRow(ctx, `SELECT COUNT(*) FROM job_schedules`).Scan(&total); err != nil {
		return nil, 0, q.db.Wrap("schedules", err)
	}
	rows, err := q.db.Query(ctx, `SELECT `+scheduleCols+` FROM job_schedules ORDER BY id`+page.LimitSQL())
	if err != nil {
		return nil, 0, q.db.Wrap("schedules", err)
	}
	defer rows.Close()
	out := []Schedule{}
	for rows.Next() {
		s, err := scanSchedule(rows)
		if err != nil {
			return nil, 0, q.db.Wrap("schedules", err)
		}
		out = append(out, s)
	}
	return out, total, q.db.Wrap("schedules", rows.Err())
}

// fireSchedules enqueues the jobs of the schedules whose tick has come,
// unless the SCHEDULER queue is paused. Each schedule row is locked while
// it fires (FOR UPDATE SKIP LOCKED on PostgreSQL, the one writer on
// SQLite) and its next tick moves forward in the same transaction, and the
// job's key names the tick: one job per tick, whatever the number of
// replicas. Ticks missed while no lading ran fire once, not once each.
func (q *Queue) fireSchedules(ctx context.Context) error {
	now := q.db.Now()
	var next sql.NullInt64
	if err := q.db.QueryRow(ctx, `SELECT MIN(next_at) FROM job_schedules`).Scan(&next); err != nil {
		return q.db.Wrap("schedules", err)
	}
	if !next.Valid || next.Int64 > sqldb.Nanos(now) {
		return nil
	}
	if paused, err := q.pausedKinds(ctx); err != nil || paused[SchedulerKind] {
		return err
	}
	lock := ""
	if f := q.db.Dialect().ForUpdate; f != "" {
		lock = f + " SKIP LOCKED"
	}
	return q.db.Tx(ctx, "fire schedules", func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+scheduleCols+` FROM job_schedules WHERE next_at <= ? ORDER BY next_at LIMIT 100`+lock, sqldb.Nanos(now))
		if err != nil {
			return err
		}
		var due []Schedule
		for rows.Next() {
			s, err := scanSchedule(rows)
			if err != nil {
				rows.Close()
				return err
			}
			due = append(due, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, s := range due {
			tick := s.Next
			sched, err := ParseCron(s.Cron)
			var nextAt int64 = 1<<63 - 1 // a stored expression that no longer parses never fires again
			if err == nil {
				nextAt = sqldb.Nanos(sched.Next(now.UTC()))
			} else {
				q.log.Error("a stored schedule has a bad cron expression; it will not fire", "schedule", s.ID, "cron", s.Cron, "error", err)
			}
			if _, err := tx.Exec(ctx, `UPDATE job_schedules SET next_at = ? WHERE id = ?`, nextAt, s.ID); err != nil {
				return err
			}
			if sched == nil {
				continue
			}
			key := "schedule:" + strconv.FormatInt(s.ID, 10) + ":" + strconv.FormatInt(sqldb.Nanos(tick), 10)
			if _, _, err := q.EnqueueTx(ctx, tx, Request{Kind: s.Kind, Args: s.Args, Key: key}); err != nil {
				return err
			}
		}
		return nil
	})
}
