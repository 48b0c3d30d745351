package meta

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Dialect is what differs between the SQL databases the store runs on.
type Dialect = sqldb.Dialect

// SQL is a Store on the metadata database (package sqldb), whose tables
// Migrations creates.
type SQL struct {
	db    *sqldb.DB
	d     Dialect
	locks CollectionLocks
	clock atomic.Pointer[func() time.Time] // nil: time.Now
	hooks Hooks
	owned bool
}

var _ Store = (*SQL)(nil)

// Option configures the store.
type Option func(*SQL)

// WithHooks tells hooks, inside each transaction, of the changes others
// account for.
func WithHooks(h Hooks) Option { return func(s *SQL) { s.hooks = h } }

// WithCollectionLocks sets the database's collection locks (see Lock);
// without, blobs left deleting by a collector are taken over only after a
// timeout.
func WithCollectionLocks(l CollectionLocks) Option {
	return func(s *SQL) {
		if l != nil {
			s.locks = l
		}
	}
}

// OwnDB makes Close close the database too.
func OwnDB() Option { return func(s *SQL) { s.owned = true } }

// New returns the store over db, which Migrations must have brought up to
// date.
func New(db *sqldb.DB, opts ...Option) *SQL {
	s := &SQL{db: db, d: db.Dialect(), locks: noLocks{}, hooks: noHooks{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Migrations create the registry's tables. The first is idempotent, so a
// database created before migrations existed adopts it.
var Migrations = []sqldb.Migration{{Owner: "registry/meta", Name: "repositories, blobs, links, manifests, references, tags, uploads", SQL: []string{
	`CREATE TABLE IF NOT EXISTS repositories (
		name {{text}} PRIMARY KEY,
		created {{int}} NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS blobs (
		digest {{text}} PRIMARY KEY,
		size {{int}} NOT NULL,
		state TEXT NOT NULL,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL,
		claimed {{int}} NOT NULL DEFAULT 0,
		claims {{int}} NOT NULL DEFAULT 0,
		collector {{int}} NOT NULL DEFAULT 0)`,
	`CREATE TABLE IF NOT EXISTS repo_blobs (
		repo {{text}} NOT NULL,
		digest {{text}} NOT NULL,
		linked {{int}} NOT NULL,
		PRIMARY KEY (repo, digest))`,
	`CREATE INDEX IF NOT EXISTS repo_blobs_digest ON repo_blobs (digest)`,
	`CREATE TABLE IF NOT EXISTS manifests (
		repo {{text}} NOT NULL,
		digest {{text}} NOT NULL,
		media_type TEXT NOT NULL,
		size {{int}} NOT NULL,
		artifact_type TEXT NOT NULL,
		subject {{text}} NOT NULL,
		annotations TEXT NOT NULL,
		created {{int}} NOT NULL,
		PRIMARY KEY (repo, digest))`,
	`CREATE INDEX IF NOT EXISTS manifests_digest ON manifests (digest)`,
	`CREATE INDEX IF NOT EXISTS manifests_subject ON manifests (repo, subject)`,
	`CREATE TABLE IF NOT EXISTS manifest_refs (
		repo {{text}} NOT NULL,
		manifest {{text}} NOT NULL,
		child {{text}} NOT NULL,
		PRIMARY KEY (repo, manifest, child))`,
	`CREATE INDEX IF NOT EXISTS manifest_refs_child ON manifest_refs (child, repo)`,
	`CREATE TABLE IF NOT EXISTS tags (
		repo {{text}} NOT NULL,
		tag {{text}} NOT NULL,
		digest {{text}} NOT NULL,
		updated {{int}} NOT NULL,
		PRIMARY KEY (repo, tag))`,
	`CREATE INDEX IF NOT EXISTS tags_digest ON tags (repo, digest)`,
	`CREATE TABLE IF NOT EXISTS uploads (
		id {{text}} PRIMARY KEY,
		repo {{text}} NOT NULL,
		size {{int}} NOT NULL,
		chunks TEXT NOT NULL,
		hash_state {{bytes}},
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS uploads_updated ON uploads (updated)`,
}, Func: func(ctx context.Context, tx *sqldb.Tx) error {
	// A database made before collection locks lacks blobs.collector.
	return sqldb.AddColumn(ctx, tx, "blobs", "collector", "{{int}} NOT NULL DEFAULT 0")
}}}

// SetClock replaces the store's clock (tests of the grace window).
func (s *SQL) SetClock(now func() time.Time) { s.clock.Store(&now) }

// now is the store's clock: time.Now unless a test set another.
func (s *SQL) now() time.Time {
	if c := s.clock.Load(); c != nil {
		return (*c)()
	}
	return time.Now()
}

// DB returns the database the store runs on.
func (s *SQL) DB() *sqldb.DB { return s.db }

// Close releases the database when the store owns it.
func (s *SQL) Close() error {
	if s.owned {
		return s.db.Close()
	}
	return nil
}

func (s *SQL) wrap(what string, err error) error { return s.db.Wrap(what, err) }

// tx runs fn in a transaction, retrying it when the database asks for that.
func (s *SQL) tx(ctx context.Context, what string, fn func(tx *sqldb.Tx) error) error {
	return s.db.Tx(ctx, what, fn)
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n) }

func (s *SQL) ensureRepo(ctx context.Context, tx *sqldb.Tx, repo string) error {
	_, err := tx.Exec(ctx, (`INSERT INTO repositories (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), repo, nanos(s.now()))
	return err
}

// link links dgst into repo (creating the repository), refreshing the
// link's time; a new link is told to the hooks.
func (s *SQL) link(ctx context.Context, tx *sqldb.Tx, repo, dgst string, size, now int64) error {
	if err := s.ensureRepo(ctx, tx, repo); err != nil {
		return err
	}
	res, err := tx.Exec(ctx, `INSERT INTO repo_blobs (repo, digest, linked) VALUES (?, ?, ?) ON CONFLICT (repo, digest) DO NOTHING`, repo, dgst, now)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return s.hooks.BlobLinked(ctx, tx, repo, dgst, size)
	}
	_, err = tx.Exec(ctx, `UPDATE repo_blobs SET linked = ? WHERE repo = ? AND digest = ?`, now, repo, dgst)
	return err
}

// ClaimBlob implements Store.
func (s *SQL) ClaimBlob(ctx context.Context, dgst string) (bool, error) {
	present := false
	err := s.tx(ctx, "claim blob "+dgst, func(tx *sqldb.Tx) error {
		var err error
		present, err = s.claim(ctx, tx, dgst)
		return err
	})
	return present, err
}

// claim is ClaimBlob inside a transaction.
func (s *SQL) claim(ctx context.Context, tx *sqldb.Tx, dgst string) (bool, error) {
	now := nanos(s.now())
	var state string
	var updated, collector int64
	err := tx.QueryRow(ctx, (`SELECT state, updated, collector FROM blobs WHERE digest = ?`+s.d.ForUpdate), dgst).Scan(&state, &updated, &collector)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = tx.Exec(ctx, (`INSERT INTO blobs (digest, size, state, created, updated, claimed, claims) VALUES (?, 0, ?, ?, ?, ?, 1)`), dgst, StatePending, now, now, now)
		return false, err
	}
	if err != nil {
		return false, err
	}
	if state == StateDeleting {
		alive, err := s.collecting(ctx, tx, collector, updated, now)
		if err != nil {
			return false, err
		}
		if alive {
			return false, errdefs.Unavailable(fmt.Errorf("blob %s is being garbage collected; retry", dgst))
		}
	}
	// present and pending rows are refreshed and their claims counted
	// (the collector leaves claimed rows alone until every claim is
	// committed, whatever its grace window); a deleting row whose
	// collector died is taken over.
	newState := state
	if state == StateDeleting {
		newState = StatePending
	}
	_, err = tx.Exec(ctx, (`UPDATE blobs SET state = ?, updated = ?, claimed = ?, claims = claims + 1 WHERE digest = ?`), newState, now, now, dgst)
	return err == nil && state == StatePresent, err
}

// CloseUpload implements Store.
func (s *SQL) CloseUpload(ctx context.Context, repo, id string, size int64, dgst string) (bool, error) {
	present := false
	err := s.tx(ctx, "close upload "+id, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, (`DELETE FROM uploads WHERE id = ? AND repo = ? AND size = ?`), id, repo, size)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var one int
			err := tx.QueryRow(ctx, (`SELECT 1 FROM uploads WHERE id = ? AND repo = ?`), id, repo).Scan(&one)
			if err == nil {
				return errdefs.Conflict(fmt.Errorf("upload %s moved past offset %d", id, size))
			}
			if errors.Is(err, sql.ErrNoRows) {
				return errdefs.NotFound(fmt.Errorf("upload %s in %s", id, repo))
			}
			return err
		}
		present, err = s.claim(ctx, tx, dgst)
		return err
	})
	return present, err
}

// collecting reports whether the collection that marked a blob deleting
// (collector, at updated) may still be deleting it: while its lock is held,
// or, for a collection without a lock (0) or whose lock this process cannot
// test (a lock file it may not open), for deletingTimeout.
func (s *SQL) collecting(ctx context.Context, tx *sqldb.Tx, collector, updated, now int64) (bool, error) {
	if collector != 0 {
		held, err := s.locks.Held(ctx, tx.SQL(), collector)
		if err == nil {
			return held, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
	return now-updated < int64(deletingTimeout), nil
}

// deletingTimeout is how long a blob marked by a collection without a lock
// may stay deleting before a claim takes it over from a collector that must
// have died.
const deletingTimeout = 2 * time.Minute

// CommitBlob implements Store.
func (s *SQL) CommitBlob(ctx context.Context, repo, dgst string, size int64) error {
	return s.tx(ctx, "commit blob "+dgst, func(tx *sqldb.Tx) error {
		now := nanos(s.now())
		var state string
		err := tx.QueryRow(ctx, (`SELECT state FROM blobs WHERE digest = ?` + s.d.ForUpdate), dgst).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) || err == nil && state == StateDeleting {
			return errdefs.Unavailable(fmt.Errorf("blob %s was garbage collected while it was written; retry", dgst))
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, (`UPDATE blobs SET state = ?, size = ?, updated = ?, claims = CASE WHEN claims > 0 THEN claims - 1 ELSE 0 END WHERE digest = ?`), StatePresent, size, now, dgst); err != nil {
			return err
		}
		if repo == "" {
			return nil
		}
		return s.link(ctx, tx, repo, dgst, size, now)
	})
}

func scanBlob(row interface{ Scan(...any) error }) (Blob, error) {
	var b Blob
	var updated int64
	err := row.Scan(&b.Digest, &b.Size, &b.State, &updated)
	b.Updated = fromNanos(updated)
	return b, err
}

// Blob implements Store.
func (s *SQL) Blob(ctx context.Context, repo, dgst string) (Blob, error) {
	b, err := scanBlob(s.db.QueryRow(ctx, (`SELECT b.digest, b.size, b.state, b.updated FROM blobs b JOIN repo_blobs l ON l.digest = b.digest WHERE l.repo = ? AND b.digest = ? AND b.state = ?`), repo, dgst, StatePresent))
	if errors.Is(err, sql.ErrNoRows) {
		return Blob{}, errdefs.NotFound(fmt.Errorf("blob %s in %s", dgst, repo))
	}
	return b, s.wrap("blob "+dgst, err)
}

// GlobalBlob implements Store.
func (s *SQL) GlobalBlob(ctx context.Context, dgst string) (Blob, error) {
	b, err := scanBlob(s.db.QueryRow(ctx, (`SELECT digest, size, state, updated FROM blobs WHERE digest = ? AND state = ?`), dgst, StatePresent))
	if errors.Is(err, sql.ErrNoRows) {
		return Blob{}, errdefs.NotFound(fmt.Errorf("blob %s", dgst))
	}
	return b, s.wrap("blob "+dgst, err)
}

// PresentBlobs implements Collector.
func (s *SQL) PresentBlobs(ctx context.Context, digests []string) (map[string]bool, error) {
	out := make(map[string]bool, len(digests))
	for start := 0; start < len(digests); start += 500 {
		part := digests[start:min(start+500, len(digests))]
		args := make([]any, 0, len(part)+1)
		args = append(args, StatePresent)
		for _, d := range part {
			args = append(args, d)
		}
		rows, err := s.db.Query(ctx, `SELECT digest FROM blobs WHERE state = ? AND digest IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(part)), ", ")+`)`, args...)
		if err != nil {
			return nil, s.wrap("present blobs", err)
		}
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return nil, s.wrap("present blobs", err)
			}
			out[d] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, s.wrap("present blobs", err)
		}
	}
	return out, nil
}

