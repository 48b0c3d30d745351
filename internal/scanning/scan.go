package scanning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/match"
	"github.com/lading-dev/lading/internal/scan"
	"github.com/lading-dev/lading/internal/scanning/adapter"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/webhook"
)

// target is an artifact to scan: a manifest of a repository, with an
// index's children.
type target struct {
	Repository string
	Digest     string
	MediaType  string
	Children   []string
}

// scannable reports whether a manifest is an image (or an index of
// images) a scanner reads; artifacts of other types (SBOMs, signatures,
// charts) are not scanned.
func scannable(mediaType, artifactType, configType string) bool {
	if artifactType != "" {
		return false
	}
	switch mediaType {
	case "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json":
		return true
	case adapter.MimeOCIManifest, adapter.MimeDockerManifest:
		return configType == "" || configType == "application/vnd.oci.image.config.v1+json" || configType == "application/vnd.docker.container.image.v1+json"
	}
	return false
}

func isIndex(mediaType string) bool {
	return mediaType == "application/vnd.oci.image.index.v1+json" || mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// scanArgs are an IMAGE_SCAN job's arguments.
type scanArgs struct {
	Report   string `json:"report"`
	Operator string `json:"operator,omitempty"`
}

// queued says how a scan was asked for.
type queued struct {
	// execution, when set, makes the scan a task of a scan of all.
	execution int64
	operator  string
	// again: queue even when a scan of the same is pending or running
	// (its report is then replaced).
	again bool
}

// errQueued is returned when a scan of the artifact is already queued.
var errQueued = errors.New("a scan of this artifact is already pending or running")

// queueScan (re)creates, in tx, the report of t for scanType with the
// scanner reg as Pending under a new uuid, and queues its job; an index's
// report stands for its children's, each queued.
func (s *Service) queueScan(ctx context.Context, tx *sqldb.Tx, t target, scanType string, reg registration, q queued) error {
	if !q.again {
		busy, err := s.busy(ctx, tx, t.Digest, reg.UUID, scanType)
		if err != nil {
			return err
		}
		if busy {
			return errQueued
		}
	}
	children, _ := json.Marshal(t.Children)
	if len(t.Children) == 0 {
		children = nil
	}
	uuid := newUUID()
	mime := adapter.MimeVulnReport
	if scanType == scanapi.TypeSBOM {
		mime = adapter.MimeSBOMReport
	}
	now := sqldb.Nanos(s.d.DB.Now())
	_, err := tx.Exec(ctx, `INSERT INTO scan_reports (uuid, digest, registration, scan_type, mime_type, repository, media_type, status, job_id, start_time, end_time, children)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0, ?)
		ON CONFLICT (digest, registration, scan_type) DO UPDATE SET uuid = excluded.uuid, mime_type = excluded.mime_type, repository = excluded.repository,
			media_type = excluded.media_type, status = excluded.status, job_id = 0, start_time = excluded.start_time, end_time = 0, children = excluded.children`,
		uuid, t.Digest, reg.UUID, scanType, mime, t.Repository, t.MediaType, scanapi.StatusPending, now, string(children))
	if err != nil {
		return err
	}
	if isIndex(t.MediaType) {
		for _, c := range t.Children {
			ct := target{Repository: t.Repository, Digest: c, MediaType: adapter.MimeOCIManifest}
			if err := s.queueScan(ctx, tx, ct, scanType, reg, queued{execution: q.execution, operator: q.operator, again: true}); err != nil {
				return err
			}
		}
		return nil
	}
	req := jobs.Request{Kind: KindScan, Args: scanArgs{Report: uuid, Operator: q.operator}}
	var job int64
	if q.execution != 0 {
		req.Key = fmt.Sprintf("scanall:%d:%s:%s", q.execution, scanType, t.Digest)
		task, err := s.d.Tasks.AddTask(ctx, tx, q.execution, req, map[string]any{"report_uuid": uuid, "artifact_digest": t.Digest, "repository_name": t.Repository})
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT job_id FROM tasks WHERE id = ?`, task).Scan(&job); err != nil {
			return err
		}
	} else {
		req.Key, req.ReleaseKey = "scan:"+uuid, true
		if job, _, err = s.d.Jobs.EnqueueTx(ctx, tx, req); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `UPDATE scan_reports SET job_id = ? WHERE uuid = ?`, job, uuid)
	return err
}

// busy reports whether a scan of digest is pending or running.
func (s *Service) busy(ctx context.Context, tx *sqldb.Tx, digest, reg, scanType string) (bool, error) {
	r, err := scanReport(tx.QueryRow(ctx, `SELECT `+reportCols+` FROM scan_reports WHERE digest = ? AND registration = ? AND scan_type = ?`, digest, reg, scanType))
	if err != nil {
		return false, nil // none
	}
	if r.Status != scanapi.StatusPending && r.Status != scanapi.StatusRunning {
		return false, nil
	}
	if isIndex(r.MediaType) {
		return false, nil
	}
	i, err := s.d.Jobs.Get(ctx, r.JobID)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !jobs.Finished(i.State), nil
}

// ManifestPut queues a scan of a pushed image when its project scans on
// push (metadata auto_scan), inside the metadata store's transaction: the
// scan is queued if and only if the push commits.
func (s *Service) ManifestPut(ctx context.Context, tx *sqldb.Tx, repo, dgst, mediaType string, body []byte) error {
	var m struct {
		ArtifactType string `json:"artifactType"`
		Config       *struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
		Subject *struct{} `json:"subject"`
	}
	if json.Unmarshal(body, &m) != nil || m.Subject != nil {
		return nil
	}
	cfg := ""
	if m.Config != nil {
		cfg = m.Config.MediaType
	}
	if !scannable(mediaType, m.ArtifactType, cfg) {
		return nil
	}
	name, _, ok := strings.Cut(repo, "/")
	if !ok {
		return nil
	}
	p, err := s.d.Projects.Resolve(ctx, projectRef(name))
	if err != nil {
		return nil // not in a project: no policy
	}
	md, err := s.metadata(ctx, p.ID)
	if err != nil {
		return err
	}
	if md["auto_scan"] != "true" && md["auto_sbom_generation"] != "true" {
		return nil
	}
	reg, err := s.scannerOf(ctx, tx, p.ID)
	if err != nil {
		return err
	}
	t := target{Repository: repo, Digest: dgst, MediaType: mediaType}
	for _, c := range m.Manifests {
		t.Children = append(t.Children, c.Digest)
	}
	op := actor.From(ctx).Name
	if op == "" {
		op = "auto"
	}
	for _, typ := range []string{scanapi.TypeVulnerability, scanapi.TypeSBOM} {
		key := map[string]string{scanapi.TypeVulnerability: "auto_scan", scanapi.TypeSBOM: "auto_sbom_generation"}[typ]
		if md[key] != "true" {
			continue
		}
		if err := s.queueScan(ctx, tx, t, typ, reg, queued{operator: op, again: true}); err != nil {
			return err
		}
	}
	return nil
}

// runScan runs one IMAGE_SCAN job.
func (s *Service) runScan(ctx context.Context, j *jobs.Job, a scanArgs) error {
	began := time.Now()
	tm := newTiming()
	ctx = withTiming(ctx, tm)
	r, err := s.reportByUUID(ctx, a.Report)
	if errdefs.IsNotFound(err) {
		j.Log.Info("the report was replaced by a newer scan; nothing to do", "report", a.Report)
		return nil
	}
	if err != nil {
		return err
	}
	if r.JobID != j.ID && r.JobID != 0 {
		j.Log.Info("the report belongs to another scan; nothing to do", "report", a.Report)
		return nil
	}
	if !r.Start.IsZero() && r.Start.Before(began) {
		// The report was (re)created Pending when the scan was queued.
		tm.add("pickup", began.Sub(r.Start))
	}
	t0 := time.Now()
	if _, err := s.d.DB.Exec(ctx, `UPDATE scan_reports SET status = ?, start_time = ? WHERE uuid = ?`, scanapi.StatusRunning, sqldb.Nanos(s.d.DB.Now()), r.UUID); err != nil {
		return err
	}
	tm.since("mark running", t0)
	defer func() {
		tm.since("job", began)
		j.Log.Info("timing: " + tm.String())
	}()
	j.Log.Info("scanning "+r.Repository+"@"+r.Digest, "type", r.ScanType, "report", r.UUID)
	reg, err := s.registration(ctx, r.Registration)
	if err != nil {
		return s.failed(ctx, j, r, a.Operator, err)
	}
	switch {
	case r.ScanType == scanapi.TypeSBOM:
		err = s.generateSBOM(ctx, j, r, reg)
	case reg.builtin():
		err = s.scanBuiltin(ctx, j, r, a.Operator)
	default:
		err = s.scanExternal(ctx, j, r, reg, a.Operator)
	}
	if err != nil {
		return s.failed(ctx, j, r, a.Operator, err)
	}
	return nil
}

// failed ends a scan that went wrong: stopped, failed for good (the
// reason in the job's log, SCANNING_FAILED), or to be retried.
func (s *Service) failed(ctx context.Context, j *jobs.Job, r reportRow, operator string, err error) error {
	ctx2 := context.WithoutCancel(ctx)
	if ctx.Err() != nil {
		if i, gerr := s.d.Jobs.Get(ctx2, j.ID); gerr == nil && i.Cancel {
			j.Log.Info("scan stopped")
			s.finish(ctx2, r, scanapi.StatusStopped, operator, webhook.ScanningStopped, nil)
		}
		return ctx.Err()
	}
	retry := errdefs.IsUnavailable(err) && j.Attempt < j.MaxAttempts
	if retry {
		j.Log.Warn("scan failed; it will be tried again", "error", err)
		return err
	}
	j.Log.Error("scan failed", "error", err)
	s.finish(ctx2, r, scanapi.StatusError, operator, webhook.ScanningFailed, nil)
	return jobs.Permanent(err)
}

// result is what a finished scan stores.
type result struct {
	inv      *analyze.Inventory
	pkgs     []match.Package
	v        verdict
	dbDigest string
	report   []byte // an external scanner's report
	acc      string // an SBOM accessory's digest
	// layers are the analysis's new layer cache entries, stored with
	// the report.
	layers *layerWrites
}

// finish records a scan's end and publishes its webhook event, in one
// transaction.
func (s *Service) finish(ctx context.Context, r reportRow, status, operator, event string, res *result) error {
	err := s.d.DB.Tx(ctx, "scan "+status, func(tx *sqldb.Tx) error {
		now := sqldb.Nanos(s.d.DB.Now())
		if res == nil {
			_, err := tx.Exec(ctx, `UPDATE scan_reports SET status = ?, end_time = ? WHERE uuid = ?`, status, now, r.UUID)
			if err != nil {
				return err
			}
		} else {
			if err := s.storeResult(ctx, tx, r.UUID, status, now, res); err != nil {
				return err
			}
		}
		return s.publishScan(ctx, tx, r, event, operator)
	})
	if err != nil {
		s.log.Error("recording the end of a scan", "report", r.UUID, "error", err)
	}
	return err
}

func (s *Service) storeResult(ctx context.Context, tx *sqldb.Tx, uuid, status string, now int64, res *result) error {
	summary, _ := json.Marshal(res.v.Summary)
	findings, err := pack(res.v.Findings)
	if err != nil {
		return err
	}
	var pkgs, inv []byte
	if res.inv != nil {
		if pkgs, err = pack(res.pkgs); err != nil {
			return err
		}
		if inv, err = pack(res.inv); err != nil {
			return err
		}
	}
	var rep []byte
	if res.report != nil {
		rep = zenc.EncodeAll(res.report, nil)
	}
	_, err = tx.Exec(ctx, `UPDATE scan_reports SET status = ?, end_time = ?, db_digest = ?, severity = ?, summary = ?, findings = ?, packages = ?, inventory = ?, report = ?, accessory = ?
		WHERE uuid = ?`, status, now, res.dbDigest, res.v.Severity, string(summary), findings, pkgs, inv, rep, res.acc, uuid)
	if err != nil {
		return err
	}
	return res.layers.store(ctx, tx)
}

// scanBuiltin scans with lading's own scanner.
func (s *Service) scanBuiltin(ctx context.Context, j *jobs.Job, r reportRow, operator string) error {
	res, err := s.analyzeReport(ctx, j, r)
	if err != nil {
		return err
	}
	j.Log.Info(fmt.Sprintf("%d packages, %d vulnerabilities, highest severity %s", len(res.pkgs), res.v.Summary.Total, rankName(res.v.Severity)),
		"database", res.dbDigest)
	defer timingOf(ctx).since("report store", time.Now())
	return s.finish(context.WithoutCancel(ctx), r, scanapi.StatusSuccess, operator, webhook.ScanningCompleted, res)
}

// analyzeReport analyzes the artifact of r and matches its packages.
func (s *Service) analyzeReport(ctx context.Context, j *jobs.Job, r reportRow) (*result, error) {
	tm := timingOf(ctx)
	t0 := time.Now()
	inv, writes, err := s.inventory(ctx, j, r.Repository, r.Digest)
	if err != nil {
		return nil, err
	}
	tm.since("analysis", t0)
	h, err := s.keeper.acquire()
	if err != nil {
		writes.flush(context.WithoutCancel(ctx), j.Log)
		return nil, err
	}
	defer h.release()
	t0 = time.Now()
	res := &result{inv: inv, pkgs: scan.MatchInputs(inv), dbDigest: h.digest, layers: writes}
	if res.v, err = newMemo(match.New(h.db, s.log)).compute(ctx, res.pkgs); err != nil {
		writes.flush(context.WithoutCancel(ctx), j.Log)
		return nil, err
	}
	tm.since("matching", t0)
	return res, nil
}

// inventory analyzes the image dgst of repo; the new layer cache
// entries are stored when its caller stores the writes.
func (s *Service) inventory(ctx context.Context, j *jobs.Job, repo, dgst string) (*analyze.Inventory, *layerWrites, error) {
	t0 := time.Now()
	m, err := s.d.Content.Manifest(ctx, repo, dgst)
	if err != nil {
		return nil, nil, err
	}
	timingOf(ctx).since("manifest", t0)
	if isIndex(m.MediaType) {
		return nil, nil, errdefs.InvalidArgument(fmt.Errorf("%s@%s is an index: its images are scanned each", repo, dgst))
	}
	img, err := s.openImage(ctx, repo, m)
	if err != nil {
		return nil, nil, err
	}
	return s.analyzeImage(ctx, img, repo+"@"+dgst, j.Log)
}
