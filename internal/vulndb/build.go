package vulndb

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/version"
)

// Metadata describes a database: its schema, when it was built and from
// what. It is stored as JSON in the file and shown by `lading db info`.
type Metadata struct {
	Schema          int            `json:"schema"`
	BuiltAt         time.Time      `json:"built_at"`
	Builder         string         `json:"builder,omitempty"`
	Sources         []SourceInfo   `json:"sources"`
	Vulnerabilities int            `json:"vulnerabilities"`
	Advisories      int            `json:"advisories"`
	Packages        int            `json:"packages"`
	Namespaces      map[string]int `json:"namespaces"` // advisories per namespace
}

// SourceInfo counts what a database holds from one data source.
type SourceInfo struct {
	Name       string         `json:"name"`
	Files      int            `json:"files"`
	Records    int            `json:"records"`
	Advisories int            `json:"advisories"`
	Skipped    map[string]int `json:"skipped,omitempty"` // what was left out, by reason
}

// A Builder collects records from the feeds and writes a database: it
// merges records through their aliases, merges the advisories of one
// source for one package and vulnerability, sorts range events, and counts.
//
// Records stream through it: Add keeps in memory only what merging needs
// (IDs, aliases, the package each advisory is about) and spills the rest
// (text, ranges, versions) to an unlinked temporary file, and Write reads
// it back one vulnerability and one package at a time as it writes the
// database. Memory grows with the number of records and advisories, not
// with their size. A Builder is not safe for concurrent use.
type Builder struct {
	log     *slog.Logger
	sources map[string]*SourceInfo
	seen    map[uint64]int // record identity → index in recs
	seed    maphash.Seed
	tmpDir  string
	spill   *spill
	err     error // the first error spilling a record; Write returns it
	recs    []recMeta
	affs    []affRef
	keys    map[string]uint32 // "namespace\x00package" → index in keyNames
	names   []string
	strs    map[string]string // interned sources, namespaces and IDs
}

// BuilderOption configures a Builder.
type BuilderOption func(*Builder)

// WithBuildTempDir sets where a Builder spills records (default
// os.TempDir()).
func WithBuildTempDir(dir string) BuilderOption { return func(b *Builder) { b.tmpDir = dir } }

// NewBuilder returns an empty Builder.
func NewBuilder(log *slog.Logger, opts ...BuilderOption) *Builder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Builder{log: log, sources: map[string]*SourceInfo{}, seen: map[uint64]int{}, seed: maphash.MakeSeed(),
		keys: map[string]uint32{}, strs: map[string]string{}}
	for _, o := range opts {
		o(b)
	}
	return b
}

// identity hashes what makes two records the same record: source, IDs and
// what they say about which packages.
func (b *Builder) identity(r *Record) uint64 {
	var h maphash.Hash
	h.SetSeed(b.seed)
	str := func(s string) {
		h.WriteString(s)
		h.WriteByte(0)
	}
	str(r.Source)
	str(r.ID)
	str(r.SourceID)
	for _, a := range r.Affected {
		str(a.Namespace)
		str(a.Package)
		h.WriteByte(byte(a.Status))
		for _, rg := range a.Ranges {
			h.WriteByte(byte(rg.Kind))
			str(rg.Expr)
			for _, e := range rg.Events {
				h.WriteByte(byte(e.Kind))
				str(e.Version)
			}
		}
		for _, v := range a.Versions {
			str(v)
		}
		h.WriteByte(1)
	}
	return h.Sum64()
}

func (b *Builder) source(name string) *SourceInfo {
	s := b.sources[name]
	if s == nil {
		s = &SourceInfo{Name: name}
		b.sources[name] = s
	}
	return s
}