// LinkBlob implements Store.
func (s *SQL) LinkBlob(ctx context.Context, repo, dgst string) error {
	return s.tx(ctx, "link blob "+dgst, func(tx *sqldb.Tx) error {
		var state string
		var size int64
		err := tx.QueryRow(ctx, (`SELECT state, size FROM blobs WHERE digest = ?`+s.d.ForShare), dgst).Scan(&state, &size)
		if errors.Is(err, sql.ErrNoRows) || err == nil && state != StatePresent {
			return errdefs.NotFound(fmt.Errorf("blob %s", dgst))
		}
		if err != nil {
			return err
		}
		return s.link(ctx, tx, repo, dgst, size, nanos(s.now()))
	})
}

// UnlinkBlob implements Store.
func (s *SQL) UnlinkBlob(ctx context.Context, repo, dgst string) error {
	return s.tx(ctx, "unlink blob "+dgst, func(tx *sqldb.Tx) error {
		var m string
		err := tx.QueryRow(ctx, (`SELECT manifest FROM manifest_refs WHERE repo = ? AND child = ? LIMIT 1`), repo, dgst).Scan(&m)
		if err == nil {
			return errdefs.Conflict(fmt.Errorf("blob %s is referenced by manifest %s of %s; delete the manifest first", dgst, m, repo))
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		err = tx.QueryRow(ctx, (`SELECT digest FROM manifests WHERE repo = ? AND digest = ?`), repo, dgst).Scan(&m)
		if err == nil {
			return errdefs.Conflict(fmt.Errorf("blob %s is manifest %s of %s; delete the manifest", dgst, dgst, repo))
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := tx.Exec(ctx, (`DELETE FROM repo_blobs WHERE repo = ? AND digest = ?`), repo, dgst)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errdefs.NotFound(fmt.Errorf("blob %s in %s", dgst, repo))
		}
		return s.hooks.BlobUnlinked(ctx, tx, repo, dgst)
	})
}

// BlobRepositories implements Store.
func (s *SQL) BlobRepositories(ctx context.Context, dgst string, limit int) ([]string, error) {
	rows, err := s.db.Query(ctx, (`SELECT l.repo FROM repo_blobs l JOIN blobs b ON b.digest = l.digest WHERE l.digest = ? AND b.state = ? ORDER BY l.repo LIMIT ?`), dgst, StatePresent, limit)
	if err != nil {
		return nil, s.wrap("repositories of "+dgst, err)
	}
	return s.strings(rows, "repositories of "+dgst)
}

func (s *SQL) strings(rows *sql.Rows, what string) ([]string, error) {
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, s.wrap(what, err)
		}
		out = append(out, v)
	}
	return out, s.wrap(what, rows.Err())
}

