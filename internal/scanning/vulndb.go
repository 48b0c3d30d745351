package scanning

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/registry/storage"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/vulndb"
)

// The vulnerability database in force is one row of scan_vulndb: its
// digest (of the file), when it was built, where it came from. Each
// replica maps its own copy of the file (Options.DBFile). A replica that
// changes the database (an update, or a start with another file) writes
// the file's zstd into the registry's storage under
//
//	vulndb/sha256-<hex>.zst   the database in force, for the other replicas
//
// and the row, in a transaction that also queues the re-evaluation of
// every report against it (SCAN_REEVALUATION, keyed by the digest). The
// other replicas notice the new row within seconds (Run), fetch the file
// from storage, verify it against the digest and replace their copy; the
// re-evaluation waits until the replica that runs it has the database it
// names.

// handle is an open database shared by the scans using it; the last
// release of a replaced one closes it.
type handle struct {
	db     *vulndb.DB
	digest string
	refs   atomic.Int64
}

func (h *handle) release() {
	if h.refs.Add(-1) == 0 {
		h.db.Close()
	}
}

type keeper struct {
	s    *Service
	path string

	mu  sync.Mutex
	cur *handle
	// syncing serializes fetches from storage.
	syncing sync.Mutex
}

// storagePath is where a database version is kept for other replicas.
func storagePath(digest string) string {
	return "vulndb/" + strings.ReplaceAll(digest, ":", "-") + ".zst"
}

// open opens the configured file, if there is one, and makes it the
// database in force when none is, or when it differs from the one in
// force and no storage has that one (a lone replica started with another
// file).
func (k *keeper) open(ctx context.Context) error {
	if k.path == "" {
		return nil
	}
	h, err := openHandle(k.path)
	if errdefs.IsNotFound(err) {
		k.s.log.Warn("no vulnerability database yet: scans fail until one is built or pulled (scan.db_source), or lading serve --vuln-db names one", "file", k.path)
		return nil
	}
	if err != nil {
		return fmt.Errorf("vulnerability database %s: %w", k.path, err)
	}
	k.swap(h)
	row, err := k.row(ctx)
	if err != nil {
		return err
	}
	if row.Digest == h.digest {
		return nil
	}
	if row.Digest != "" && k.s.d.Storage != nil {
		if _, err := k.s.d.Storage.Stat(ctx, storagePath(row.Digest)); err == nil {
			return nil // Run fetches the database in force
		}
	}
	return k.publish(ctx, h, "file "+filepath.Base(k.path))
}

// openHandle opens a database file and digests it.
func openHandle(path string) (*handle, error) {
	db, err := vulndb.Open(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		db.Close()
		return nil, err
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		db.Close()
		return nil, err
	}
	h := &handle{db: db, digest: "sha256:" + hex.EncodeToString(sum.Sum(nil))}
	h.refs.Store(1)
	return h, nil
}

// swap makes h the database of this replica.
func (k *keeper) swap(h *handle) {
	k.mu.Lock()
	old := k.cur
	k.cur = h
	k.mu.Unlock()
	if old != nil {
		old.release()
	}
}

// acquire returns this replica's database; release it when done.
func (k *keeper) acquire() (*handle, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur == nil {
		return nil, errdefs.Unavailable(errors.New("no vulnerability database: start lading serve with --vuln-db FILE (a file lading db build wrote), or set scan.db_source to update one"))
	}
	k.cur.refs.Add(1)
	return k.cur, nil
}

// has reports whether this replica has a database.
func (k *keeper) has() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cur != nil
}

func (k *keeper) close() error {
	k.mu.Lock()
	h := k.cur
	k.cur = nil
	k.mu.Unlock()
	if h != nil {
		h.release()
	}
	return nil
}

// dbRow is the database in force.
type dbRow struct {
	Digest  string
	Size    int64
	BuiltAt time.Time
	Source  string
	Updated time.Time
}

func (k *keeper) row(ctx context.Context) (dbRow, error) {
	var r dbRow
	var built, updated int64
	err := k.s.d.DB.QueryRow(ctx, `SELECT digest, size, built_at, source, updated FROM scan_vulndb WHERE id = 1`).Scan(&r.Digest, &r.Size, &built, &r.Source, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return dbRow{}, nil
	}
	r.BuiltAt, r.Updated = sqldb.Time(built), sqldb.Time(updated)
	return r, k.s.d.DB.Wrap("vulnerability database", err)
}

