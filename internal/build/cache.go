package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// cacheVersion changes whenever what a step produces for a key changes.
const cacheVersion = "lading-build-cache-v1"

// stepCache is the per-instruction build cache: one small JSON file per
// step key under <root>/cache/build/, naming the layer the step made (a
// blob of the store) and when. A key is the hash of the parent's key and
// everything the step depends on (see stepKey); it never includes a file's
// modification time. The files are written through a temp file and a
// rename, so several builds may share the cache and a crash leaves no half
// entry. A layer blob that was pruned from the store is a miss.
type stepCache struct {
	dir string
}

type cacheEntry struct {
	Created time.Time      `json:"created"`
	Layer   *v1.Descriptor `json:"layer,omitempty"`
	DiffID  v1.Hash        `json:"diffID,omitzero"`
}

func (c *stepCache) path(key v1.Hash) string {
	return filepath.Join(c.dir, key.Hex[:2], key.Hex)
}

func (c *stepCache) get(key v1.Hash) (*cacheEntry, bool) {
	if c == nil {
		return nil, false
	}
	b, err := os.ReadFile(c.path(key))
	if err != nil {
		return nil, false
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil {
		return nil, false
	}
	return &e, true
}

func (c *stepCache) put(key v1.Hash, e *cacheEntry) error {
	if c == nil {
		return nil
	}
	p := c.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// clean removes every entry (lading cache clean).
func (c *stepCache) clean() error {
	err := os.RemoveAll(c.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// stepKey hashes the parent key and a step's description (any JSON value).
func stepKey(parent v1.Hash, desc any) v1.Hash {
	h := sha256.New()
	h.Write([]byte(cacheVersion))
	h.Write([]byte{0})
	h.Write([]byte(parent.String()))
	h.Write([]byte{0})
	b, _ := json.Marshal(desc)
	h.Write(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}
