package project

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Quota is a project's storage quota.
type Quota struct {
	ProjectID   int64
	ProjectName string
	OwnerName   string
	// Hard is the limit in bytes, -1 for none.
	Hard    int64
	Used    int64
	Created time.Time
	Updated time.Time
}

// ExceededError refuses a push that would take a project over its quota.
type ExceededError struct {
	Project             string
	Used, Limit, Needed int64
}

func (e *ExceededError) Error() string {
	return fmt.Sprintf("quota exceeded in project %s: adding %s of storage would take the usage of %s over the limit of %s",
		e.Project, bytesText(e.Needed), bytesText(e.Used), bytesText(e.Limit))
}

// Unwrap makes an ExceededError of class errdefs.ErrDenied.
func (e *ExceededError) Unwrap() error { return errdefs.ErrDenied }

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB (%d bytes)", float64(n)/(1<<30), n)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB (%d bytes)", float64(n)/(1<<10), n)
	}
	return fmt.Sprintf("%d bytes", n)
}

func checkLimit(n int64) error {
	if n < -1 || n == 0 {
		return errdefs.InvalidArgument(fmt.Errorf("storage limit %d: want -1 (unlimited) or a positive number of bytes", n))
	}
	return nil
}

const quotaCols = `q.project_id, p.name, COALESCE(u.username, ''), q.hard, q.used, q.created, q.updated`
const quotaFrom = ` FROM quotas q JOIN projects p ON p.id = q.project_id LEFT JOIN users u ON u.id = p.owner_id`

func scanQuota(r sqldb.Row) (Quota, error) {
	var q Quota
	var created, updated int64
	err := r.Scan(&q.ProjectID, &q.ProjectName, &q.OwnerName, &q.Hard, &q.Used, &created, &updated)
	q.Created, q.Updated = sqldb.Time(created), sqldb.Time(updated)
	return q, err
}

func (s *Service) quota(ctx context.Context, project int64) (Quota, error) {
	q, err := scanQuota(s.db.QueryRow(ctx, `SELECT `+quotaCols+quotaFrom+` WHERE q.project_id = ?`, project))
	if errors.Is(err, sql.ErrNoRows) {
		return Quota{}, errdefs.NotFound(fmt.Errorf("quota %d not found", project))
	}
	return q, s.db.Wrap("quota", err)
}

// Quota returns a quota by id (the project's id); sysadmins, as in
// Harbor.
func (s *Service) Quota(ctx context.Context, who access.Subject, id int64) (Quota, error) {
	if err := s.access.Require(ctx, who, access.Read, access.Quota, 0); err != nil {
		return Quota{}, err
	}
	return s.quota(ctx, id)
}

// QuotaFields are the keys a quota listing may filter and sort by.
var QuotaFields = query.Fields{
	"reference_id":  {Column: "q.project_id", Kind: query.Int},
	"hard.storage":  {Column: "q.hard", Kind: query.Int},
	"used.storage":  {Column: "q.used", Kind: query.Int},
	"creation_time": {Column: "q.created", Kind: query.Time},
	"update_time":   {Column: "q.updated", Kind: query.Time},
}

// Quotas lists quotas (sysadmins).
func (s *Service) Quotas(ctx context.Context, who access.Subject, q query.Query, page query.Page) ([]Quota, int64, error) {
	if err := s.access.Require(ctx, who, access.List, access.Quota, 0); err != nil {
		return nil, 0, err
	}
	c, err := q.SQL(s.db.Dialect(), QuotaFields, "q.project_id ASC", "q.project_id")
	if err != nil {
		return nil, 0, err
	}
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*)`+quotaFrom+c.WhereSQL(), c.Args...).Scan(&total); err != nil {
		return nil, 0, s.db.Wrap("quotas", err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+quotaCols+quotaFrom+c.WhereSQL()+` ORDER BY `+c.OrderBy+page.LimitSQL(), c.Args...)
	if err != nil {
		return nil, 0, s.db.Wrap("quotas", err)
	}
	defer rows.Close()
	out := []Quota{}
	for rows.Next() {
		q, err := scanQuota(rows)
		if err != nil {
			return nil, 0, s.db.Wrap("quotas", err)
		}
		out = append(out, q)
	}
	return out, total, s.db.Wrap("quotas", rows.Err())
}

// SetQuota changes a quota's limit (sysadmins). A limit below the usage is
// allowed: further pushes are refused until space is freed.
func (s *Service) SetQuota(ctx context.Context, who access.Subject, id int64, hard int64) error {
	if err := s.access.Require(ctx, who, access.Update, access.Quota, 0); err != nil {
		return err
	}
	if err := checkLimit(hard); err != nil {
		return err
	}
	return s.db.Tx(ctx, "update quota", func(tx *sqldb.Tx) error {
		var name string
		err := tx.QueryRow(ctx, `SELECT p.name FROM quotas q JOIN projects p ON p.id = q.project_id WHERE q.project_id = ?`, id).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return errdefs.NotFound(fmt.Errorf("quota %d not found", id))
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE quotas SET hard = ?, updated = ? WHERE project_id = ?`, hard, sqldb.Nanos(s.db.Now()), id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: id, Operation: "update", ResourceType: "quota", Resource: name,
			Description: fmt.Sprintf("set the storage quota of project %s to %d", name, hard)})
	})
}

