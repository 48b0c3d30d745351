package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/registry/storage"
	"github.com/lading-dev/lading/internal/verify"
)

// Defaults of a collection's windows (lading serve's configuration).
const (
	DefaultGrace     = time.Hour
	DefaultUploadTTL = 24 * time.Hour
)

// GCOptions tune a garbage collection.
type GCOptions struct {
	// Grace protects blobs written, mounted or linked within this window,
	// so the blobs of a push in flight, whose manifest is not there yet,
	// survive. Zero is no window at all: such a push may then have to
	// send its blobs again (DefaultGrace is lading serve's default).
	Grace time.Duration
	// UploadTTL expires upload sessions idle this long, with their
	// chunks. Zero or less means DefaultUploadTTL.
	UploadTTL time.Duration
	// DryRun reports what would be deleted, and deletes nothing.
	DryRun bool
	// UntaggedBefore, in a dry run, counts the blobs as if the untagged
	// manifests created before it were deleted first (what a collection
	// with delete_untagged frees; one pass: an index's children that its
	// deletion would untag are not counted).
	UntaggedBefore time.Time
	// Workers bounds the blob deletions at once; 0 or 1 is one at a time.
	Workers int
	// Log, when set, receives the collection's messages instead of the
	// collector's logger (a job's log).
	Log *slog.Logger
}

// GCReport says what a collection deleted (or, in a dry run, would).
type GCReport struct {
	DryRun         bool
	BlobsDeleted   int      // blobs no manifest references
	BytesDeleted   int64    // their size
	OrphansDeleted int      // content in storage that no metadata names
	UploadsExpired int      // idle upload sessions
	ChunkDirs      int      // chunk directories no session names
	TempPurged     int      // a driver's leftovers from interrupted writes (older than UploadTTL)
	Digests        []string // the blobs, up to 1000
}

func (g *GCReport) note(dgst string) {
	if len(g.Digests) < 1000 {
		g.Digests = append(g.Digests, dgst)
	}
}

// Collector collects the garbage of a registry's storage and metadata. It
// takes the metadata's collector role only. Create it with NewCollector;
// of the options it uses WithLogger and WithMetrics.
type Collector struct {
	settings
	driver storage.Driver
	meta   meta.Collector
	mu     sync.Mutex // one collection at a time in this process
}

// NewCollector returns a collector over content in d and metadata in m.
func NewCollector(d storage.Driver, m meta.Collector, opts ...Option) *Collector {
	return &Collector{settings: newSettings(opts), driver: d, meta: m}
}

