package vulndb

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/version"
)

// How a Builder holds records (see Builder): per record, in memory, what
// merging needs; in the spill file, the record's text and each of its
// advisories, encoded as the database encodes them.
//
//	spill file   [text of record 0][affected 0.0][affected 0.1]...[text of record 1]...
//	recs         id, source, source ID, aliases, modified; where its text is
//	affs         per affected package: its key, its record, where it is

// span is where something is in the spill file.
type span struct {
	off int64
	n   uint32
}

// recMeta is what merging needs of a record.
type recMeta struct {
	id, sourceID, source string
	aliases              []string
	modified             time.Time
	text                 span
	affFirst, affN       uint32 // its entries in Builder.affs
}

// affRef is one affected package of a record (24 bytes: there are many).
type affRef struct {
	key uint32 // index in Builder.names
	rec uint32
	idx uint32 // the record's idx-th affected package
	n   uint32 // its encoding's length in the spill file
	off int64  // and offset
}

func (a affRef) at() span { return span{a.off, a.n} }

// spill is an unlinked temporary file written once and read at random.
type spill struct {
	f *os.File
	w *bufio.Writer
	n int64
}

func (s *spill) put(b []byte) (span, error) {
	sp := span{off: s.n, n: uint32(len(b))}
	if _, err := s.w.Write(b); err != nil {
		return span{}, err
	}
	s.n += int64(len(b))
	return sp, nil
}

func (s *spill) get(sp span) (string, error) {
	b := make([]byte, sp.n)
	if _, err := s.f.ReadAt(b, sp.off); err != nil {
		return "", fmt.Errorf("vulnerability database build: spill: %w", err)
	}
	return string(b), nil
}