// PutManifest implements Store.
func (s *SQL) PutManifest(ctx context.Context, repo string, m Manifest, tags []string) error {
	ann := "{}"
	if len(m.Annotations) > 0 {
		b, err := json.Marshal(m.Annotations)
		if err != nil {
			return errdefs.InvalidArgument(fmt.Errorf("manifest %s annotations: %w", m.Digest, err))
		}
		ann = string(b)
	}
	// Lock the blob rows in a fixed order so concurrent puts cannot
	// deadlock.
	blobs := slices.Clone(m.Blobs)
	slices.Sort(blobs)
	blobs = slices.Compact(blobs)
	children := slices.Clone(m.Manifests)
	slices.Sort(children)
	children = slices.Compact(children)
	return s.tx(ctx, "put manifest "+m.Digest, func(tx *sqldb.Tx) error {
		now := nanos(s.now())
		// The manifest's content: claimed (and written) or present;
		// it becomes present here, with the manifest that protects it.
		var state string
		err := tx.QueryRow(ctx, (`SELECT state FROM blobs WHERE digest = ?` + s.d.ForUpdate), m.Digest).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) || err == nil && state == StateDeleting {
			return errdefs.Unavailable(fmt.Errorf("manifest %s: its content was garbage collected while it was written; retry", m.Digest))
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, (`UPDATE blobs SET state = ?, size = ?, updated = ?, claims = CASE WHEN claims > 0 THEN claims - 1 ELSE 0 END WHERE digest = ?`), StatePresent, m.Size, now, m.Digest); err != nil {
			return err
		}
		for _, b := range blobs {
			var size int64
			err := tx.QueryRow(ctx, (`SELECT b.size FROM blobs b JOIN repo_blobs l ON l.digest = b.digest WHERE l.repo = ? AND b.digest = ? AND b.state = ?` + s.d.ForShare), repo, b, StatePresent).Scan(&size)
			if errors.Is(err, sql.ErrNoRows) {
				return &MissingError{Repo: repo, Digest: b}
			}
			if err != nil {
				return err
			}
			if stated, ok := m.Sizes[b]; ok && stated != size {
				return &SizeError{Repo: repo, Digest: b, Stated: stated, Stored: size}
			}
		}
		for _, c := range children {
			var size int64
			err := tx.QueryRow(ctx, (`SELECT size FROM manifests WHERE repo = ? AND digest = ?` + s.d.ForShare), repo, c).Scan(&size)
			if errors.Is(err, sql.ErrNoRows) {
				return &MissingError{Repo: repo, Digest: c, Manifest: true}
			}
			if err != nil {
				return err
			}
			if stated, ok := m.Sizes[c]; ok && stated != size {
				return &SizeError{Repo: repo, Digest: c, Manifest: true, Stated: stated, Stored: size}
			}
		}
		if err := s.ensureRepo(ctx, tx, repo); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, (`INSERT INTO manifests (repo, digest, media_type, size, artifact_type, subject, annotations, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (repo, digest) DO UPDATE SET media_type = excluded.media_type, size = excluded.size, artifact_type = excluded.artifact_type, subject = excluded.subject, annotations = excluded.annotations`),
			repo, m.Digest, m.MediaType, m.Size, m.ArtifactType, m.Subject, ann, now)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, (`DELETE FROM manifest_refs WHERE repo = ? AND manifest = ?`), repo, m.Digest); err != nil {
			return err
		}
		refs := append(slices.Clone(blobs), children...)
		slices.Sort(refs)
		for _, c := range slices.Compact(refs) {
			if _, err := tx.Exec(ctx, (`INSERT INTO manifest_refs (repo, manifest, child) VALUES (?, ?, ?)`), repo, m.Digest, c); err != nil {
				return err
			}
		}
		// The manifest's own content is a blob of the repository.
		if err := s.link(ctx, tx, repo, m.Digest, m.Size, now); err != nil {
			return err
		}
		for _, t := range tags {
			if _, err := tx.Exec(ctx, (`INSERT INTO tags (repo, tag, digest, updated) VALUES (?, ?, ?, ?) ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, updated = excluded.updated`), repo, t, m.Digest, now); err != nil {
				return err
			}
		}
		return s.hooks.ManifestPut(ctx, tx, repo, m, tags)
	})
}