// Add adds a record. Its affected packages with an empty namespace or name
// are dropped and counted. A record that was added already (the same source,
// IDs, packages and ranges: a feed's index next to its files, one zip inside
// another) is counted as a duplicate; the one modified last is kept.
func (b *Builder) Add(r Record) {
	s := b.source(r.Source)
	kept := r.Affected[:0:0]
	for _, a := range r.Affected {
		a.Namespace = strings.TrimSpace(a.Namespace)
		a.Package = NormalizeName(a.Namespace, a.Package)
		if a.Namespace == "" || a.Package == "" || strings.IndexByte(a.Namespace, 0) >= 0 {
			b.Skip(r.Source, "package without namespace or name")
			continue
		}
		if a.Status == StatusUnknown {
			a.Status = StatusAffected
		}
		kept = append(kept, a)
	}
	r.Affected = kept
	id := b.identity(&r)
	if i, ok := b.seen[id]; ok {
		b.Skip(r.Source, "duplicate record")
		if r.Modified.After(b.recs[i].modified) {
			b.store(i, &r)
		}
		return
	}
	b.seen[id] = len(b.recs)
	s.Records++
	b.recs = append(b.recs, recMeta{})
	b.store(len(b.recs)-1, &r)
}

// AddFile counts a file read for a source.
func (b *Builder) AddFile(source string) { b.source(source).Files++ }

// Skip counts something a source's parser left out, by reason ("malformed
// record", "withdrawn", "GIT range", ...).
func (b *Builder) Skip(source, reason string) {
	s := b.source(source)
	if s.Skipped == nil {
		s.Skipped = map[string]int{}
	}
	s.Skipped[reason]++
}

// aliasSets merges IDs through aliases, never putting two CVEs together: a
// record that names two CVEs as aliases (it happens) does not make them one
// vulnerability.
type aliasSets struct {
	index  map[string]int
	ids    []string
	parent []int
	cve    []string // per root: its CVE, if any
	record []bool   // the ID is a record's own ID
}

func (u *aliasSets) id(s string) int {
	if i, ok := u.index[s]; ok {
		return i
	}
	i := len(u.ids)
	u.index[s] = i
	u.ids = append(u.ids, s)
	u.parent = append(u.parent, i)
	c := ""
	if strings.HasPrefix(s, "CVE-") {
		c = s
	}
	u.cve = append(u.cve, c)
	u.record = append(u.record, false)
	return i
}

func (u *aliasSets) find(i int) int {
	for u.parent[i] != i {
		u.parent[i] = u.parent[u.parent[i]]
		i = u.parent[i]
	}
	return i
}

// union joins the sets of a and b; it reports false when both hold
// different CVEs.
func (u *aliasSets) union(a, b int) bool {
	ra, rb := u.find(a), u.find(b)
	if ra == rb {
		return true
	}
	if u.cve[ra] != "" && u.cve[rb] != "" && u.cve[ra] != u.cve[rb] {
		return false
	}
	if u.cve[ra] == "" {
		u.cve[ra] = u.cve[rb]
	}
	u.parent[rb] = ra
	return true
}

// canonicalID picks a set's vulnerability ID: its CVE, else a GHSA, else
// the first record ID in sort order.
func canonicalID(u *aliasSets, root int, members []int) string {
	if c := u.cve[root]; c != "" {
		return c
	}
	var ghsa, rec, any string
	for _, m := range members {
		id := u.ids[m]
		if strings.HasPrefix(id, "GHSA-") && (ghsa == "" || id < ghsa) {
			ghsa = id
		}
		if u.record[m] && (rec == "" || id < rec) {
			rec = id
		}
		if any == "" || id < any {
			any = id
		}
	}
	switch {
	case ghsa != "":
		return ghsa
	case rec != "":
		return rec
	}
	return any
}