func (s *spill) close() {
	if s != nil && s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// intern returns a copy of s shared by every equal string: a parser's
// strings may point into a whole file's contents.
func (b *Builder) intern(s string) string {
	if v, ok := b.strs[s]; ok {
		return v
	}
	s = strings.Clone(s)
	b.strs[s] = s
	return s
}

// store spills record r as record i (a new one, or the newer copy of a
// duplicate).
func (b *Builder) store(i int, r *Record) {
	if b.err != nil {
		return
	}
	if b.spill == nil {
		f, err := os.CreateTemp(b.tmpDir, "lading-vulndb-build-*")
		if err != nil {
			b.err = fmt.Errorf("vulnerability database build: %w", err)
			return
		}
		os.Remove(f.Name())
		b.spill = &spill{f: f, w: bufio.NewWriterSize(f, 1<<20)}
	}
	m := recMeta{id: strings.Clone(r.ID), sourceID: strings.Clone(r.SourceID), source: b.intern(r.Source), modified: r.Modified}
	for _, a := range r.Aliases {
		m.aliases = append(m.aliases, strings.Clone(a))
	}
	var e encoder
	e.str(r.Title)
	e.str(r.Description)
	e.strs(r.References)
	e.time(r.Published)
	e.time(r.Modified)
	e.uvarint(uint64(len(r.Severities)))
	for _, s := range r.Severities {
		e.severity(s)
	}
	var err error
	if m.text, err = b.spill.put(e.b); err != nil {
		b.err = err
		return
	}
	m.affFirst, m.affN = uint32(len(b.affs)), uint32(len(r.Affected))
	for k := range r.Affected {
		a := &r.Affected[k]
		e.b = e.b[:0]
		encodeAffected(&e, a)
		at, err := b.spill.put(e.b)
		if err != nil {
			b.err = err
			return
		}
		key := a.Namespace + "\x00" + a.Package
		ki, ok := b.keys[key]
		if !ok {
			key = strings.Clone(key)
			ki = uint32(len(b.names))
			b.keys[key] = ki
			b.names = append(b.names, key)
		}
		b.affs = append(b.affs, affRef{key: ki, rec: uint32(i), idx: uint32(k), n: at.n, off: at.off})
	}
	b.recs[i] = m
}

func encodeAffected(e *encoder, a *Affected) {
	e.byte(byte(a.Status))
	e.severity(a.Severity)
	e.str(a.Note)
	e.uvarint(uint64(len(a.Ranges)))
	for _, r := range a.Ranges {
		e.byte(byte(r.Kind))
		e.str(r.Expr)
		e.str(r.Fixed)
		e.uvarint(uint64(len(r.Events)))
		for _, ev := range r.Events {
			e.byte(byte(ev.Kind))
			e.str(ev.Version)
		}
	}
	e.strs(a.Versions)
}

func decodeAffected(s string) (Affected, error) {
	c := &cursor{s: s}
	var a Affected
	a.Status = Status(c.byte())
	a.Severity = c.severity()
	a.Note = c.str()
	if n := c.count(4); n > 0 {
		a.Ranges = make([]Range, n)
		for i := range a.Ranges {
			r := &a.Ranges[i]
			r.Kind = RangeKind(c.byte())
			r.Expr = c.str()
			r.Fixed = c.str()
			if k := c.count(2); k > 0 {
				r.Events = make([]Event, k)
				for j := range r.Events {
					r.Events[j] = Event{Kind: EventKind(c.byte()), Version: c.str()}
				}
			}
		}
	}
	a.Versions = c.strs()
	return a, c.err
}

// loadText reads back record i's text (and what recMeta holds) as a
// Record without packages.
func (b *Builder) loadText(i int) (*Record, error) {
	m := &b.recs[i]
	s, err := b.spill.get(m.text)
	if err != nil {
		return nil, err
	}
	c := &cursor{s: s}
	r := &Record{ID: m.id, SourceID: m.sourceID, Source: m.source, Aliases: m.aliases}
	r.Title = c.str()
	r.Description = c.str()
	r.References = c.strs()
	r.Published = c.time()
	r.Modified = c.time()
	if n := c.count(5); n > 0 {
		r.Severities = make([]Severity, n)
		for k := range r.Severities {
			r.Severities[k] = c.severity()
		}
	}
	return r, c.err
}

// merged is the result of merging IDs through aliases: the vulnerabilities
// in ID order, each with its records and aliases.
type merged struct {
	ids     []string // vulnerability IDs, sorted
	aliases [][]string
	recs    [][]int32 // per vulnerability, its records in Add order
	vulnOf  []int32   // per record, its vulnerability
}

// mergeIDs groups the records' IDs through aliases (never two CVEs) and
// picks each vulnerability's ID.
func (b *Builder) mergeIDs() merged {
	u := &aliasSets{index: map[string]int{}}
	conflicts := 0
	for _, r := range b.recs {
		ri := u.id(r.id)
		u.record[ri] = true
		for _, a := range r.aliases {
			if a = strings.TrimSpace(a); a != "" && a != r.id {
				if !u.union(ri, u.id(a)) {
					conflicts++
				}
			}
		}
	}
	if conflicts > 0 {
		b.log.Debug("aliases naming two CVEs were not merged", "count", conflicts)
	}
	members := map[int][]int{}
	for i := range u.ids {
		r := u.find(i)
		members[r] = append(members[r], i)
	}
	// Vulnerabilities are the sets that hold a record.
	vulnOfRoot := map[int]int32{}
	var roots []int
	for _, r := range b.recs {
		root := u.find(u.index[r.id])
		if _, ok := vulnOfRoot[root]; !ok {
			vulnOfRoot[root] = -1
			roots = append(roots, root)
		}
	}
	type vuln struct {
		id   string
		root int
	}
	vs := make([]vuln, len(roots))
	for i, root := range roots {
		vs[i] = vuln{canonicalID(u, root, members[root]), root}
	}
	slices.SortFunc(vs, func(a, b vuln) int { return cmp.Compare(a.id, b.id) })
	m := merged{ids: make([]string, len(vs)), aliases: make([][]string, len(vs)), recs: make([][]int32, len(vs)), vulnOf: make([]int32, len(b.recs))}
	for i, v := range vs {
		m.ids[i] = v.id
		vulnOfRoot[v.root] = int32(i)
		for _, k := range members[v.root] {
			if id := u.ids[k]; id != v.id {
				m.aliases[i] = append(m.aliases[i], id)
			}
		}
		slices.Sort(m.aliases[i])
	}
	for i, r := range b.recs {
		v := vulnOfRoot[u.find(u.index[r.id])]
		m.vulnOf[i] = v
		m.recs[v] = append(m.recs[v], int32(i))
	}
	return m
}

// Write merges what was added and writes the database to path (write, then
// rename). meta's BuiltAt and Builder are kept; the rest is filled in. It
// returns the metadata written. A Builder writes once: Write reads the
// spilled records back, one vulnerability and one package at a time, and
// lets them go.
func (b *Builder) Write(ctx context.Context, path string, meta Metadata) (Metadata, error) {
	defer b.spill.close()
	if meta.BuiltAt.IsZero() {
		meta.BuiltAt = time.Now().UTC()
	}
	meta.Schema = SchemaVersion
	if b.err != nil {
		return meta, b.err
	}
	if b.spill != nil {
		if err := b.spill.w.Flush(); err != nil {
			return meta, fmt.Errorf("vulnerability database build: spill: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return meta, err
	}
	m := b.mergeIDs()
	b.seen, b.strs = nil, nil
	if err := ctx.Err(); err != nil {
		return meta, err
	}
	// Sources, in name order; advisories refer to them by index.
	meta.Sources = meta.Sources[:0]
	for _, s := range b.sources {
		meta.Sources = append(meta.Sources, *s)
	}
	slices.SortFunc(meta.Sources, func(a, b SourceInfo) int { return cmp.Compare(a.Name, b.Name) })
	err := WriteFileAtomic(path, func(f *os.File) error {
		return b.writeDB(ctx, f, &meta, m)
	})
	return meta, err
}

// writeDB writes the file: a header placeholder, the vulnerabilities, the
// advisories, the keys, the index and the metadata (counted on the way),
// streamed; then the header, now that the sections' places are known.
func (b *Builder) writeDB(ctx context.Context, f *os.File, meta *Metadata, m merged) error {
	w := &countingWriter{w: bufio.NewWriterSize(f, 1<<20)}
	w.Write(make([]byte, headerSize))
	var h header
	h.schema = SchemaVersion

	vulnOff, err := b.writeVulns(ctx, w, &h, m)
	if err != nil {
		return err
	}
	keys, index, err := b.writeAdvisories(ctx, w, &h, meta, m, vulnOff)
	if err != nil {
		return err
	}
	meta.Vulnerabilities = len(m.ids)
	h.keys.off = w.n
	w.Write(keys)
	h.keys.n = w.n - h.keys.off
	h.index = section{w.n, uint64(len(index) / entrySize)}
	w.Write(index)

	mj, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	h.meta = section{w.n, uint64(len(mj))}
	w.Write(mj)
	h.size = w.n
	if h.vulns.n > maxSection {
		return errdefs.TooLarge(fmt.Errorf("vulnerability database: vulnerabilities exceed 4 GiB"))
	}
	if err := w.flush(); err != nil {
		return err
	}
	_, err = f.WriteAt(h.marshal(), 0)
	return err
}

// writeVulns writes the vulnerabilities in ID order, each merged from its
// records, and returns where each one is in the section.
func (b *Builder) writeVulns(ctx context.Context, w *countingWriter, h *header, m merged) ([]uint64, error) {
	var e encoder
	h.vulns.off = w.n
	off := make([]uint64, len(m.ids))
	recs := make([]*Record, 0, 8)
	for i, id := range m.ids {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		recs = recs[:0]
		for _, ri := range m.recs[i] {
			r, err := b.loadText(int(ri))
			if err != nil {
				return nil, err
			}
			recs = append(recs, r)
		}
		v := mergeVulnerability(id, recs)
		v.Aliases = m.aliases[i]
		off[i] = w.n - h.vulns.off
		e.b = e.b[:0]
		e.str(v.ID)
		e.strs(v.Aliases)
		e.str(v.Title)
		e.str(v.Description)
		e.strs(v.References)
		e.time(v.Published)
		e.time(v.Modified)
		e.uvarint(uint64(len(v.Severities)))
		for _, s := range v.Severities {
			e.severity(s)
		}
		w.Write(binary.AppendUvarint(nil, uint64(len(e.b))))
		w.Write(e.b)
	}
	h.vulns.n = w.n - h.vulns.off
	return off, w.err
}

// writeAdvisories writes, package by package in key order, the advisories
// of each package: one per vulnerability and source, merged from the
// records that say something about it, in the order they were added. It
// returns the keys and index sections and counts into meta.
func (b *Builder) writeAdvisories(ctx context.Context, w *countingWriter, h *header, meta *Metadata, m merged, vulnOff []uint64) (keys, index []byte, err error) {
	srcIndex := map[string]uint32{}
	for i, s := range meta.Sources {
		srcIndex[s.Name] = uint32(i)
	}
	// Keys in byte order: their rank orders the references.
	order := make([]uint32, len(b.names))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(x, y uint32) int { return strings.Compare(b.names[x], b.names[y]) })
	rank := make([]uint32, len(b.names))
	for r, k := range order {
		rank[k] = uint32(r)
	}
	// The references, in place: those of copies a newer duplicate
	// replaced go; the rest are sorted by key, vulnerability, source and
	// the order they were added in.
	recSrc := make([]uint32, len(b.recs))
	for i, r := range b.recs {
		recSrc[i] = srcIndex[r.source]
	}
	refs := b.affs[:0]
	for pos, a := range b.affs {
		if r := &b.recs[a.rec]; uint32(pos) != r.affFirst+a.idx {
			continue
		}
		refs = append(refs, a)
	}
	b.affs = nil
	slices.SortFunc(refs, func(x, y affRef) int {
		return cmp.Or(cmp.Compare(rank[x.key], rank[y.key]), cmp.Compare(m.vulnOf[x.rec], m.vulnOf[y.rec]),
			cmp.Compare(recSrc[x.rec], recSrc[y.rec]), cmp.Compare(x.rec, y.rec), cmp.Compare(x.idx, y.idx))
	})
	meta.Namespaces = map[string]int{}
	h.advs.off = w.n
	var e encoder
	var list []*Advisory
	var vulnOfList []uint32
	for i := 0; i < len(refs); {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		j := i
		for j < len(refs) && refs[j].key == refs[i].key {
			j++
		}
		key := b.names[refs[i].key]
		ns, _, _ := strings.Cut(key, "\x00")
		eco, semver := Comparators(ns)
		eco, semver = version.Cached(eco), version.Cached(semver)
		list, vulnOfList = list[:0], vulnOfList[:0]
		for k := i; k < j; k++ {
			x := refs[k]
			a, err := b.loadAffected(x.at())
			if err != nil {
				return nil, nil, err
			}
			r := &b.recs[x.rec]
			sid := cmp.Or(r.sourceID, r.id)
			vuln := uint32(m.vulnOf[x.rec])
			if k > i && m.vulnOf[refs[k-1].rec] == m.vulnOf[x.rec] && recSrc[refs[k-1].rec] == recSrc[x.rec] {
				mergeAdvisory(list[len(list)-1], sid, a)
				continue
			}
			list = append(list, &Advisory{
				VulnID: m.ids[vuln], SourceID: sid, Source: r.source, Status: a.Status,
				Ranges: slices.Clip(a.Ranges), Versions: slices.Clip(a.Versions), Severity: a.Severity, Note: a.Note,
			})
			vulnOfList = append(vulnOfList, vuln)
		}
		e.b = e.b[:0]
		e.uvarint(uint64(len(list)))
		for n, a := range list {
			tidyAdvisory(eco, semver, a)
			encodeAdvisory(&e, a, vulnOff[vulnOfList[n]], uint64(srcIndex[a.Source]))
			meta.Namespaces[ns]++
			b.source(a.Source).Advisories++
			meta.Advisories++
		}
		advOff := w.n - h.advs.off
		keyOff := uint64(len(keys))
		if keyOff+uint64(len(key)) > maxSection || advOff+uint64(len(e.b)) > maxSection || len(e.b) > maxSection {
			return nil, nil, errdefs.TooLarge(fmt.Errorf("vulnerability database: a section exceeds 4 GiB"))
		}
		index = binary.LittleEndian.AppendUint32(index, uint32(keyOff))
		index = binary.LittleEndian.AppendUint32(index, uint32(len(key)))
		index = binary.LittleEndian.AppendUint32(index, uint32(advOff))
		index = binary.LittleEndian.AppendUint32(index, uint32(len(e.b)))
		keys = append(keys, key...)
		w.Write(e.b)
		meta.Packages++
		i = j
	}
	h.advs.n = w.n - h.advs.off
	for i, s := range meta.Sources {
		meta.Sources[i].Advisories = b.sources[s.Name].Advisories
	}
	return keys, index, w.err
}

func (b *Builder) loadAffected(at span) (Affected, error) {
	s, err := b.spill.get(at)
	if err != nil {
		return Affected{}, err
	}
	a, err := decodeAffected(s)
	if err != nil {
		return Affected{}, fmt.Errorf("vulnerability database build: spill: %w", err)
	}
	return a, nil
}