const manifestCols = `m.digest, m.media_type, m.size, m.artifact_type, m.subject, m.annotations, m.created`

func (s *SQL) scanManifest(row interface{ Scan(...any) error }) (Manifest, error) {
	var m Manifest
	var ann string
	var created int64
	if err := row.Scan(&m.Digest, &m.MediaType, &m.Size, &m.ArtifactType, &m.Subject, &ann, &created); err != nil {
		return Manifest{}, err
	}
	m.Created = fromNanos(created)
	if ann != "" && ann != "{}" {
		if err := json.Unmarshal([]byte(ann), &m.Annotations); err != nil {
			return Manifest{}, fmt.Errorf("manifest %s annotations: %w", m.Digest, err)
		}
	}
	return m, nil
}

// Manifest implements Store.
func (s *SQL) Manifest(ctx context.Context, repo, dgst string) (Manifest, error) {
	m, err := s.scanManifest(s.db.QueryRow(ctx, (`SELECT ` + manifestCols + ` FROM manifests m WHERE m.repo = ? AND m.digest = ?`), repo, dgst))
	if errors.Is(err, sql.ErrNoRows) {
		return Manifest{}, errdefs.NotFound(fmt.Errorf("manifest %s in %s", dgst, repo))
	}
	return m, s.wrap("manifest "+dgst, err)
}

