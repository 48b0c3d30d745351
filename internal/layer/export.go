package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Source is one layer of an image for [Export].
type Source struct {
	// Name is the layer's display name, such as "layer 2/5 sha256:abcd…";
	// errors about the layer start with it.
	Name string
	// Open returns the layer's uncompressed tar stream (see [Decompress]).
	// Export calls it once and closes what it returns.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// Export writes the root filesystem that the layers (bottom first, as in an
// image manifest) make when stacked, as one tar stream to w, and does not
// close w. The result is what the kernel's overlayfs shows when each layer is
// a lower directory of one mount (whiteouts as 0/0 character devices, opaque
// markers as the trusted.overlay.opaque xattr):
//
//   - A path shows the entry of the highest layer that has it. A directory
//     merges only with directories below it: a higher non-directory hides a
//     lower directory and everything below it, a higher directory (one with an
//     entry or one implied by entries below it) hides a lower non-directory
//     at its path and everything below that.
//   - A whiteout ".wh.NAME" hides NAME and everything below it in the layers
//     below its own; an opaque marker hides the lower contents of its
//     directory but not the directory. Neither affects its own layer, and
//     neither is written. An opaque marker of the root hides every lower
//     layer, as containerd's and umoci's appliers make it (the kernel's
//     overlayfs never looks up a lower root, so a lower directory with the
//     opaque xattr at its root would not hide anything: lading follows the
//     appliers, which decide what a layer means).
//   - A layer that has a path twice means what docker and containerd make of
//     it when they apply it in archive order: the last entry wins. A later
//     non-directory replaces a directory and everything the layer had below
//     it; a later directory replaces a non-directory and, like the removal
//     that made way for it, hides what the lower layers had there; two
//     directories merge, the later header winning. A hard link keeps the
//     file it was made to, even when a later entry replaces that name.
//   - A directory's header (mode, owner, times, xattrs) comes from the highest
//     layer that has an explicit entry for it that is not hidden; a directory
//     no layer gives a header for gets mode 0755, owner 0:0 and time 0.
//   - A hard link to an earlier entry of its layer stays a hard link when that
//     entry shows; when the entry is hidden (by a higher layer) the first
//     showing link becomes a regular file with the hidden entry's content and
//     metadata, as the kernel keeps the inode, and the other links link to it.
//     A hard link to a name that is not earlier in its layer links to what
//     that name is in the layers below, and is written after it.
//
// Every path appears at most once. Entries are written layer by layer from
// the top, each layer in archive order with its directory headers after its
// other entries; hard links always come after their target, but a directory's
// header may come after entries below it (tar -x and [Extract] handle that).
// Regular files, directories, symlinks, hard links, FIFOs and device nodes
// are written with mode, owner, mtime and xattrs, as docker export and
// containerd write them ([AllowDevices] is implied); a hard link entry
// carries the header of the file it links to, as GNU tar, docker export and
// umoci write it. Access and change times are dropped. Names longer than
// PATH_MAX are kept (in PAX records).
//
// Export reads each layer once, checks it as [Walk] does (with
// [LastEntryWins]), and returns the first error, an [*Error] naming the
// layer and entry. It buffers no content in memory: what a layer shows is
// staged in an unlinked temporary file ([WithTempDir]) until the layer has
// been read, since a later entry of the layer may replace it, and content of
// hidden regular files is spooled there in case a later hard link needs it.
// Memory grows with the number of paths, not their size.
func Export(ctx context.Context, w io.Writer, layers []Source, opts ...Option) error {
	o := makeOptions(opts)
	x := &exporter{
		o:          o,
		out:        w,
		tw:         tar.NewWriter(w),
		st:         make(map[string]uint8),
		needHeader: make(map[string]bool),
		pending:    make(map[string][]*group),
		buf:        make([]byte, 256<<10),
		spool:      spool{dir: o.tempDir},
		stage:      stage{dir: o.tempDir},
	}
	defer x.spool.close()
	defer x.stage.close()
	for i := len(layers) - 1; i >= 0; i-- {
		if err := x.layer(ctx, layers[i]); err != nil {
			return err
		}
	}
	if err := x.finish(); err != nil {
		return err
	}
	if err := x.tw.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// Path state from the layers above the one being read.
const (
	sDir       uint8 = 1 << iota // a directory, explicit or implied
	sDirHeader                   // an explicit directory header
	sNonDir                      // a non-directory
	sWhiteout                    // whited out
	sOpaque                      // an opaque directory
)

type exporter struct {
	o          options
	out        io.Writer           // the output stream
	tw         *tar.Writer         // on out
	st         map[string]uint8    // state from the layers above the current one
	needHeader map[string]bool     // shown directories without an explicit header yet
	pending    map[string][]*group // hard links from higher layers, by the path they wait for
	buf        []byte
	spool      spool
	stage      stage // what the layer being read shows, until it is read

	// The layer being read.
	name       string
	delta      map[string]uint8
	groups     map[string]*group // inodes of this layer by path
	newPending map[string]*group
	dirs       map[string]*tar.Header
	dirOrder   []string
	replacing  // the last entry wins
}

// group is one inode: the entries of a layer that are hard links of each
// other, plus links from higher layers that resolved to it.
type group struct {
	carrier string      // output name that holds the inode, once written
	hdr     *tar.Header // the inode's output header (for a name it is written under)
	spooled bool        // content is in the spool at off
	off     int64
	// A group created by a link to a lower layer waits for target there;
	// waiting are the shown names to write once it is found.
	target  string
	waiting []waitName
	layer   string // where the link was, for errors
	entry   string
}

func (x *exporter) layer(ctx context.Context, src Source) error {
	if src.Open == nil {
		return &Error{Layer: src.Name, Err: errdefs.InvalidArgument(fmt.Errorf("no opener"))}
	}
	rc, err := src.Open(ctx)
	if err != nil {
		return wrapErr(src.Name, "", err)
	}
	if rc == nil {
		return &Error{Layer: src.Name, Err: errors.New("opener returned no stream")}
	}
	defer rc.Close()
	x.name = src.Name
	x.delta = make(map[string]uint8)
	x.groups = make(map[string]*group)
	x.newPending = make(map[string]*group)
	x.dirs = make(map[string]*tar.Header)
	x.dirOrder = x.dirOrder[:0]
	x.replacing.reset()
	defer x.spool.reset()
	if err := x.stage.reset(); err != nil {
		return err
	}

	// The stream is read to its end, so that a stream that verifies itself
	// at EOF (the blob's digest, the diffID) is verified; what it says
	// there is the cause of anything the walker found wrong before.
	werr := Walk(ctx, rc, x.entry, WithName(src.Name), AllowDevices(), LastEntryWins())
	if ctx.Err() != nil {
		return werr
	}
	if _, err := io.CopyBuffer(io.Discard, rc, x.buf); err != nil {
		return wrapErr(src.Name, "", err)
	}
	if werr != nil {
		return werr
	}
	if err := x.settle(); err != nil {
		return err
	}
	if err := x.flushStage(); err != nil {
		return wrapErr(x.name, "", err)
	}

	for _, d := range x.dirOrder {
		h := x.dirs[d]
		if h == nil || x.replacedAfter(d, x.dirSeq[d], true) {
			continue // replaced by a non-directory of the layer
		}
		if err := x.tw.WriteHeader(h); err != nil {
			return wrapErr(x.name, d, err)
		}
		delete(x.needHeader, d)
	}

	// Links from higher layers whose target this layer hides.
	for _, t := range sortedKeys(x.pending) {
		f := x.delta[t]
		var why string
		switch {
		case f&sDir != 0:
			why = "is a directory in " + x.name
		case f&sWhiteout != 0 || x.hiddenBy(x.delta, t):
			why = "is removed by " + x.name
		default:
			continue
		}
		for _, g := range x.pending[t] {
			if len(g.waiting) > 0 {
				return invalid(g.layer, g.entry, "hard link target %q %s", t, why)
			}
		}
		delete(x.pending, t)
	}

	for p, f := range x.delta {
		x.st[p] |= f
	}
	for t, g := range x.newPending {
		x.pending[t] = append(x.pending[t], g)
	}
	return nil
}

func (x *exporter) finish() error {
	for _, t := range sortedKeys(x.pending) {
		for _, g := range x.pending[t] {
			if len(g.waiting) > 0 {
				return invalid(g.layer, g.entry, "hard link target %q not found in the layers below", t)
			}
		}
	}
	dirs := make([]string, 0, len(x.needHeader))
	for d := range x.needHeader {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		h := &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: time.Unix(0, 0)}
		if err := x.tw.WriteHeader(h); err != nil {
			return fmt.Errorf("export: directory %q: %w", d, err)
		}
	}
	return nil
}

// hiddenBy reports whether state m hides p through its ancestors: an
// ancestor (or the root) that is opaque, whited out or a non-directory.
func (x *exporter) hiddenBy(m map[string]uint8, p string) bool {
	if len(m) == 0 || p == "." {
		return false
	}
	if m["."]&sOpaque != 0 {
		return true
	}
	for d := parent(p); d != "."; d = parent(d) {
		if m[d]&(sWhiteout|sOpaque|sNonDir) != 0 {
			return true
		}
	}
	return false
}

// showDir reports whether this layer's explicit header for directory p is
// the one to write.
func (x *exporter) showDir(p string) bool {
	if p == "." {
		return x.st["."]&sDirHeader == 0
	}
	return x.st[p]&(sWhiteout|sNonDir|sDirHeader) == 0 && !x.hiddenBy(x.st, p)
}

// showNonDir reports whether this layer's non-directory at p shows.
func (x *exporter) showNonDir(p string) bool {
	return x.st[p]&(sWhiteout|sNonDir|sDir) == 0 && !x.hiddenBy(x.st, p)
}

// markParents records the directories that p implies in this layer.
func (x *exporter) markParents(p string) {
	for d := parent(p); d != "."; d = parent(d) {
		if x.delta[d]&sDir != 0 {
			if len(x.replacedSeq) == 0 {
				return
			}
			// A directory of the layer was replaced: those above p may
			// have been implied before that, and be needed again.
			if x.delta[d]&sNonDir == 0 && !x.replacedAfter(d, 0, true) {
				continue
			}
		}
		x.delta[d] |= sDir
		if x.showDir(d) {
			x.needHeader[d] = true
			x.needAdded = append(x.needAdded, waitName{d, x.seq})
		}
	}
}

func (x *exporter) entry(e *Entry) error {
	x.seq++
	switch e.Kind {
	case KindWhiteout:
		x.markParents(e.path)
		x.delta[e.Name] |= sWhiteout
		return nil
	case KindOpaque:
		x.markParents(e.path)
		x.delta[e.Name] |= sOpaque // at the root: every lower layer
		return nil
	}
	p := e.Name
	again, err := x.replace(p, e)
	if err != nil {
		return err
	}
	x.markParents(p)
	if e.Kind == KindDir {
		if gs := x.pending[p]; len(gs) > 0 {
			for _, g := range gs {
				if len(g.waiting) > 0 {
					return invalid(g.layer, g.entry, "hard link target %q is a directory in %s", p, x.name)
				}
			}
			delete(x.pending, p)
		}
		if x.showDir(p) {
			if _, ok := x.dirs[p]; !ok {
				x.dirOrder = append(x.dirOrder, p)
			}
			x.dirs[p] = outHeader(e.Header, p, KindDir)
			x.dirSeq[p] = x.seq
		}
		x.delta[p] |= sDir | sDirHeader
		return nil
	}

	show := x.showNonDir(p)
	x.delta[p] |= sNonDir
	waiters := x.pending[p]
	if len(waiters) > 0 {
		delete(x.pending, p)
	}
	if len(again) > 0 {
		// Links from higher layers to p resolved to an earlier entry of
		// this layer that p now replaces: they go to this one.
		waiters = append(waiters, &group{waiting: again})
	}

	if e.Kind == KindHardlink {
		t := e.Linkname
		if x.replacedAfter(t, x.lastSeq[t], false) {
			return invalid(x.name, e.Header.Name, "hard link target %q was removed by a later entry of the layer", t)
		}
		g := x.groups[t]
		if g == nil {
			if g = x.newPending[t]; g == nil {
				g = &group{target: t, layer: x.name, entry: e.Header.Name}
				x.newPending[t] = g
			}
		}
		x.groups[p] = g
		if show {
			if err := x.addMember(g, p, nil, true); err != nil {
				return err
			}
		}
		return x.resolve(p, g, waiters, nil)
	}

	g := &group{hdr: outHeader(e.Header, p, e.Kind)}
	x.groups[p] = g
	if show {
		if err := x.write(g, g.hdr, e, true); err != nil {
			return err
		}
		g.carrier = p
	}
	if err := x.resolve(p, g, waiters, e); err != nil {
		return err
	}
	if g.carrier == "" && e.Kind == KindRegular && e.Size() > 0 {
		off, err := x.spool.add(e, e.Size(), x.buf)
		if err != nil {
			return err
		}
		g.spooled, g.off = true, off
	}
	return nil
}

// resolve hands the names that links from higher layers wait with to g,
// the inode of this layer's entry p. content, when not nil, is g's content
// not read yet.
func (x *exporter) resolve(p string, g *group, waiters []*group, content io.Reader) error {
	for _, w := range waiters {
		for _, wn := range w.waiting {
			if err := x.addMember(g, wn.name, content, false); err != nil {
				return err
			}
			x.resolvedAt[p] = append(x.resolvedAt[p], wn)
		}
		w.waiting = nil
	}
	return nil
}

// addMember writes name as one more name of inode g: a hard link to the
// name that holds g, or, when g has not been written, g itself under name
// (its content from content, or from the spool). For a group waiting on a
// lower layer, the name waits with it. own says name is an entry of this
// layer (not a name a higher layer's link waited with).
func (x *exporter) addMember(g *group, name string, content io.Reader, own bool) error {
	switch {
	case g.carrier != "":
		return x.write(g, linkHeader(g.hdr, name, g.carrier), nil, own)
	case g.hdr == nil:
		g.waiting = append(g.waiting, waitName{name, x.seq})
		return nil
	}
	h := *g.hdr
	h.Name = name
	if content == nil && h.Typeflag == tar.TypeReg && h.Size > 0 {
		if !g.spooled {
			return fmt.Errorf("export: content of %q for %q is gone", g.hdr.Name, name)
		}
		content = x.spool.reader(g.off, h.Size)
	}
	if err := x.write(g, &h, content, own); err != nil {
		return err
	}
	g.carrier = name
	return nil
}

// linkHeader is the header of a hard link named name to carrier, an inode
// whose header is h: the inode's mode, owner, times and xattrs, as GNU tar
// and docker export write a link.
func linkHeader(h *tar.Header, name, carrier string) *tar.Header {
	l := *h
	l.Typeflag, l.Name, l.Linkname, l.Size, l.Devmajor, l.Devminor = tar.TypeLink, name, carrier, 0, 0, 0
	return &l
}

// write stages an entry of inode g (a record of its content when h is not
// a hard link).
func (x *exporter) write(g *group, h *tar.Header, content io.Reader, own bool) error {
	return x.stage.add(stageRec{name: h.Name, g: g, seq: int32(x.seq), own: own, carrier: h.Typeflag != tar.TypeLink}, h, content, x.buf)
}

// outHeader returns the header Export writes for an entry of kind k named
// p: the fields that make the file, the SCHILY.xattr records, nothing else.
func outHeader(h *tar.Header, p string, k Kind) *tar.Header {
	o := &tar.Header{
		Name:    p,
		Mode:    h.Mode & 0o7777,
		Uid:     h.Uid,
		Gid:     h.Gid,
		Uname:   h.Uname,
		Gname:   h.Gname,
		ModTime: h.ModTime,
	}
	switch k {
	case KindRegular:
		o.Typeflag, o.Size = tar.TypeReg, h.Size
	case KindDir:
		o.Typeflag = tar.TypeDir
		if p == "." {
			o.Name = "./"
		} else {
			o.Name = p + "/"
		}
	case KindSymlink:
		o.Typeflag, o.Linkname = tar.TypeSymlink, h.Linkname
	case KindFIFO:
		o.Typeflag = tar.TypeFifo
	case KindCharDevice, KindBlockDevice:
		o.Typeflag, o.Devmajor, o.Devminor = h.Typeflag, h.Devmajor, h.Devminor
	}
	for k, v := range h.PAXRecords {
		if strings.HasPrefix(k, paxXattr) {
			if o.PAXRecords == nil {
				o.PAXRecords = make(map[string]string)
			}
			o.PAXRecords[k] = v
		}
	}
	return o
}

const paxXattr = "SCHILY.xattr."

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// spool keeps content of hidden files of the layer being read in an
// unlinked temporary file.
type spool struct {
	dir string
	f   *os.File
	off int64
}

func (s *spool) add(r io.Reader, n int64, buf []byte) (int64, error) {
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "lading-export-*")
		if err != nil {
			return 0, fmt.Errorf("export: spool: %w", err)
		}
		os.Remove(f.Name())
		s.f = f
	}
	off := s.off
	m, err := io.CopyBuffer(io.NewOffsetWriter(s.f, off), io.LimitReader(r, n), buf)
	s.off += m
	if err != nil {
		return 0, err
	}
	if m != n {
		return 0, errdefs.Corrupt(fmt.Errorf("content: %d of %d bytes: %w", m, n, io.ErrUnexpectedEOF))
	}
	return off, nil
}

func (s *spool) reader(off, n int64) io.Reader { return io.NewSectionReader(s.f, off, n) }

func (s *spool) reset() {
	if s.f != nil && s.off > 0 {
		s.f.Truncate(0)
		s.off = 0
	}
}

func (s *spool) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}
