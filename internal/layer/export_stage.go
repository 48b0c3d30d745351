package layer

import (
	"archive/tar"
	"fmt"
	"io"
	"os"

	"github.com/lading-dev/lading/internal/errdefs"
)

// The last entry wins: a layer that has a path twice means what the later
// entry makes of it. Export cannot know, when it writes an entry, that a
// later one of the same layer replaces it, so what a layer shows is staged
// (a tar stream in an unlinked temporary file, with a record per entry) and
// copied to the output once the layer has been read, without the records
// that later entries replaced. In the usual layer, where nothing is
// replaced, the copy is one sequential read of the stage.
//
// Each entry of a layer gets a sequence number. A record dies when a later
// entry has its name (it is marked dead then), or when a directory above
// it is replaced by a non-directory after it was written (replacedSeq, the
// sequence number of the last such replacement, decides at copy time).

// waitName is a name and the entry it came with.
type waitName struct {
	name string
	seq  int
}

// replacing is the per-layer bookkeeping of replacements.
type replacing struct {
	seq         int
	lastSeq     map[string]int // path → its last entry in the layer
	replacedSeq map[string]int // directory → the last non-directory entry that replaced it
	dirSeq      map[string]int // directory → the entry whose header x.dirs holds
	needAdded   []waitName     // directories this layer added to needHeader
	resolvedAt  map[string][]waitName
	replaced    bool // an entry replaced another
}

func (r *replacing) reset() {
	r.seq = 0
	r.lastSeq = make(map[string]int)
	r.replacedSeq = make(map[string]int)
	r.dirSeq = make(map[string]int)
	r.needAdded = r.needAdded[:0]
	r.resolvedAt = make(map[string][]waitName)
	r.replaced = false
}

// replacedAfter reports whether a directory above p (or p itself, when
// self) was replaced by a non-directory of this layer after entry seq.
func (r *replacing) replacedAfter(p string, seq int, self bool) bool {
	if len(r.replacedSeq) == 0 {
		return false
	}
	if s, ok := r.replacedSeq[p]; self && ok && s > seq {
		return true
	}
	for d := parent(p); d != "."; d = parent(d) {
		if s, ok := r.replacedSeq[d]; ok && s > seq {
			return true
		}
	}
	return false
}

// replace applies the rule when entry e (not a marker) has the name of an
// earlier entry of this layer, or of a directory its entries imply. It
// returns the names that links from higher layers resolved to the earlier
// entry, to resolve again to e.
func (x *exporter) replace(p string, e *Entry) ([]waitName, error) {
	defer func() { x.lastSeq[p] = x.seq }()
	prev := x.delta[p]
	if prev&(sDir|sNonDir) == 0 {
		return nil, nil
	}
	x.replaced = true
	x.stage.kill(p)
	again := x.resolvedAt[p]
	delete(x.resolvedAt, p)
	for _, wn := range again {
		x.stage.kill(wn.name)
	}
	isDir := e.Kind == KindDir
	if isDir && len(again) > 0 {
		return nil, invalid(x.name, e.Header.Name, "a hard link of a higher layer links to %q, which this layer replaces with a directory", p)
	}
	switch {
	case prev&sDir != 0 && !isDir:
		// What the layer had below the directory goes with it.
		x.replacedSeq[p] = x.seq
		if _, ok := x.dirs[p]; ok {
			x.dirs[p] = nil // in dirOrder still: not written
		}
	case prev&sNonDir != 0 && isDir:
		// Making way for the directory removed what the lower layers
		// had at p, their contents too.
		x.delta[p] |= sOpaque
	}
	return again, nil
}

// settle ends the bookkeeping of a layer: names this layer's links wait
// with, and directories it added to needHeader, that later entries of the
// layer replaced are dropped; a link of a higher layer that resolved to an
// entry a later directory replacement removed is an error.
func (x *exporter) settle() error {
	if !x.replaced {
		return nil
	}
	dead := func(wn waitName) bool {
		return x.lastSeq[wn.name] > wn.seq || x.replacedAfter(wn.name, wn.seq, false)
	}
	for _, g := range x.newPending {
		kept := g.waiting[:0]
		for _, wn := range g.waiting {
			if !dead(wn) {
				kept = append(kept, wn)
			}
		}
		g.waiting = kept
	}
	live := map[string]bool{}
	for _, wn := range x.needAdded {
		if !x.replacedAfter(wn.name, wn.seq, true) {
			live[wn.name] = true
		}
	}
	for _, wn := range x.needAdded {
		if !live[wn.name] {
			delete(x.needHeader, wn.name)
		}
	}
	for p, names := range x.resolvedAt {
		if x.replacedAfter(p, x.lastSeq[p], false) && len(names) > 0 {
			return invalid(x.name, "", "a hard link of a higher layer links to %q, which this layer removes", p)
		}
	}
	return nil
}