// Tag implements Store.
func (s *SQL) Tag(ctx context.Context, repo, tag string) (Manifest, error) {
	m, err := s.scanManifest(s.db.QueryRow(ctx, (`SELECT ` + manifestCols + ` FROM tags t JOIN manifests m ON m.repo = t.repo AND m.digest = t.digest WHERE t.repo = ? AND t.tag = ?`), repo, tag))
	if errors.Is(err, sql.ErrNoRows) {
		return Manifest{}, errdefs.NotFound(fmt.Errorf("tag %s in %s", tag, repo))
	}
	return m, s.wrap("tag "+tag, err)
}

// DeleteManifest implements Store.
func (s *SQL) DeleteManifest(ctx context.Context, repo, dgst string) error {
	return s.tx(ctx, "delete manifest "+dgst, func(tx *sqldb.Tx) error {
		var parent string
		err := tx.QueryRow(ctx, (`SELECT manifest FROM manifest_refs WHERE repo = ? AND child = ? AND manifest <> ? LIMIT 1`), repo, dgst, dgst).Scan(&parent)
		if err == nil {
			return errdefs.Conflict(fmt.Errorf("manifest %s is referenced by index %s of %s; delete the index first", dgst, parent, repo))
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := tx.Exec(ctx, (`DELETE FROM manifests WHERE repo = ? AND digest = ?`), repo, dgst)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errdefs.NotFound(fmt.Errorf("manifest %s in %s", dgst, repo))
		}
		if _, err := tx.Exec(ctx, (`DELETE FROM manifest_refs WHERE repo = ? AND manifest = ?`), repo, dgst); err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, (`DELETE FROM tags WHERE repo = ? AND digest = ?`), repo, dgst); err != nil {
			return err
		}
		return s.hooks.ManifestDeleted(ctx, tx, repo, dgst)
	})
}