// Collect deletes blobs that no manifest references and that nothing
// touched within the grace window, content that no metadata names, and
// expired upload sessions. It is safe while the registry serves pushes,
// also from another process sharing the storage and the database: every
// deletion is decided under the blob's row lock (see package meta).
func (c *Collector) Collect(ctx context.Context, o GCOptions) (GCReport, error) {
	o.Grace = max(o.Grace, 0)
	if o.UploadTTL <= 0 {
		o.UploadTTL = DefaultUploadTTL
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var lock *meta.Lock
	if !o.DryRun {
		// One collection at a time per database; the lock dies with
		// this process, and pushes take over what it leaves behind.
		var err error
		if lock, err = c.meta.LockCollection(ctx); err != nil {
			return GCReport{}, fmt.Errorf("garbage collection: %w", err)
		}
		defer lock.Release()
	}
	start := time.Now()
	rep := GCReport{DryRun: o.DryRun}
	cutoff := start.Add(-o.Grace)
	log := c.log
	if o.Log != nil {
		log = o.Log
	}
	log = log.With("gc_dry_run", o.DryRun)
	log.Info("garbage collection started", "grace", o.Grace.String(), "upload_ttl", o.UploadTTL.String())

	steps := []struct {
		name string
		fn   func() error
	}{
		{"expire uploads", func() error { return c.gcUploads(ctx, o, start.Add(-o.UploadTTL), &rep) }},
		{"chunk directories", func() error { return c.gcChunkDirs(ctx, o, start.Add(-o.UploadTTL), &rep) }},
		{"unreferenced blobs", func() error { return c.gcBlobs(ctx, lock, o, cutoff, &rep) }},
		{"orphaned content", func() error { return c.gcOrphans(ctx, lock, o, cutoff, &rep) }},
		{"temporary files", func() error {
			p, ok := c.driver.(storage.Purger)
			if !ok || o.DryRun {
				return nil
			}
			// Temporary files belong to writes in flight until
			// they are older than any upload may be.
			n, err := p.Purge(ctx, start.Add(-max(o.Grace, o.UploadTTL)))
			rep.TempPurged = n
			return err
		}},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return rep, fmt.Errorf("garbage collection: %s: %w", s.name, err)
		}
	}
	if c.metrics != nil && !o.DryRun {
		c.metrics.gcRuns.Inc()
		c.metrics.gcBlobs.Add(float64(rep.BlobsDeleted + rep.OrphansDeleted))
		c.metrics.gcBytes.Add(float64(rep.BytesDeleted))
		c.metrics.gcUploads.Add(float64(rep.UploadsExpired))
		c.metrics.gcLast.SetToCurrentTime()
	}
	log.Info("garbage collection finished", "duration", time.Since(start).String(),
		"blobs", rep.BlobsDeleted, "bytes", rep.BytesDeleted, "orphans", rep.OrphansDeleted,
		"uploads", rep.UploadsExpired, "chunk_dirs", rep.ChunkDirs, "temp", rep.TempPurged)
	return rep, nil
}

func (c *Collector) gcUploads(ctx context.Context, o GCOptions, before time.Time, rep *GCReport) error {
	limit := 100
	if o.DryRun {
		limit = 100000
	}
	for {
		stale, err := c.meta.StaleUploads(ctx, before, limit)
		if err != nil {
			return err
		}
		if o.DryRun {
			rep.UploadsExpired = len(stale)
			return nil
		}
		progress := false
		for _, u := range stale {
			err := c.meta.DeleteUpload(ctx, u.Repo, u.ID, u.Size)
			if errdefs.IsNotFound(err) || errors.Is(err, errdefs.ErrConflict) {
				continue // closed or moved meanwhile
			}
			if err != nil {
				return err
			}
			progress = true
			rep.UploadsExpired++
			if err := c.driver.Delete(ctx, uploadDir(u.ID)); err != nil {
				return err
			}
		}
		if len(stale) < limit || !progress {
			return nil
		}
	}
}

