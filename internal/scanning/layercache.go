package scanning

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/cache"
	"github.com/lading-dev/lading/internal/sqldb"
)

// layerCache keeps per-layer analysis results in the metadata database
// (scan_layers), so that every replica shares them: a layer that a
// thousand images share is analyzed once for the registry. Entries are
// keyed by blob digest and part, as package cache describes; what an
// entry holds never changes meaning, so concurrent writers of one key
// write the same thing.
type layerCache struct {
	db       *sqldb.DB
	max      int64
	lastTrim atomic.Int64
}

// touchEvery is how stale an entry's last use may be recorded: reads
// write only when the recorded use is older (trimming is least recently
// used first, at this resolution).
const touchEvery = time.Hour

func (c *layerCache) Get(ctx context.Context, digest, part string) ([]byte, bool, error) {
	var data []byte
	var used int64
	err := c.db.QueryRow(ctx, `SELECT data, used FROM scan_layers WHERE digest = ? AND part = ?`, digest, part).Scan(&data, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, c.db.Wrap("layer cache", err)
	}
	now := c.db.Now()
	if sqldb.Time(used).Before(now.Add(-touchEvery)) {
		if _, err := c.db.Exec(ctx, `UPDATE scan_layers SET used = ? WHERE digest = ? AND part = ?`, sqldb.Nanos(now), digest, part); err != nil {
			return nil, false, c.db.Wrap("layer cache", err)
		}
	}
	return data, true, nil
}

func (c *layerCache) PutAll(ctx context.Context, digest string, parts map[string][]byte) error {
	return c.db.Tx(ctx, "cache layer results", func(tx *sqldb.Tx) error {
		return c.put(ctx, tx, digest, parts)
	})
}

// put stores a layer's parts in tx.
func (c *layerCache) put(ctx context.Context, tx *sqldb.Tx, digest string, parts map[string][]byte) error {
	now := sqldb.Nanos(c.db.Now())
	for part, data := range parts {
		if _, err := tx.Exec(ctx, `INSERT INTO scan_layers (digest, part, data, size, used) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (digest, part) DO UPDATE SET data = excluded.data, size = excluded.size, used = excluded.used`,
			digest, part, data, len(data), now); err != nil {
			return err
		}
	}
	return nil
}

// layerWrites are the results one image's analysis found that the layer
// cache did not have, kept until the scan stores them: with its report,
// in the report's transaction (one commit, one sync of the metadata
// database, instead of one per layer on the scan's critical path; a
// process killed before that loses only cache entries, which the next
// scan of the layer makes again).
type layerWrites struct {
	c     *layerCache
	mu    sync.Mutex
	parts map[string]map[string][]byte // by layer blob digest
}

func (w *layerWrites) add(digest string, parts map[string][]byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.parts == nil {
		w.parts = map[string]map[string][]byte{}
	}
	w.parts[digest] = parts
}

// store writes the results in tx.
func (w *layerWrites) store(ctx context.Context, tx *sqldb.Tx) error {
	if w == nil {
		return nil
	}
	defer timingOf(ctx).since("cache stores", time.Now())
	w.mu.Lock()
	defer w.mu.Unlock()
	for digest, parts := range w.parts {
		if err := w.c.put(ctx, tx, digest, parts); err != nil {
			return w.c.db.Wrap("layer cache", err)
		}
	}
	w.parts = nil
	return nil
}

// flush writes the results in a transaction of their own, for analyses
// that store no report; a failure is only logged (the cache is a cache).
func (w *layerWrites) flush(ctx context.Context, log *slog.Logger) {
	if w == nil {
		return
	}
	w.mu.Lock()
	n := len(w.parts)
	w.mu.Unlock()
	if n == 0 {
		return
	}
	if err := w.c.db.Tx(ctx, "cache layer results", func(tx *sqldb.Tx) error { return w.store(ctx, tx) }); err != nil {
		log.Warn("cannot cache layer results", "error", err)
	}
}

// trimEvery is how often MaybeTrim looks at the cache's size.
const trimEvery = 10 * time.Minute

// MaybeTrim removes the least recently used entries past the size limit,
// at most every trimEvery in this process.
func (c *layerCache) MaybeTrim(ctx context.Context) (int64, error) {
	now := c.db.Now().UnixNano()
	last := c.lastTrim.Load()
	if now-last < int64(trimEvery) || !c.lastTrim.CompareAndSwap(last, now) {
		return 0, nil
	}
	return c.Trim(ctx)
}

// Trim removes least recently used entries until the cache is within 90%
// of its limit.
func (c *layerCache) Trim(ctx context.Context) (int64, error) {
	var total int64
	if err := c.db.QueryRow(ctx, `SELECT COALESCE(SUM(size), 0) FROM scan_layers`).Scan(&total); err != nil {
		return 0, c.db.Wrap("layer cache", err)
	}
	var freed int64
	for total-freed > c.max/10*9 {
		// One batch of the oldest entries at a time.
		var cutoff int64
		err := c.db.QueryRow(ctx, `SELECT used FROM scan_layers ORDER BY used LIMIT 1 OFFSET 99`).Scan(&cutoff)
		if errors.Is(err, sql.ErrNoRows) {
			err = c.db.QueryRow(ctx, `SELECT COALESCE(MAX(used), 0) FROM scan_layers`).Scan(&cutoff)
		}
		if err != nil {
			return freed, c.db.Wrap("layer cache", err)
		}
		var n int64
		err = c.db.Tx(ctx, "trim layer cache", func(tx *sqldb.Tx) error {
			if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(size), 0) FROM scan_layers WHERE used <= ?`, cutoff).Scan(&n); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM scan_layers WHERE used <= ?`, cutoff)
			return err
		})
		if err != nil {
			return freed, err
		}
		if n == 0 {
			break
		}
		freed += n
	}
	return freed, nil
}

// imageCache is the layer cache as one image's analysis asks it (its
// stores kept in writes until the scan stores them): by the
// digest of each layer blob (package analyze keys its cache by the blob
// digest it reads and verifies, and checks the config's diffIDs against
// the content, or against the diffID recorded with the entry, so a
// pusher's claim never keys anything). Keys that are not a blob of the
// image being scanned are refused.
type imageCache struct {
	c      *layerCache
	blobs  map[string]bool
	writes *layerWrites
}

var _ analyze.Cache = imageCache{}

func (ic imageCache) key(layer string) (string, error) {
	if !ic.blobs[layer] {
		return "", fmt.Errorf("layer cache: %s is not a layer blob of the image being scanned", layer)
	}
	return layer, nil
}

func (ic imageCache) Get(ctx context.Context, k cache.Key) ([]byte, bool, error) {
	d, err := ic.key(k.Digest)
	if err != nil {
		return nil, false, err
	}
	defer timingOf(ctx).since("cache lookups", time.Now())
	return ic.c.Get(ctx, d, k.Part)
}

func (ic imageCache) PutAll(ctx context.Context, layer string, parts map[string][]byte) error {
	d, err := ic.key(layer)
	if err != nil {
		return err
	}
	ic.writes.add(d, parts)
	return nil
}

func (ic imageCache) MaybeTrim(ctx context.Context) (int64, error) { return ic.c.MaybeTrim(ctx) }