// DeleteTag implements Store.
func (s *SQL) DeleteTag(ctx context.Context, repo, tag string) error {
	return s.tx(ctx, "delete tag "+tag, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, (`DELETE FROM tags WHERE repo = ? AND tag = ?`), repo, tag)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errdefs.NotFound(fmt.Errorf("tag %s in %s", tag, repo))
		}
		return s.hooks.TagDeleted(ctx, tx, repo, tag)
	})
}

// Tags implements Store.
func (s *SQL) Tags(ctx context.Context, repo, last string, n int) ([]string, error) {
	var one int
	err := s.db.QueryRow(ctx, (`SELECT 1 FROM repositories WHERE name = ?`), repo).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound(fmt.Errorf("repository %s", repo))
	}
	if err != nil {
		return nil, s.wrap("tags of "+repo, err)
	}
	if n < 0 {
		n = -1
	}
	if n == 0 {
		return []string{}, nil
	}
	query := `SELECT tag FROM tags WHERE repo = ? AND tag > ? ORDER BY tag LIMIT ?`
	if n < 0 {
		n = 1 << 31
	}
	rows, err := s.db.Query(ctx, (query), repo, last, n)
	if err != nil {
		return nil, s.wrap("tags of "+repo, err)
	}
	return s.strings(rows, "tags of "+repo)
}

// Repositories implements Store.
func (s *SQL) Repositories(ctx context.Context, last string, n int) ([]string, error) {
	if n == 0 {
		return []string{}, nil
	}
	if n < 0 {
		n = 1 << 31
	}
	rows, err := s.db.Query(ctx, (`SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?`), last, n)
	if err != nil {
		return nil, s.wrap("repositories", err)
	}
	return s.strings(rows, "repositories")
}

// Referrers implements Store.
func (s *SQL) Referrers(ctx context.Context, repo, dgst, artifactType string) ([]Descriptor, error) {
	query := `SELECT ` + manifestCols + ` FROM manifests m WHERE m.repo = ? AND m.subject = ?`
	args := []any{repo, dgst}
	if artifactType != "" {
		query += ` AND m.artifact_type = ?`
		args = append(args, artifactType)
	}
	rows, err := s.db.Query(ctx, (query + ` ORDER BY m.digest`), args...)
	if err != nil {
		return nil, s.wrap("referrers of "+dgst, err)
	}
	defer rows.Close()
	out := []Descriptor{}
	for rows.Next() {
		m, err := s.scanManifest(rows)
		if err != nil {
			return nil, s.wrap("referrers of "+dgst, err)
		}
		out = append(out, Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, ArtifactType: m.ArtifactType, Annotations: m.Annotations})
	}
	return out, s.wrap("referrers of "+dgst, rows.Err())
}

