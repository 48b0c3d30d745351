package vulndb

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/lading-dev/lading/internal/errdefs"
)

// FileName is the database's file name in its directory.
const FileName = "vuln.db"

// DefaultDir is where lading keeps the database: $XDG_CACHE_HOME/lading/db,
// or ~/.cache/lading/db.
func DefaultDir() string {
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "lading", "db")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "lading", "db")
	}
	return filepath.Join(os.TempDir(), "lading", "db")
}

// DefaultPath is DefaultDir's FileName.
func DefaultPath() string { return filepath.Join(DefaultDir(), FileName) }

// DB is an open database. Its methods are safe for concurrent use; the
// values they return stay valid after Close.
type DB struct {
	path    string
	data    []byte
	unmap   func() error
	meta    Metadata
	index   []byte
	keys    []byte
	advs    []byte
	vulns   []byte
	sources []string
	// fences are every fenceStep-th key, copied to the heap when the
	// database opens: a lookup finds its block among them and searches
	// only that block of the mapped index, so it touches a few pages of
	// the file rather than one or two per step of a search over all keys.
	fences [][]byte

	mu     sync.RWMutex
	closed bool
}

// Open opens the database at path read-only and maps it into memory. A
// missing file is an error of class errdefs.ErrNotFound that says how to get
// a database; a database of another schema version is refused with
// errdefs.ErrUnsupported, saying what to do; a damaged one fails with
// errdefs.ErrCorrupt.
func Open(path string) (*DB, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound(fmt.Errorf("no vulnerability database at %s: download one with `lading db update`, pull one with `lading db pull REF`, or build one offline with `lading db build --from FEEDS -o %s`", path, path))
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errdefs.InvalidArgument(fmt.Errorf("vulnerability database %s is not a regular file", path))
	}
	if st.Size() < headerSize {
		return nil, errdefs.Corrupt(fmt.Errorf("%s is not a lading vulnerability database (%d bytes)", path, st.Size()))
	}
	if st.Size() > 1<<40 || int64(int(st.Size())) != st.Size() {
		return nil, errdefs.TooLarge(fmt.Errorf("vulnerability database %s: %d bytes", path, st.Size()))
	}
	data, unmap, err := mapFile(f, int(st.Size()))
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	db, err := newDB(path, data)
	if err != nil {
		unmap()
		return nil, err
	}
	db.unmap = unmap
	return db, nil
}

// newDB checks data and reads its header and metadata.
func newDB(path string, data []byte) (*DB, error) {
	h, err := parseHeader(path, data)
	if err != nil {
		return nil, err
	}
	db := &DB{
		path:  path,
		data:  data,
		index: data[h.index.off : h.index.off+h.index.n*entrySize],
		keys:  data[h.keys.off : h.keys.off+h.keys.n],
		advs:  data[h.advs.off : h.advs.off+h.advs.n],
		vulns: data[h.vulns.off : h.vulns.off+h.vulns.n],
	}
	if err := json.Unmarshal(data[h.meta.off:h.meta.off+h.meta.n], &db.meta); err != nil {
		return nil, errdefs.Corrupt(fmt.Errorf("vulnerability database %s: metadata: %v", path, err))
	}
	if db.meta.Schema != SchemaVersion {
		return nil, schemaError(path, uint32(db.meta.Schema))
	}
	for _, s := range db.meta.Sources {
		db.sources = append(db.sources, s.Name)
	}
	n := len(db.index) / entrySize
	for i := 0; i < n; i += fenceStep {
		db.fences = append(db.fences, bytes.Clone(db.key(i)))
	}
	return db, nil
}

// fenceStep is how many index entries a fence stands for.
const fenceStep = 256

// Path returns the file the database was opened from.
func (db *DB) Path() string { return db.path }

// Metadata returns the database's metadata.
func (db *DB) Metadata() Metadata { return db.meta }

// Close unmaps the database.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	if db.unmap != nil {
		return db.unmap()
	}
	return nil
}

var errClosed = errors.New("vulnerability database is closed")

func (db *DB) entry(i int) (keyOff, keyLen, valOff, valLen uint32) {
	e := db.index[i*entrySize:]
	return binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:]),
		binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:])
}

// key returns index entry i's key, or nil when it points outside the keys.
func (db *DB) key(i int) []byte {
	off, n, _, _ := db.entry(i)
	if uint64(off)+uint64(n) > uint64(len(db.keys)) {
		return nil
	}
	return db.keys[off : off+n]
}

// Advisories returns every advisory for package name in namespace (as
// Namespace returns it: "npm", "alpine:3.10"); none is not an error.
func (db *DB) Advisories(ctx context.Context, namespace, name string) ([]Advisory, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return nil, errClosed
	}
	name = NormalizeName(namespace, name)
	var buf [192]byte
	want := append(append(append(buf[:0], namespace...), 0), name...)
	n := len(db.index) / entrySize
	// The block whose first key is the last one <= want holds want, if
	// anything does.
	b := sort.Search(len(db.fences), func(i int) bool { return bytes.Compare(db.fences[i], want) > 0 }) - 1
	if b < 0 {
		return nil, nil
	}
	lo, hi := b*fenceStep, min((b+1)*fenceStep, n)
	i := lo + sort.Search(hi-lo, func(i int) bool { return bytes.Compare(db.key(lo+i), want) >= 0 })
	if i == hi || !bytes.Equal(db.key(i), want) {
		return nil, nil
	}
	_, _, off, l := db.entry(i)
	if uint64(off)+uint64(l) > uint64(len(db.advs)) {
		return nil, db.corrupt(namespace, name, "value out of bounds")
	}
	out, err := decodeAdvisories(string(db.advs[off:off+l]), db.sources)
	if err != nil {
		return nil, fmt.Errorf("%s %s in %s: %w", namespace, name, db.path, err)
	}
	return out, nil
}