// mergeVulnerability combines the records of one vulnerability. Text comes
// first from a record published under the vulnerability's own ID, then from
// other records about it, and last from advisories that fix it among others
// (whose titles are not taken: a DSA's names the advisory, not the flaw);
// within each, by source and ID. References and severities are united.
func mergeVulnerability(id string, recs []*Record) Vulnerability {
	rank := func(r *Record) int {
		switch {
		case r.SourceID != "" && r.SourceID != r.ID:
			return 2
		case r.ID == id:
			return 0
		}
		return 1
	}
	slices.SortFunc(recs, func(a, b *Record) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.Source, b.Source), cmp.Compare(a.ID, b.ID))
	})
	v := Vulnerability{ID: id}
	seenRef := map[string]bool{}
	type sevKey struct {
		src, vec string
		t        SeverityType
	}
	seenSev := map[sevKey]bool{}
	for _, r := range recs {
		if v.Title == "" && rank(r) < 2 {
			// An advisory's title names the advisory ("DSA-5380-1
			// xorg-server - security update"), not this flaw.
			v.Title = strings.TrimSpace(r.Title)
		}
		if v.Description == "" {
			v.Description = strings.TrimSpace(r.Description)
		}
		for _, ref := range r.References {
			if ref = strings.TrimSpace(ref); ref != "" && !seenRef[ref] {
				seenRef[ref] = true
				v.References = append(v.References, ref)
			}
		}
		for _, s := range r.Severities {
			k := sevKey{s.Source, s.Vector, s.Type}
			if !s.IsZero() && !seenSev[k] {
				seenSev[k] = true
				v.Severities = append(v.Severities, s)
			}
		}
		if !r.Published.IsZero() && r.Published.Unix() > 0 && (v.Published.IsZero() || r.Published.Before(v.Published)) {
			v.Published = r.Published.UTC()
		}
		if !r.Modified.IsZero() && r.Modified.Unix() > 0 && r.Modified.After(v.Modified) {
			v.Modified = r.Modified.UTC()
		}
	}
	return v
}

// mergeAdvisory adds what another record of the same source says about the
// same package and vulnerability (a DSA and its regression update, say).
func mergeAdvisory(dst *Advisory, sourceID string, a Affected) {
	if sourceID < dst.SourceID {
		dst.SourceID = sourceID
	}
	switch {
	case dst.Status == StatusNotAffected && a.Status != StatusNotAffected:
		dst.Status, dst.Ranges, dst.Versions = a.Status, nil, nil
	case a.Status == StatusNotAffected && dst.Status != StatusNotAffected:
		return
	}
	for _, r := range a.Ranges {
		if !slices.ContainsFunc(dst.Ranges, func(x Range) bool { return rangeEqual(x, r) }) {
			dst.Ranges = append(dst.Ranges, r)
		}
	}
	for _, v := range a.Versions {
		if !slices.Contains(dst.Versions, v) {
			dst.Versions = append(dst.Versions, v)
		}
	}
	if dst.Severity.IsZero() {
		dst.Severity = a.Severity
	}
	if dst.Note == "" {
		dst.Note = a.Note
	}
}

func rangeEqual(a, b Range) bool {
	return a.Kind == b.Kind && a.Expr == b.Expr && a.Fixed == b.Fixed && slices.Equal(a.Events, b.Events)
}

// tidyAdvisory sorts range events and drops explicit versions the ranges
// already cover, so that an OSV record listing every affected version next to
// its range costs the range only.
func tidyAdvisory(eco, semver version.Comparator, a *Advisory) {
	sorted := true
	a.Ranges = slices.Clone(a.Ranges) // shared with other advisories; events are replaced below
	for i := range a.Ranges {
		r := &a.Ranges[i]
		if r.Kind == RangeNPM {
			continue
		}
		var ok bool
		r.Events, ok = sortEvents(comparatorFor(r.Kind, eco, semver), r.Events)
		sorted = sorted && ok
	}
	if len(a.Ranges) > 0 && sorted && len(a.Versions) > 0 {
		rangesOnly := Advisory{Status: StatusAffected, Ranges: a.Ranges}
		kept := make([]string, 0, len(a.Versions))
		for _, v := range a.Versions {
			if in, _, err := rangesOnly.Affects(eco, semver, v); err != nil || !in {
				kept = append(kept, v)
			}
		}
		a.Versions = kept
	}
	if len(a.Versions) == 0 {
		a.Versions = nil
	}
}