// Linked accounts for a blob linked into a repository, inside the
// transaction that links it: the first link of a digest in a project
// adds its size to the project's usage, or fails with an *ExceededError
// (and so fails the transaction) when that would exceed the quota.
// Repositories outside any project are not counted.
func (s *Service) Linked(ctx context.Context, tx *sqldb.Tx, repo, dgst string, size int64) error {
	id, ok, err := ProjectOf(ctx, tx, repo)
	if err != nil || !ok {
		return err
	}
	var refs int64
	if err := tx.QueryRow(ctx, `INSERT INTO project_blobs (project_id, digest, size, refs) VALUES (?, ?, ?, 1)
		ON CONFLICT (project_id, digest) DO UPDATE SET refs = project_blobs.refs + 1 RETURNING refs`, id, dgst, size).Scan(&refs); err != nil {
		return err
	}
	if refs > 1 || size == 0 {
		return nil
	}
	st, err := s.settings.Get(ctx)
	if err != nil {
		return err
	}
	now := sqldb.Nanos(s.db.Now())
	cond := ` AND (hard < 0 OR used + ? <= hard)`
	args := []any{size, now, id, size}
	if !st.QuotaPerProjectEnable {
		cond, args = "", args[:3]
	}
	res, err := tx.Exec(ctx, `UPDATE quotas SET used = used + ?, updated = ? WHERE project_id = ?`+cond, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	var used, hard int64
	if err := tx.QueryRow(ctx, `SELECT used, hard FROM quotas WHERE project_id = ?`, id).Scan(&used, &hard); errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	name, _, _ := strings.Cut(repo, "/")
	return &ExceededError{Project: name, Used: used, Limit: hard, Needed: size}
}

// QuotaAllows is the early refusal of a push: whether size more bytes
// fit in the quota of repo's project (size < 0: unknown, allowed). The
// exact accounting is Linked's.
func (s *Service) QuotaAllows(ctx context.Context, repo string, size int64) error {
	if size <= 0 {
		return nil
	}
	name, _, ok := strings.Cut(repo, "/")
	if !ok {
		return nil
	}
	st, err := s.settings.Get(ctx)
	if err != nil || !st.QuotaPerProjectEnable {
		return err
	}
	var used, hard int64
	err = s.db.QueryRow(ctx, `SELECT q.used, q.hard FROM quotas q JOIN projects p ON p.id = q.project_id WHERE p.name = ?`, name).Scan(&used, &hard)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return s.db.Wrap("quota", err)
	}
	if hard >= 0 && used+size > hard {
		return &ExceededError{Project: name, Used: used, Limit: hard, Needed: size}
	}
	return nil
}

// Unlinked accounts for a blob unlinked from a repository (deleted, or
// garbage collected), inside that transaction: the last link of a digest
// in a project subtracts its size.
func (s *Service) Unlinked(ctx context.Context, tx *sqldb.Tx, repo, dgst string) error {
	id, ok, err := ProjectOf(ctx, tx, repo)
	if err != nil || !ok {
		return err
	}
	var refs, size int64
	err = tx.QueryRow(ctx, `UPDATE project_blobs SET refs = refs - 1 WHERE project_id = ? AND digest = ? RETURNING refs, size`, id, dgst).Scan(&refs, &size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil || refs > 0 {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM project_blobs WHERE project_id = ? AND digest = ?`, id, dgst); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE quotas SET used = CASE WHEN used > ? THEN used - ? ELSE 0 END, updated = ? WHERE project_id = ?`, size, size, sqldb.Nanos(s.db.Now()), id)
	return err
}

// Links lists, inside tx, every blob link of the registry's metadata:
// the repository, the digest and the blob's size.
type Links func(ctx context.Context, tx *sqldb.Tx, fn func(repo, dgst string, size int64) error) error

// Recount rebuilds every project's blob counts and usage from the links,
// in one transaction (after garbage collection, or to repair).
func (s *Service) Recount(ctx context.Context, links Links) error {
	return s.db.Tx(ctx, "recount quotas", func(tx *sqldb.Tx) error {
		ids := map[string]int64{}
		rows, err := tx.Query(ctx, `SELECT id, name FROM projects`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return err
			}
			ids[name] = id
		}
		rows.Close()
		type key struct {
			project int64
			dgst    string
		}
		refs := map[key]int64{}
		sizes := map[key]int64{}
		err = links(ctx, tx, func(repo, dgst string, size int64) error {
			name, _, ok := strings.Cut(repo, "/")
			id, known := ids[name]
			if !ok || !known {
				return nil
			}
			k := key{id, dgst}
			refs[k]++
			sizes[k] = size
			return nil
		})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM project_blobs`); err != nil {
			return err
		}
		used := map[int64]int64{}
		for k, n := range refs {
			if _, err := tx.Exec(ctx, `INSERT INTO project_blobs (project_id, digest, size, refs) VALUES (?, ?, ?, ?)`, k.project, k.dgst, sizes[k], n); err != nil {
				return err
			}
			used[k.project] += sizes[k]
		}
		now := sqldb.Nanos(s.db.Now())
		for _, id := range ids {
			if _, err := tx.Exec(ctx, `UPDATE quotas SET used = ?, updated = ? WHERE project_id = ? AND used <> ?`, used[id], now, id, used[id]); err != nil {
				return err
			}
		}
		return nil
	})
}