// publish makes h, this replica's database, the one in force: its file
// goes to storage for the other replicas, and the row changes with the
// re-evaluation of every report queued.
func (k *keeper) publish(ctx context.Context, h *handle, source string) error {
	fi, err := os.Stat(h.db.Path())
	if err != nil {
		return err
	}
	if st := k.s.d.Storage; st != nil {
		if err := putCompressed(ctx, st, storagePath(h.digest), h.db.Path()); err != nil {
			return fmt.Errorf("keeping the vulnerability database for the other replicas: %w", err)
		}
	}
	prev, err := k.row(ctx)
	if err != nil {
		return err
	}
	now := sqldb.Nanos(k.s.d.DB.Now())
	err = k.s.d.DB.Tx(ctx, "vulnerability database in force", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO scan_vulndb (id, digest, size, built_at, source, updated) VALUES (1, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET digest = excluded.digest, size = excluded.size, built_at = excluded.built_at, source = excluded.source, updated = excluded.updated`,
			h.digest, fi.Size(), sqldb.Nanos(h.db.Metadata().BuiltAt), source, now); err != nil {
			return err
		}
		_, _, err := k.s.d.Jobs.EnqueueTx(ctx, tx, jobs.Request{Kind: KindReevaluate, Args: reevalArgs{Digest: h.digest}, Key: "reevaluate:" + h.digest})
		return err
	})
	if err != nil {
		return err
	}
	k.s.log.Info("vulnerability database in force", "digest", h.digest, "built_at", h.db.Metadata().BuiltAt, "source", source)
	if prev.Digest != "" && prev.Digest != h.digest && k.s.d.Storage != nil {
		k.s.d.Storage.Delete(ctx, storagePath(prev.Digest))
	}
	return nil
}

// sync makes this replica's database the one in force, fetching it from
// storage when another replica changed it.
func (k *keeper) sync(ctx context.Context) error {
	k.syncing.Lock()
	defer k.syncing.Unlock()
	row, err := k.row(ctx)
	if err != nil || row.Digest == "" {
		return err
	}
	k.mu.Lock()
	same := k.cur != nil && k.cur.digest == row.Digest
	k.mu.Unlock()
	if same {
		return nil
	}
	if k.s.d.Storage == nil || k.path == "" {
		return nil
	}
	want, err := parseDigestHex(row.Digest)
	if err != nil {
		return err
	}
	rc, err := k.s.d.Storage.Reader(ctx, storagePath(row.Digest), 0)
	if err != nil {
		return fmt.Errorf("vulnerability database %s: %w", row.Digest, err)
	}
	defer rc.Close()
	zr, err := zstd.NewReader(rc, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return err
	}
	defer zr.Close()
	err = vulndb.WriteFileAtomic(k.path, func(f *os.File) error {
		sum := sha256.New()
		if _, err := io.Copy(io.MultiWriter(f, sum), zr); err != nil {
			return err
		}
		if got := hex.EncodeToString(sum.Sum(nil)); got != want {
			return errdefs.Corrupt(fmt.Errorf("vulnerability database from storage has digest sha256:%s, not %s", got, row.Digest))
		}
		return f.Sync()
	})
	if err != nil {
		return err
	}
	h, err := openHandle(k.path)
	if err != nil {
		return err
	}
	k.swap(h)
	k.s.log.Info("vulnerability database follows the one in force", "digest", h.digest)
	return nil
}

func parseDigestHex(d string) (string, error) {
	hx, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hx) != 64 {
		return "", errdefs.Corrupt(fmt.Errorf("vulnerability database digest %q", d))
	}
	return hx, nil
}

// putCompressed writes the file at path, compressed, to storage.
func putCompressed(ctx context.Context, st storage.Driver, dst, path string) error {
	if _, err := st.Stat(ctx, dst); err == nil {
		return nil // content-addressed: already there
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := st.Writer(ctx, dst)
	if err != nil {
		return err
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		w.Cancel(ctx)
		return err
	}
	if _, err := io.Copy(zw, f); err != nil {
		zw.Close()
		w.Cancel(ctx)
		return err
	}
	if err := zw.Close(); err != nil {
		w.Cancel(ctx)
		return err
	}
	return w.Commit(ctx)
}