const (
	flagSourceID = 1 << iota
	flagSeverity
	flagNote
	flagRanges
	flagVersions
)

// countingWriter counts what it writes and keeps the first error.
type countingWriter struct {
	w   *bufio.Writer
	n   uint64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += uint64(n)
	c.err = err
	return n, err
}

func (c *countingWriter) flush() error {
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}

func encodeAdvisory(e *encoder, a *Advisory, vuln, source uint64) {
	e.uvarint(vuln)
	e.str(a.VulnID)
	e.uvarint(source)
	e.byte(byte(a.Status))
	var flags byte
	if a.SourceID != a.VulnID {
		flags |= flagSourceID
	}
	if !a.Severity.IsZero() {
		flags |= flagSeverity
	}
	if a.Note != "" {
		flags |= flagNote
	}
	if len(a.Ranges) > 0 {
		flags |= flagRanges
	}
	if len(a.Versions) > 0 {
		flags |= flagVersions
	}
	e.byte(flags)
	if flags&flagSourceID != 0 {
		e.str(a.SourceID)
	}
	if flags&flagSeverity != 0 {
		e.severity(a.Severity)
	}
	if flags&flagNote != 0 {
		e.str(a.Note)
	}
	if flags&flagRanges != 0 {
		e.uvarint(uint64(len(a.Ranges)))
		for _, r := range a.Ranges {
			e.byte(byte(r.Kind))
			if r.Kind == RangeNPM {
				e.str(r.Expr)
				e.str(r.Fixed)
				continue
			}
			e.uvarint(uint64(len(r.Events)))
			for _, ev := range r.Events {
				e.byte(byte(ev.Kind))
				e.str(ev.Version)
			}
		}
	}
	if flags&flagVersions != 0 {
		e.strs(a.Versions)
	}
}

// WriteFileAtomic writes a file through a temporary file in the same
// directory, synced and then renamed over path, so that readers see the old
// file or the new one and a failed write leaves nothing behind. Errors of
// the file system name path, never the temporary file.
func WriteFileAtomic(path string, write func(*os.File) error) (err error) {
	// A rename replaces whatever has the name: a symbolic link would lose
	// its target, a device or a pipe would be replaced by a file (as root,
	// /dev/null itself). The file is written where a link points; anything
	// that is not a regular file is refused.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return &fs.PathError{Op: "write", Path: path, Err: fmt.Errorf("not a regular file (%s): a vulnerability database is a file of its own", fi.Mode().Type())}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return namedFileError("create", path, "", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return namedFileError("write", path, tmp, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return namedFileError("chmod", path, tmp, err)
	}
	if err := f.Sync(); err != nil {
		return namedFileError("write", path, tmp, err)
	}
	// The file was written in order, so the page cache holds it in large
	// folios, and a mapping faults a whole folio in per touch: a scan's
	// resident set would count megabytes it never reads. Readers map the
	// file randomly (see mapFile); let them start from an empty cache.
	dropCache(f)
	if err := f.Close(); err != nil {
		return namedFileError("write", path, tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return namedFileError("write", path, tmp, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// namedFileError makes err, an error of the file system about the
// temporary file tmp ("": any file) that becomes path, an error about path;
// other errors pass unchanged.
func namedFileError(op, path, tmp string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && (tmp == "" || pe.Path == tmp) {
		return &fs.PathError{Op: op, Path: path, Err: pe.Err}
	}
	var le *os.LinkError
	if errors.As(err, &le) && le.Old == tmp {
		return &fs.PathError{Op: op, Path: path, Err: le.Err}
	}
	return err
}
