// Package cache keeps per-layer analysis results on disk, keyed by the
// digest of the layer blob and the name of the part (an analyzer and its
// version, or the layer's path index), so that a layer shared by many
// images is read once.
//
// The key is the digest of the blob as it was read and verified, never a
// claim about it: an image config's diffIDs are claims that whoever built
// the image controls, so they do not key anything here. What a caller
// learned by reading the blob (its diffID) goes into the entry, for the
// next reader of the same blob to check claims against. A blob digest is a
// content address: results stored under it describe exactly the content
// that hashes to it.
//
// Layout under the cache directory (lading uses <root>/cache/layers):
//
//	lock                          flock: shared while writing, exclusive to trim or clean
//	trimmed                       its mtime: when the size was last checked
//	v2/sha256/<hex>/<part>        one entry: a part of the results of the blob sha256:<hex>
//	tmp/                          entries being written
//
// (v1 keyed entries by diffID; [Cache.Clean] and Open remove what other
// layouts left.)
//
// Entries are written to tmp/ and renamed into place, so a reader sees a
// whole entry or none. A writer may replace an entry with one that holds
// more (readers see the old or the new one); what an entry holds for a
// given key never changes meaning, since a new analyzer version is a new
// part name. Each entry carries the SHA-256 of its data, and an entry that
// does not match it (a crash before the data reached the disk, a damaged
// disk) is removed and reported as missing.
//
// Several processes can use one cache at once: readers take no lock (an
// entry removed while open stays readable), writers hold a shared lock, and
// [Cache.Trim] and [Cache.Clean] take an exclusive one. Reading an entry
// sets its modification time, and Trim removes the least recently used
// entries until the cache is under its size limit; writers call
// [Cache.MaybeTrim], which checks the size at most every ten minutes, so the
// limit is a soft one.
package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/errdefs"
)

// DefaultMaxSize is the default size limit of a cache, in bytes.
const DefaultMaxSize = 1 << 30

// schema is the directory that holds entries of this layout.
const schema = "v2"

// Cache is an on-disk cache of layer results.
type Cache struct {
	dir     string
	maxSize int64
}

// Option configures a Cache.
type Option func(*Cache)

// WithMaxSize sets the size limit that Trim enforces (default
// DefaultMaxSize); n <= 0 means no limit.
func WithMaxSize(n int64) Option { return func(c *Cache) { c.maxSize = n } }

// Open opens the cache in dir, creating it when needed.
func Open(dir string, opts ...Option) (*Cache, error) {
	c := &Cache{dir: dir, maxSize: DefaultMaxSize}
	for _, o := range opts {
		o(c)
	}
	for _, d := range []string{dir, filepath.Join(dir, "tmp"), filepath.Join(dir, schema)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	// Entries of the diffID-keyed layout must never be read again; they
	// are removed once, under the exclusive lock.
	if _, err := os.Stat(filepath.Join(dir, "v1")); err == nil {
		if unlock, err := c.lock(unix.LOCK_EX); err == nil {
			os.RemoveAll(filepath.Join(dir, "v1"))
			unlock()
		}
	}
	return c, nil
}

// Dir returns the cache directory.
func (c *Cache) Dir() string { return c.dir }

// Key names one entry: a part of the results of the layer blob with the
// given digest ("sha256:…"), as it was read and verified.
type Key struct {
	Digest string
	Part   string // [a-zA-Z0-9._@+-], such as "dpkg@3" or "paths@1"
}

func (c *Cache) path(k Key) (string, error) {
	alg, hex, ok := strings.Cut(k.Digest, ":")
	if !ok || !validName(alg) || !validHex(hex) {
		return "", errdefs.InvalidArgument(fmt.Errorf("cache key: bad blob digest %q", k.Digest))
	}
	if !validName(k.Part) {
		return "", errdefs.InvalidArgument(fmt.Errorf("cache key: bad part name %q", k.Part))
	}
	return filepath.Join(c.dir, schema, alg, hex, k.Part), nil
}

// Get returns the entry for k; ok is false when there is none.
func (c *Cache) Get(ctx context.Context, k Key) (data []byte, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	p, err := c.path(k)
	if err != nil {
		return nil, false, err
	}
	raw, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cache: %w", err)
	}
	data, ok = unframe(raw)
	if !ok {
		os.Remove(p)
		return nil, false, nil
	}
	now := time.Now()
	os.Chtimes(p, now, now) // recently used; failure only makes eviction less exact
	return data, true, nil
}

// Put stores data under k, replacing an entry there.
func (c *Cache) Put(ctx context.Context, k Key, data []byte) error {
	return c.PutAll(ctx, k.Digest, map[string][]byte{k.Part: data})
}