func (db *DB) corrupt(ns, name, what string) error {
	return errdefs.Corrupt(fmt.Errorf("vulnerability database %s: %s %s: %s", db.path, ns, name, what))
}

func decodeAdvisories(s string, sources []string) ([]Advisory, error) {
	c := &cursor{s: s}
	n := c.count(4)
	out := make([]Advisory, 0, n)
	// Ranges and events are cut from shared chunks: a package with
	// hundreds of advisories costs a few allocations, not two per
	// advisory. Full slice expressions keep an append by a caller from
	// spilling into a neighbour.
	var ranges []Range
	var events []Event
	takeRanges := func(k int) []Range {
		if k > cap(ranges)-len(ranges) {
			ranges = make([]Range, 0, max(k, n, 4))
		}
		r := ranges[len(ranges) : len(ranges)+k : len(ranges)+k]
		ranges = ranges[:len(ranges)+k]
		return r
	}
	takeEvents := func(k int) []Event {
		if k > cap(events)-len(events) {
			events = make([]Event, 0, max(k, 2*n, 8))
		}
		e := events[len(events) : len(events)+k : len(events)+k]
		events = events[:len(events)+k]
		return e
	}
	for range n {
		var a Advisory
		off := c.uvarint()
		a.VulnID = c.str()
		src := c.uvarint()
		a.Status = Status(c.byte())
		flags := c.byte()
		if c.err != nil {
			break
		}
		if off > 1<<32-1 || src >= uint64(len(sources)) {
			c.fail("reference")
			break
		}
		a.vuln, a.Source = uint32(off), sources[src]
		a.SourceID = a.VulnID
		if flags&flagSourceID != 0 {
			a.SourceID = c.str()
		}
		if flags&flagSeverity != 0 {
			a.Severity = c.severity()
		}
		if flags&flagNote != 0 {
			a.Note = c.str()
		}
		if flags&flagRanges != 0 {
			a.Ranges = takeRanges(c.count(2))
			for i := range a.Ranges {
				r := &a.Ranges[i]
				r.Kind = RangeKind(c.byte())
				if r.Kind == RangeNPM {
					r.Expr, r.Fixed = c.str(), c.str()
					continue
				}
				r.Events = takeEvents(c.count(2))
				for j := range r.Events {
					r.Events[j] = Event{EventKind(c.byte()), c.str()}
				}
			}
		}
		if flags&flagVersions != 0 {
			a.Versions = c.strs()
		}
		out = append(out, a)
	}
	if c.err != nil {
		return nil, c.err
	}
	return out, nil
}

// Vulnerability returns the vulnerability an advisory from this database
// refers to.
func (db *DB) Vulnerability(ctx context.Context, a Advisory) (Vulnerability, error) {
	if err := ctx.Err(); err != nil {
		return Vulnerability{}, err
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return Vulnerability{}, errClosed
	}
	off := uint64(a.vuln)
	if off >= uint64(len(db.vulns)) {
		return Vulnerability{}, db.corrupt(a.VulnID, "", "vulnerability out of bounds")
	}
	n, k := binary.Uvarint(db.vulns[off:])
	if k <= 0 || n > uint64(len(db.vulns))-off-uint64(k) {
		return Vulnerability{}, db.corrupt(a.VulnID, "", "vulnerability out of bounds")
	}
	start := off + uint64(k)
	v, err := decodeVulnerability(string(db.vulns[start : start+n]))
	if err != nil {
		return Vulnerability{}, fmt.Errorf("%s in %s: %w", a.VulnID, db.path, err)
	}
	if v.ID != a.VulnID {
		return Vulnerability{}, db.corrupt(a.VulnID, "", "advisory points at "+v.ID)
	}
	return v, nil
}

func decodeVulnerability(s string) (Vulnerability, error) {
	c := &cursor{s: s}
	var v Vulnerability
	v.ID = c.str()
	v.Aliases = c.strs()
	v.Title = c.str()
	v.Description = c.str()
	v.References = c.strs()
	v.Published = c.time()
	v.Modified = c.time()
	if n := c.count(5); n > 0 {
		v.Severities = make([]Severity, n)
		for i := range v.Severities {
			v.Severities[i] = c.severity()
		}
	}
	return v, c.err
}

// Keys calls fn with the namespace and name of every package in the
// database, in key order, until fn returns false.
func (db *DB) Keys(fn func(namespace, name string) bool) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return errClosed
	}
	for i := range len(db.index) / entrySize {
		k := db.key(i)
		ns, name, ok := bytes.Cut(k, []byte{0})
		if k == nil || !ok {
			return db.corrupt("", "", fmt.Sprintf("key %d", i))
		}
		if !fn(string(ns), string(name)) {
			return nil
		}
	}
	return nil
}