// stageRec is one entry a layer shows, staged.
type stageRec struct {
	name     string
	g        *group      // the inode it is a name of
	link     *tar.Header // the header of a hard link record
	off, end int64       // the record's bytes in the stage file
	seq      int32
	own      bool // an entry of this layer (not a name a higher layer's link waited with)
	carrier  bool // holds g's content (not a hard link)
	dead     bool
}

// stage is the output of one layer, until the layer has been read.
type stage struct {
	dir    string
	f      *os.File
	n      int64 // bytes written
	tw     *tar.Writer
	recs   []stageRec
	byName map[string]int // name → its last record
}

func (s *stage) Write(p []byte) (int, error) {
	n, err := s.f.WriteAt(p, s.n)
	s.n += int64(n)
	return n, err
}

func (s *stage) reset() error {
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "lading-export-stage-*")
		if err != nil {
			return fmt.Errorf("export: stage: %w", err)
		}
		os.Remove(f.Name())
		s.f = f
	}
	if s.n > 0 {
		if err := s.f.Truncate(0); err != nil {
			return fmt.Errorf("export: stage: %w", err)
		}
	}
	s.n = 0
	s.tw = tar.NewWriter(s)
	s.recs = s.recs[:0]
	s.byName = make(map[string]int)
	return nil
}

func (s *stage) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// add stages an entry with header h and, for a regular file, its content.
func (s *stage) add(r stageRec, h *tar.Header, content io.Reader, buf []byte) error {
	r.off = s.n
	if err := s.tw.WriteHeader(h); err != nil {
		return err
	}
	if h.Typeflag == tar.TypeReg && h.Size > 0 {
		n, err := io.CopyBuffer(s.tw, io.LimitReader(content, h.Size), buf)
		if err != nil {
			return err
		}
		if n != h.Size {
			return errdefs.Corrupt(fmt.Errorf("content of %q: %d of %d bytes: %w", h.Name, n, h.Size, io.ErrUnexpectedEOF))
		}
	}
	if err := s.tw.Flush(); err != nil {
		return err
	}
	r.end = s.n
	if !r.carrier {
		r.link = h
	}
	s.byName[r.name] = len(s.recs)
	s.recs = append(s.recs, r)
	return nil
}

// kill marks the last record named name dead.
func (s *stage) kill(name string) {
	if i, ok := s.byName[name]; ok {
		s.recs[i].dead = true
		delete(s.byName, name)
	}
}

// flushStage copies the live records of the layer to the output, runs of
// consecutive ones at once. A hard link whose carrier a later entry
// replaced becomes the carrier itself (the file it was made to, under its
// own name), and the group's other links link to it.
func (x *exporter) flushStage() error {
	s := &x.stage
	promoted := map[*group]string{} // inodes whose carrier died: the name that carries them now
	var deadCarrier map[*group]*stageRec
	runStart, runEnd := int64(-1), int64(-1)
	flushRun := func() error {
		if runStart < 0 {
			return nil
		}
		_, err := io.CopyBuffer(x.out, io.NewSectionReader(s.f, runStart, runEnd-runStart), x.buf)
		runStart, runEnd = -1, -1
		return err
	}
	copyRec := func(r *stageRec) error {
		if runStart >= 0 && runEnd == r.off {
			runEnd = r.end
			return nil
		}
		if err := flushRun(); err != nil {
			return err
		}
		runStart, runEnd = r.off, r.end
		return nil
	}
	for i := range s.recs {
		r := &s.recs[i]
		dead := r.dead || r.own && x.replacedAfter(r.name, int(r.seq), false)
		switch {
		case r.carrier && dead:
			if deadCarrier == nil {
				deadCarrier = map[*group]*stageRec{}
			}
			deadCarrier[r.g] = r
			continue
		case dead:
			continue
		case r.carrier:
			if err := copyRec(r); err != nil {
				return err
			}
			continue
		}
		// A hard link record.
		if name, ok := promoted[r.g]; ok {
			if err := flushRun(); err != nil {
				return err
			}
			if err := x.writeOut(linkHeader(r.link, r.name, name), nil); err != nil {
				return err
			}
			continue
		}
		dc := deadCarrier[r.g]
		if dc == nil {
			if err := copyRec(r); err != nil {
				return err
			}
			continue
		}
		if err := flushRun(); err != nil {
			return err
		}
		h := *r.g.hdr
		h.Name = r.name
		content := io.NewSectionReader(s.f, dc.end-pad512(h.Size)-h.Size, h.Size)
		if err := x.writeOut(&h, content); err != nil {
			return err
		}
		promoted[r.g] = r.name
		r.g.carrier = r.name
	}
	return flushRun()
}

// writeOut writes one entry to the output tar stream, padded.
func (x *exporter) writeOut(h *tar.Header, content io.Reader) error {
	if err := x.tw.WriteHeader(h); err != nil {
		return err
	}
	if h.Typeflag == tar.TypeReg && h.Size > 0 {
		if _, err := io.CopyBuffer(x.tw, io.LimitReader(content, h.Size), x.buf); err != nil {
			return err
		}
	}
	return x.tw.Flush()
}

func pad512(n int64) int64 { return (512 - n%512) % 512 }
