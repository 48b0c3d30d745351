package scanning

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/match"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/webhook"
)

// Re-evaluation: after the vulnerability database changes, every report
// of the built-in scanner is judged again from the matcher's inputs it
// keeps, without reading a layer; the findings of packages that many
// images share are matched once (memo). Reports whose verdict changed are
// updated and raise SCANNING_COMPLETED (operator "lading") for every
// repository that holds the artifact, with the new overview; the others
// only record the database they were checked against.

type reevalArgs struct {
	Digest string `json:"digest"`
}

// ReevalStats says what a re-evaluation did.
type ReevalStats struct {
	Reports  int
	Changed  int
	Packages int // distinct packages matched
	Took     time.Duration
}

func (s *Service) runReevaluate(ctx context.Context, j *jobs.Job, a reevalArgs) error {
	h, err := s.keeper.acquire()
	if err == nil && h.digest != a.Digest {
		h.release()
		if err := s.keeper.sync(ctx); err != nil {
			return errdefs.Unavailable(err)
		}
		h, err = s.keeper.acquire()
	}
	if err != nil {
		return err
	}
	defer h.release()
	if h.digest != a.Digest {
		row, err := s.keeper.row(ctx)
		if err != nil {
			return err
		}
		if row.Digest != a.Digest {
			j.Log.Info("a newer database is in force; its own re-evaluation runs instead", "digest", a.Digest)
			return nil
		}
		return errdefs.Unavailable(fmt.Errorf("this replica does not have database %s yet", a.Digest))
	}
	st, err := s.reevaluate(ctx, h, j.Log)
	if err != nil {
		return err
	}
	j.Log.Info(fmt.Sprintf("re-evaluated %d reports in %s: %d verdicts changed (%d distinct packages matched)", st.Reports, st.Took.Round(time.Millisecond), st.Changed, st.Packages),
		"database", h.digest)
	return nil
}

// reevalBatch is how many reports a transaction re-evaluates.
const reevalBatch = 1000

type reevalRow struct {
	id                 int64
	uuid, digest, repo string
	severity           int
	summary            string
	findings, pkgs     []byte // packed
}

// reevalChange is a report whose verdict changed.
type reevalChange struct {
	r        reevalRow
	v        verdict
	findings []byte // packed
}

// reevaluate judges every report not yet judged with h again. A page of
// reports is read, judged, and written back in one transaction: one
// UPDATE for the reports whose verdict stands, one per changed report.
// A verdict stands when the findings' JSON is the stored one, so stored
// findings are decompressed, never decoded.
func (s *Service) reevaluate(ctx context.Context, h *handle, log *slog.Logger) (ReevalStats, error) {
	start := time.Now()
	mm := newRawMemo(newMemo(match.New(h.db, s.log)))
	var st ReevalStats
	var after int64
	var scratch []byte
	for {
		batch, err := s.reevalPage(ctx, h.digest, after)
		if err != nil {
			return st, err
		}
		if len(batch) == 0 {
			break
		}
		after = batch[len(batch)-1].id
		var same []any
		var diff []reevalChange
		for _, r := range batch {
			v, err := mm.computePacked(ctx, r.pkgs)
			if err != nil {
				if ctx.Err() != nil {
					return st, ctx.Err()
				}
				log.Warn("report without readable inputs; scan it again to re-evaluate it", "report", r.uuid, "error", err)
				continue
			}
			now, err := json.Marshal(v.Findings)
			if err != nil {
				return st, err
			}
			var eq bool
			eq, scratch = sameFindings(r.findings, now, scratch)
			if eq && v.Severity == r.severity && v.sameSummary(r.summary) {
				same = append(same, r.id)
			} else {
				diff = append(diff, reevalChange{r: r, v: v, findings: zenc.EncodeAll(now, nil)})
			}
		}
		if err := s.reevalStore(ctx, h.digest, same, diff); err != nil {
			return st, err
		}
		st.Reports += len(batch)
		st.Changed += len(diff)
	}
	st.Packages = len(mm.known)
	st.Took = time.Since(start)
	return st, nil
}

// reevalStore writes one page's verdicts.
func (s *Service) reevalStore(ctx context.Context, dbDigest string, same []any, diff []reevalChange) error {
	return s.d.DB.Tx(ctx, "re-evaluate reports", func(tx *sqldb.Tx) error {
		for len(same) > 0 {
			n := min(len(same), 500) // within every database's limit of parameters
			args := append([]any{dbDigest}, same[:n]...)
			if _, err := tx.Exec(ctx, `UPDATE scan_reports SET db_digest = ? WHERE id IN (?`+strings.Repeat(", ?", n-1)+`)`, args...); err != nil {
				return err
			}
			same = same[n:]
		}
		for _, c := range diff {
			summary, _ := json.Marshal(c.v.Summary)
			res, err := tx.Exec(ctx, `UPDATE scan_reports SET db_digest = ?, severity = ?, summary = ?, findings = ? WHERE id = ? AND uuid = ?`,
				dbDigest, c.v.Severity, string(summary), c.findings, c.r.id, c.r.uuid)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				if err := s.publishChanged(ctx, tx, c.r.uuid, c.r.digest); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (s *Service) reevalPage(ctx context.Context, dbDigest string, after int64) ([]reevalRow, error) {
	rows, err := s.d.DB.Query(ctx, `SELECT id, uuid, digest, repository, severity, summary, findings, packages FROM scan_reports
		WHERE registration = ? AND scan_type = ? AND status = ? AND id > ? AND db_digest <> ? ORDER BY id LIMIT ?`,
		builtinUUID, scanapi.TypeVulnerability, scanapi.StatusSuccess, after, dbDigest, reevalBatch)
	if err != nil {
		return nil, s.d.DB.Wrap("reports", err)
	}
	defer rows.Close()
	var out []reevalRow
	for rows.Next() {
		var r reevalRow
		if err := rows.Scan(&r.id, &r.uuid, &r.digest, &r.repo, &r.severity, &r.summary, &r.findings, &r.pkgs); err != nil {
			return nil, s.d.DB.Wrap("reports", err)
		}
		out = append(out, r)
	}
	return out, s.d.DB.Wrap("reports", rows.Err())
}

// publishChanged tells every repository holding the artifact that its
// verdict changed.
func (s *Service) publishChanged(ctx context.Context, tx *sqldb.Tx, uuid, digest string) error {
	cur, err := scanReport(tx.QueryRow(ctx, `SELECT `+reportCols+` FROM scan_reports WHERE uuid = ?`, uuid))
	if err != nil {
		return err
	}
	arts, err := s.d.Artifacts.ByDigest(ctx, digest)
	if err != nil {
		return err
	}
	sc := s.scanner()
	sum := s.summary(cur, scanapi.StatusSuccess, &sc)
	for _, a := range arts {
		if err := s.publishArtifact(ctx, tx, a, webhook.ScanningCompleted, "lading", sum); err != nil {
			return err
		}
	}
	return nil
}