// CreateUpload implements Store.
func (s *SQL) CreateUpload(ctx context.Context, u Upload) error {
	now := nanos(s.now())
	_, err := s.db.Exec(ctx, (`INSERT INTO uploads (id, repo, size, chunks, hash_state, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		u.ID, u.Repo, u.Size, strings.Join(u.Chunks, ","), u.HashState, now, now)
	return s.wrap("create upload "+u.ID, err)
}

const uploadCols = `id, repo, size, chunks, hash_state, created, updated`

func scanUpload(row interface{ Scan(...any) error }) (Upload, error) {
	var u Upload
	var chunks string
	var created, updated int64
	if err := row.Scan(&u.ID, &u.Repo, &u.Size, &chunks, &u.HashState, &created, &updated); err != nil {
		return Upload{}, err
	}
	if chunks != "" {
		u.Chunks = strings.Split(chunks, ",")
	}
	u.Created, u.Updated = fromNanos(created), fromNanos(updated)
	return u, nil
}

// Upload implements Store.
func (s *SQL) Upload(ctx context.Context, repo, id string) (Upload, error) {
	u, err := scanUpload(s.db.QueryRow(ctx, (`SELECT ` + uploadCols + ` FROM uploads WHERE id = ? AND repo = ?`), id, repo))
	if errors.Is(err, sql.ErrNoRows) {
		return Upload{}, errdefs.NotFound(fmt.Errorf("upload %s in %s", id, repo))
	}
	return u, s.wrap("upload "+id, err)
}

// UploadExists implements Store.
func (s *SQL) UploadExists(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, (`SELECT 1 FROM uploads WHERE id = ?`), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, s.wrap("upload "+id, err)
}

// UpdateUpload implements Store.
func (s *SQL) UpdateUpload(ctx context.Context, u Upload, prevSize int64) error {
	res, err := s.db.Exec(ctx, (`UPDATE uploads SET size = ?, chunks = ?, hash_state = ?, updated = ? WHERE id = ? AND repo = ? AND size = ?`),
		u.Size, strings.Join(u.Chunks, ","), u.HashState, nanos(s.now()), u.ID, u.Repo, prevSize)
	if err != nil {
		return s.wrap("update upload "+u.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if ok, err := s.UploadExists(ctx, u.ID); err == nil && !ok {
			return errdefs.NotFound(fmt.Errorf("upload %s", u.ID))
		}
		return errdefs.Conflict(fmt.Errorf("upload %s moved past offset %d", u.ID, prevSize))
	}
	return nil
}

// DeleteUpload implements Store.
func (s *SQL) DeleteUpload(ctx context.Context, repo, id string, size int64) error {
	query := `DELETE FROM uploads WHERE id = ? AND repo = ?`
	args := []any{id, repo}
	if size >= 0 {
		query += ` AND size = ?`
		args = append(args, size)
	}
	res, err := s.db.Exec(ctx, (query), args...)
	if err != nil {
		return s.wrap("delete upload "+id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if ok, err := s.UploadExists(ctx, id); err == nil && ok {
			return errdefs.Conflict(fmt.Errorf("upload %s moved past offset %d", id, size))
		}
		return errdefs.NotFound(fmt.Errorf("upload %s in %s", id, repo))
	}
	return nil
}

// StaleUploads implements Store.
func (s *SQL) StaleUploads(ctx context.Context, before time.Time, limit int) ([]Upload, error) {
	rows, err := s.db.Query(ctx, (`SELECT ` + uploadCols + ` FROM uploads WHERE updated < ? ORDER BY updated LIMIT ?`), nanos(before), limit)
	if err != nil {
		return nil, s.wrap("stale uploads", err)
	}
	defer rows.Close()
	var out []Upload
	for rows.Next() {
		u, err := scanUpload(rows)
		if err != nil {
			return nil, s.wrap("stale uploads", err)
		}
		out = append(out, u)
	}
	return out, s.wrap("stale uploads", rows.Err())
}

// collectable is the condition for a blob row b to be garbage: no manifest
// is it or references it, nothing linked or touched it since the cutoff
// (the first two placeholders), and no writer holds a claim on it (the
// third: claims made before the claim cutoff belong to dead writers).
const collectable = `NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest)
	AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.child = b.digest)
	AND NOT EXISTS (SELECT 1 FROM repo_blobs l WHERE l.digest = b.digest AND l.linked >= ?)
	AND b.updated < ?
	AND (b.claims = 0 OR b.claimed < ?)`

// pendingTimeout is how long claims protect a blob, whatever the
// collector's grace window: writers claim a digest only for the moment
// between receiving the content and committing it (which releases the
// claim), so claims this old belong to writers that died.
const pendingTimeout = 15 * time.Minute

// cutoffs returns the arguments of collectable for a grace cutoff.
func (s *SQL) cutoffs(before time.Time) []any {
	pending := s.now().Add(-pendingTimeout)
	if before.Before(pending) {
		pending = before
	}
	return []any{nanos(before), nanos(before), nanos(pending)}
}

// GCCandidates implements Store.
func (s *SQL) GCCandidates(ctx context.Context, before time.Time, after string, limit int) ([]Blob, error) {
	args := append([]any{after, StateDeleting}, s.cutoffs(before)...)
	rows, err := s.db.Query(ctx, (`SELECT b.digest, b.size, b.state, b.updated FROM blobs b WHERE b.digest > ? AND (b.state = ? OR (` + collectable + `)) ORDER BY b.digest LIMIT ?`),
		append(args, limit)...)
	if err != nil {
		return nil, s.wrap("gc candidates", err)
	}
	defer rows.Close()
	var out []Blob
	for rows.Next() {
		b, err := scanBlob(rows)
		if err != nil {
			return nil, s.wrap("gc candidates", err)
		}
		out = append(out, b)
	}
	return out, s.wrap("gc candidates", rows.Err())
}

// LockCollection implements Store.
func (s *SQL) LockCollection(ctx context.Context) (*Lock, error) {
	l, err := s.locks.Lock(ctx, newCollectionID())
	return l, s.wrap("collection lock", err)
}

// MarkDeleting implements Store.
func (s *SQL) MarkDeleting(ctx context.Context, l *Lock, dgst string, before time.Time) (bool, error) {
	marked := false
	err := s.tx(ctx, "mark "+dgst+" deleting", func(tx *sqldb.Tx) error {
		marked = false
		now := nanos(s.now())
		var state string
		err := tx.QueryRow(ctx, (`SELECT state FROM blobs WHERE digest = ?` + s.d.ForUpdate), dgst).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			// Content without a row: left by a crash between a
			// write and its commit. A claim would have created the
			// row first, so nobody is writing it now.
			_, err = tx.Exec(ctx, (`INSERT INTO blobs (digest, size, state, created, updated, claimed, claims, collector) VALUES (?, 0, ?, ?, ?, 0, 0, ?)`), dgst, StateDeleting, now, now, l.ID())
			marked = err == nil
			return err
		}
		if err != nil {
			return err
		}
		if state == StateDeleting {
			// Left by an interrupted collection: this one resumes
			// it, under its own lock.
			marked = true
			_, err = tx.Exec(ctx, (`UPDATE blobs SET updated = ?, collector = ? WHERE digest = ?`), now, l.ID(), dgst)
			return err
		}
		// Re-check in a statement that starts after the lock was
		// taken, so it sees every manifest committed before.
		var one int
		err = tx.QueryRow(ctx, (`SELECT 1 FROM blobs b WHERE b.digest = ? AND ` + collectable), append([]any{dgst}, s.cutoffs(before)...)...).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, (`UPDATE blobs SET state = ?, updated = ?, collector = ? WHERE digest = ?`), StateDeleting, now, l.ID(), dgst)
		marked = err == nil
		return err
	})
	return marked, err
}

// ForgetBlob implements Store.
func (s *SQL) ForgetBlob(ctx context.Context, dgst string) error {
	return s.tx(ctx, "forget "+dgst, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, (`DELETE FROM blobs WHERE digest = ? AND state = ?`), dgst, StateDeleting)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // claimed again since; keep the links
		}
		rows, err := tx.Query(ctx, (`DELETE FROM repo_blobs WHERE digest = ? RETURNING repo`), dgst)
		if err != nil {
			return err
		}
		var repos []string
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				rows.Close()
				return err
			}
			repos = append(repos, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range repos {
			if err := s.hooks.BlobUnlinked(ctx, tx, r, dgst); err != nil {
				return err
			}
		}
		return nil
	})
}