// gcChunkDirs removes chunk directories that no session names and that
// nobody wrote to since before (a session closed or cancelled by a process
// that died before deleting its chunks).
func (c *Collector) gcChunkDirs(ctx context.Context, o GCOptions, before time.Time, rep *GCReport) error {
	newest := map[string]time.Time{}
	var order []string
	err := c.driver.Walk(ctx, "uploads", func(fi storage.FileInfo) error {
		rest, _ := strings.CutPrefix(fi.Path, "uploads/")
		id, _, _ := strings.Cut(rest, "/")
		if _, ok := newest[id]; !ok {
			order = append(order, id)
		}
		if fi.ModTime.After(newest[id]) {
			newest[id] = fi.ModTime
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range order {
		if !newest[id].Before(before) || checkUploadID(id) != nil {
			continue
		}
		ok, err := c.meta.UploadExists(ctx, id)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		rep.ChunkDirs++
		if !o.DryRun {
			if err := c.driver.Delete(ctx, uploadDir(id)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Collector) gcBlobs(ctx context.Context, lock *meta.Lock, o GCOptions, cutoff time.Time, rep *GCReport) error {
	after := ""
	var mu sync.Mutex
	for {
		var cands []meta.Blob
		var err error
		if o.DryRun && !o.UntaggedBefore.IsZero() {
			cands, err = c.meta.GCCandidatesUntagged(ctx, cutoff, o.UntaggedBefore, after, 500)
		} else {
			cands, err = c.meta.GCCandidates(ctx, cutoff, after, 500)
		}
		if err != nil {
			return err
		}
		if len(cands) == 0 {
			return nil
		}
		after = cands[len(cands)-1].Digest
		if o.DryRun {
			for _, b := range cands {
				rep.BlobsDeleted++
				rep.BytesDeleted += b.Size
				rep.note(b.Digest)
			}
			continue
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(max(1, o.Workers))
		for _, b := range cands {
			g.Go(func() error {
				ok, err := c.deleteBlobContent(gctx, lock, b.Digest, cutoff)
				if err != nil || !ok {
					return err
				}
				mu.Lock()
				rep.BlobsDeleted++
				rep.BytesDeleted += b.Size
				rep.note(b.Digest)
				mu.Unlock()
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
}

// deleteBlobContent marks a blob deleting (if it is still collectable),
// deletes its content and forgets it.
func (c *Collector) deleteBlobContent(ctx context.Context, lock *meta.Lock, dgst string, cutoff time.Time) (bool, error) {
	h, err := verify.ParseDigest(dgst)
	if err != nil {
		return false, err
	}
	ok, err := c.meta.MarkDeleting(ctx, lock, dgst, cutoff)
	if err != nil || !ok {
		return false, err
	}
	// Once the lock is lost, pushes may take the blob over: delete
	// nothing more.
	if err := lock.Check(ctx); err != nil {
		return false, err
	}
	// Only the content file: a writer may have its temporary file in
	// the same directory.
	if err := c.driver.Delete(ctx, blobPath(h)); err != nil {
		return false, err
	}
	return true, c.meta.ForgetBlob(ctx, dgst)
}

// gcOrphans deletes blob content that no present blob row names: left by a
// crash between a write and its commit, or by a collection interrupted
// between deleting the row and the content.
func (c *Collector) gcOrphans(ctx context.Context, lock *meta.Lock, o GCOptions, cutoff time.Time, rep *GCReport) error {
	type orphan struct {
		dgst string
		size int64
	}
	var found, batch []orphan
	// Storage's files are looked up in batches: a query per file made
	// the walk of a large store take minutes.
	flush := func() error {
		digests := make([]string, len(batch))
		for i, f := range batch {
			digests[i] = f.dgst
		}
		present, err := c.meta.PresentBlobs(ctx, digests)
		if err != nil {
			return err
		}
		for _, f := range batch {
			if !present[f.dgst] {
				found = append(found, f)
			}
		}
		batch = batch[:0]
		return nil
	}
	err := c.driver.Walk(ctx, "blobs", func(fi storage.FileInfo) error {
		h, ok := digestOfBlobPath(fi.Path)
		if !ok || !fi.ModTime.Before(cutoff) {
			return nil
		}
		batch = append(batch, orphan{h.String(), fi.Size})
		if len(batch) == 500 {
			return flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	if err != nil {
		return err
	}
	for _, f := range found {
		if o.DryRun {
			rep.OrphansDeleted++
			rep.BytesDeleted += f.size
			rep.note(f.dgst)
			continue
		}
		ok, err := c.deleteBlobContent(ctx, lock, f.dgst, cutoff)
		if err != nil {
			return err
		}
		if ok {
			rep.OrphansDeleted++
			rep.BytesDeleted += f.size
			rep.note(f.dgst)
		}
	}
	return nil
}

// digestOfBlobPath reads the digest back from blobs/<alg>/<xx>/<hex>/data.
func digestOfBlobPath(p string) (h v1.Hash, ok bool) {
	parts := strings.Split(p, "/")
	if len(parts) != 5 || parts[0] != "blobs" || parts[4] != "data" || len(parts[3]) < 2 || parts[2] != parts[3][:2] {
		return h, false
	}
	d, err := verify.ParseDigest(parts[1] + ":" + parts[3])
	if err != nil {
		return h, false
	}
	return d, true
}