// PutAll stores several parts of the results of the blob with the given
// digest, under one lock.
func (c *Cache) PutAll(ctx context.Context, digest string, parts map[string][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	paths := make(map[string]string, len(parts))
	for part := range parts {
		p, err := c.path(Key{Digest: digest, Part: part})
		if err != nil {
			return err
		}
		paths[part] = p
	}
	unlock, err := c.lock(unix.LOCK_SH)
	if err != nil {
		return err
	}
	defer unlock()
	for part, data := range parts {
		if err := c.write(paths[part], data); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cache) write(p string, data []byte) error {
	t, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "put-*")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	_, err = t.Write(frame(data))
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			err = os.Rename(t.Name(), p)
		}
	}
	if err != nil {
		os.Remove(t.Name())
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// Stats says what a cache holds.
type Stats struct {
	Entries int
	Layers  int
	Size    int64 // bytes
}

// Stat counts the cache's entries.
func (c *Cache) Stat(ctx context.Context) (Stats, error) {
	es, err := c.entries(ctx)
	if err != nil {
		return Stats{}, err
	}
	var s Stats
	layers := map[string]bool{}
	for _, e := range es {
		s.Entries++
		s.Size += e.size
		layers[filepath.Dir(e.path)] = true
	}
	s.Layers = len(layers)
	return s, nil
}

type entry struct {
	path  string
	size  int64
	mtime time.Time
}

func (c *Cache) entries(ctx context.Context) ([]entry, error) {
	var out []entry
	err := filepath.WalkDir(filepath.Join(c.dir, schema), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		out = append(out, entry{path: p, size: fi.Size(), mtime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return out, nil
}

// TrimInterval is how often [Cache.MaybeTrim] checks the size of a cache.
const TrimInterval = 10 * time.Minute

// MaybeTrim trims the cache (see Trim) unless that was done less than
// TrimInterval ago, by any process: writers call it after writing, so that
// the size limit holds without a walk of the whole cache on every write.
func (c *Cache) MaybeTrim(ctx context.Context) (int64, error) {
	stamp := filepath.Join(c.dir, "trimmed")
	if fi, err := os.Stat(stamp); err == nil && time.Since(fi.ModTime()) < TrimInterval {
		return 0, nil
	}
	return c.Trim(ctx)
}

// Trim removes the least recently used entries until the cache is within
// its size limit (to 90% of it, so that it does not trim on every write),
// and leftovers of interrupted writes older than an hour. It returns the
// number of bytes removed.
func (c *Cache) Trim(ctx context.Context) (int64, error) {
	unlock, err := c.lock(unix.LOCK_EX)
	if err != nil {
		return 0, err
	}
	defer unlock()
	stamp := filepath.Join(c.dir, "trimmed")
	if f, err := os.Create(stamp); err == nil {
		f.Close()
	}
	c.removeStaleTemp()
	if c.maxSize <= 0 {
		return 0, nil
	}
	es, err := c.entries(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, e := range es {
		total += e.size
	}
	if total <= c.maxSize {
		return 0, nil
	}
	slices.SortFunc(es, func(a, b entry) int { return a.mtime.Compare(b.mtime) })
	target := c.maxSize / 10 * 9
	var freed int64
	for _, e := range es {
		if total-freed <= target {
			break
		}
		if err := os.Remove(e.path); err == nil {
			freed += e.size
			os.Remove(filepath.Dir(e.path)) // only when empty
		}
	}
	return freed, nil
}

func (c *Cache) removeStaleTemp() {
	ents, _ := os.ReadDir(filepath.Join(c.dir, "tmp"))
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.Remove(filepath.Join(c.dir, "tmp", e.Name()))
		}
	}
}

// Clean removes every entry. It waits for writers of other processes to
// finish their current write.
func (c *Cache) Clean(ctx context.Context) (Stats, error) {
	unlock, err := c.lock(unix.LOCK_EX)
	if err != nil {
		return Stats{}, err
	}
	defer unlock()
	st, err := c.Stat(ctx)
	if err != nil {
		return Stats{}, err
	}
	// Move the entries aside in one step, so that readers see all or none.
	trash := filepath.Join(c.dir, "tmp", fmt.Sprintf("clean-%d", time.Now().UnixNano()))
	if err := os.Rename(filepath.Join(c.dir, schema), trash); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Stats{}, fmt.Errorf("cache: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(c.dir, schema), 0o755); err != nil {
		return Stats{}, fmt.Errorf("cache: %w", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return Stats{}, fmt.Errorf("cache: %w", err)
	}
	// Layouts of other versions go too.
	ents, _ := os.ReadDir(c.dir)
	for _, e := range ents {
		if e.IsDir() && e.Name() != schema && e.Name() != "tmp" && strings.HasPrefix(e.Name(), "v") {
			os.RemoveAll(filepath.Join(c.dir, e.Name()))
		}
	}
	return st, nil
}

// lock takes the cache's file lock (unix.LOCK_SH or LOCK_EX).
func (c *Cache) lock(how int) (func(), error) {
	f, err := os.OpenFile(filepath.Join(c.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cache: lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// An entry is magic, the SHA-256 of the data, then the data.
var magic = []byte("lading-cache\x00\x01")

func frame(data []byte) []byte {
	sum := sha256.Sum256(data)
	out := make([]byte, 0, len(magic)+len(sum)+len(data))
	return append(append(append(out, magic...), sum[:]...), data...)
}

func unframe(raw []byte) ([]byte, bool) {
	n := len(magic) + sha256.Size
	if len(raw) < n || !bytes.Equal(raw[:len(magic)], magic) {
		return nil, false
	}
	data := raw[n:]
	sum := sha256.Sum256(data)
	return data, bytes.Equal(sum[:], raw[len(magic):n])
}

func validName(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._@+-", c) >= 0) {
			return false
		}
	}
	return true
}

func validHex(s string) bool {
	if len(s) < 32 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
