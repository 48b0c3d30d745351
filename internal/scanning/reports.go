package scanning

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/sqldb"
)

// reportRow is a row of scan_reports without its large columns.
type reportRow struct {
	ID           int64
	UUID         string
	Digest       string
	Registration string
	ScanType     string
	MimeType     string
	Repository   string
	MediaType    string
	Status       string
	JobID        int64
	Start, End   time.Time
	DBDigest     string
	Severity     int
	Summary      string
	Accessory    string
	Children     []string
}

const reportCols = `id, uuid, digest, registration, scan_type, mime_type, repository, media_type, status, job_id, start_time, end_time, db_digest, severity, summary, accessory, children`

func scanReport(row sqldb.Row) (reportRow, error) {
	var r reportRow
	var start, end int64
	var children string
	err := row.Scan(&r.ID, &r.UUID, &r.Digest, &r.Registration, &r.ScanType, &r.MimeType, &r.Repository, &r.MediaType, &r.Status, &r.JobID, &start, &end,
		&r.DBDigest, &r.Severity, &r.Summary, &r.Accessory, &children)
	r.Start, r.End = sqldb.Time(start), sqldb.Time(end)
	if children != "" {
		json.Unmarshal([]byte(children), &r.Children)
	}
	return r, err
}

func (s *Service) reportByUUID(ctx context.Context, uuid string) (reportRow, error) {
	r, err := scanReport(s.d.DB.QueryRow(ctx, `SELECT `+reportCols+` FROM scan_reports WHERE uuid = ?`, uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return reportRow{}, errdefs.NotFound(fmt.Errorf("report %s not found", uuid))
	}
	return r, s.d.DB.Wrap("report", err)
}

// reportsOf returns the reports of digests for one registration and scan
// type, by digest.
func (s *Service) reportsOf(ctx context.Context, digests []string, registration, scanType string) (map[string]reportRow, error) {
	out := map[string]reportRow{}
	for len(digests) > 0 {
		n := min(len(digests), 200)
		args := []any{registration, scanType}
		for _, d := range digests[:n] {
			args = append(args, d)
		}
		rows, err := s.d.DB.Query(ctx, `SELECT `+reportCols+` FROM scan_reports WHERE registration = ? AND scan_type = ? AND digest IN (?`+strings.Repeat(", ?", n-1)+`)`, args...)
		if err != nil {
			return nil, s.d.DB.Wrap("reports", err)
		}
		for rows.Next() {
			r, err := scanReport(rows)
			if err != nil {
				rows.Close()
				return nil, s.d.DB.Wrap("reports", err)
			}
			out[r.Digest] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, s.d.DB.Wrap("reports", err)
		}
		digests = digests[n:]
	}
	return out, nil
}

// column reads one large column of a report.
func (s *Service) column(ctx context.Context, uuid, col string) ([]byte, error) {
	switch col {
	case "findings", "packages", "inventory", "report":
	default:
		return nil, fmt.Errorf("no column %s", col)
	}
	var b []byte
	err := s.d.DB.QueryRow(ctx, `SELECT `+col+` FROM scan_reports WHERE uuid = ?`, uuid).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound(fmt.Errorf("report %s not found", uuid))
	}
	return b, s.d.DB.Wrap("report", err)
}

// statuses derives each report's status: what its job wrote, unless the
// job ended otherwise (stopped, failed, or given up on) or waits for a
// retry; an index's from its children's.
func (s *Service) statuses(ctx context.Context, rows map[string]reportRow) (map[string]string, error) {
	var ids []int64
	for _, r := range rows {
		if r.JobID != 0 && (r.Status == scanapi.StatusPending || r.Status == scanapi.StatusRunning) {
			ids = append(ids, r.JobID)
		}
	}
	infos, err := s.d.Jobs.GetMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for d, r := range rows {
		st := r.Status
		if i, ok := infos[r.JobID]; ok && (st == scanapi.StatusPending || st == scanapi.StatusRunning) {
			switch i.State {
			case jobs.Pending:
				st = scanapi.StatusPending
			case jobs.Running:
				st = scanapi.StatusRunning
			case jobs.Error, jobs.Stopped:
				st = i.State
			}
		} else if r.JobID != 0 && (st == scanapi.StatusPending || st == scanapi.StatusRunning) {
			st = scanapi.StatusError // the job is gone
		}
		out[d] = st
	}
	return out, nil
}

// childStatus is an index's status from its children's: running while one
// is pending or running, else Error if one failed, Stopped if one was
// stopped, else Success.
func childStatus(children []string) string {
	has := map[string]bool{}
	for _, c := range children {
		has[c] = true
	}
	switch {
	case len(children) == 0:
		return scanapi.StatusSuccess
	case has[scanapi.StatusRunning]:
		return scanapi.StatusRunning
	case has[scanapi.StatusPending]:
		return scanapi.StatusPending
	case has[scanapi.StatusError], has[""]:
		return scanapi.StatusError
	case has[scanapi.StatusStopped]:
		return scanapi.StatusStopped
	}
	return scanapi.StatusSuccess
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// storedVerdict reads a report's verdict.
func (s *Service) storedVerdict(ctx context.Context, r reportRow) (verdict, error) {
	b, err := s.column(ctx, r.UUID, "findings")
	if err != nil {
		return verdict{}, err
	}
	var v verdict
	if len(b) > 0 {
		if err := unpack(b, &v.Findings); err != nil {
			return verdict{}, fmt.Errorf("report %s: findings: %w", r.UUID, err)
		}
	}
	v.Severity = r.Severity
	if r.Summary != "" {
		json.Unmarshal([]byte(r.Summary), &v.Summary)
	}
	return v, nil
}
