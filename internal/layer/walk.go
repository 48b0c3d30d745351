package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
)

// WalkFunc is called by [Walk] for each entry, in archive order. It may read
// the entry's content (the [Entry] is an io.Reader) and must not keep e after
// it returns. Returning fs.SkipAll stops the walk early and makes Walk return
// nil; any other error stops the walk and is returned, with the layer and
// entry named (see [Error]) unless it is an *Error already.
type WalkFunc func(e *Entry) error

// Walk reads the uncompressed layer tar stream r once, from start to end,
// checks every entry and calls fn for each one that passes. It returns nil at
// the end of the archive, the first error otherwise. Entries are checked
// before fn sees them; an archive is rejected with an [*Error] naming the
// entry, class ErrInvalidArgument, at the first entry that:
//
//   - has an empty or absolute name, a NUL byte in it, a name that escapes the
//     root through "..", or a name longer than [MaxNameLen];
//   - is a hard link whose target is empty, absolute, escapes the root, is
//     longer than MaxNameLen, is the entry itself, the root, or a directory of
//     this layer, or lies below a symlink or another non-directory of this
//     layer;
//   - is a symlink with an empty target or one longer than MaxSymlinkLen;
//   - lies below an entry of this layer that is a symlink (writing it would
//     write through the link) or another non-directory;
//   - repeats the name of an earlier entry of this layer, unless both are
//     directories (then both are delivered and the later header wins) or
//     [LastEntryWins] was given, or is a non-directory where an earlier
//     entry implies a directory (unless LastEntryWins);
//   - is a character or block device and [AllowDevices] was not given;
//   - has a type other than regular, directory, symlink, hard link, FIFO or
//     device, or is a whiteout with entries below it or of an invalid name.
//
// A stream that ends inside a header or content is an ErrCorrupt error that
// names the last entry read; other unreadable headers are ErrInvalidArgument.
//
// Names are normalized (see [Entry.Name]). A ".wh.NAME" entry is delivered
// as KindWhiteout of NAME and a ".wh..wh..opq" entry as KindOpaque of its
// directory; other ".wh..wh.*" entries (aufs metadata such as .wh..wh.plnk)
// and everything below them are skipped, as are PAX global headers. Walk
// checks ctx between entries and on every content read. Memory grows with
// the number of distinct paths in the layer (a few bytes each, whatever
// their length), never with content size.
func Walk(ctx context.Context, r io.Reader, fn WalkFunc, opts ...Option) error {
	o := makeOptions(opts)
	w := &walker{
		ctx:      ctx,
		name:     o.name,
		devices:  o.devices,
		lastWins: o.lastWins,
		tr:       tar.NewReader(r),
		paths:    make(map[uint64]pathState),
		seed:     maphash.MakeSeed(),
	}
	w.entry.w = w
	defer func() { w.entry.w = nil }()
	return w.run(fn)
}

type pathState uint8

const (
	pImplied pathState = iota + 1 // a directory implied by entries below it
	pDir                          // an explicit directory
	pSymlink                      // a symlink
	pOther                        // any other non-directory
)

type walker struct {
	ctx      context.Context
	name     string
	devices  bool
	lastWins bool // a later entry at a path replaces the earlier one
	// dirReplaced is set once a non-directory replaced a directory of the
	// layer: entries recorded below it are stale, so parent checks no
	// longer stop at the first known directory.
	dirReplaced bool
	tr          *tar.Reader
	// paths are the states of the layer's directories and symlinks, and
	// others the paths of its other entries (pOther: files, mostly), by a
	// hash of the path under a random seed (a hostile layer cannot make two
	// collide): a few bytes a path whatever its length.
	paths  map[uint64]pathState
	others hashSet
	seed   maphash.Seed
	entry  Entry
	last   string // raw name of the last entry read
}

var eofErr = io.EOF

func (w *walker) key(p string) uint64 { return maphash.String(w.seed, p) }

// state returns what the layer has at p so far.
func (w *walker) state(p string) (pathState, bool) {
	k := w.key(p)
	if w.others.has(k) {
		return pOther, true
	}
	st, ok := w.paths[k]
	return st, ok
}

// set records what the layer has at p.
func (w *walker) set(p string, st pathState) {
	k := w.key(p)
	if st == pOther {
		delete(w.paths, k)
		w.others.add(k)
		return
	}
	w.others.remove(k)
	w.paths[k] = st
}

func (w *walker) run(fn WalkFunc) error {
	for {
		if err := w.ctx.Err(); err != nil {
			return wrapErr(w.name, "", err)
		}
		h, err := w.tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && h != nil) {
			return w.headerErr(err)
		}
		w.last = h.Name
		ok, err := w.check(h)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := fn(&w.entry); err != nil {
			if errors.Is(err, fs.SkipAll) {
				return nil
			}
			return wrapErr(w.name, h.Name, err)
		}
	}
}

func (w *walker) headerErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Layer: w.name, Entry: w.last,
			Err: errdefs.Corrupt(fmt.Errorf("stream truncated: %w", err))}
	}
	var le *Error
	if errors.As(err, &le) {
		return err // from the reader below, such as Decompress
	}
	if !strings.HasPrefix(err.Error(), "archive/tar:") {
		return &Error{Layer: w.name, Entry: w.last, Err: err}
	}
	if w.last != "" {
		return &Error{Layer: w.name, Err: errdefs.InvalidArgument(
			fmt.Errorf("after entry %q: unreadable header: %w", truncName(w.last), err))}
	}
	return &Error{Layer: w.name, Err: errdefs.InvalidArgument(fmt.Errorf("unreadable header: %w", err))}
}

func (w *walker) readContent(e *Entry, p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, wrapErr(w.name, e.Header.Name, err)
	}
	n, err := w.tr.Read(p)
	if err != nil && err != io.EOF {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = &Error{Layer: w.name, Entry: e.Header.Name,
				Err: errdefs.Corrupt(fmt.Errorf("content truncated: %w", err))}
		} else {
			err = wrapErr(w.name, e.Header.Name, err)
		}
	}
	return n, err
}

// check classifies h into w.entry and records it; ok is false for entries
// that are skipped.
func (w *walker) check(h *tar.Header) (ok bool, err error) {
	raw := h.Name
	bad := func(msg string) (bool, error) {
		return false, invalid(w.name, raw, "%s", msg)
	}
	p, msg := normalize(raw)
	if msg != "" {
		return bad(msg)
	}
	kind, skip, msg := kindOf(h.Typeflag)
	if skip {
		return false, nil
	}
	if msg != "" {
		return bad(msg)
	}
	e := &w.entry
	e.Name, e.path, e.Linkname, e.Header, e.inLayer = p, p, "", h, false

	if strings.Contains(p, whPrefix) {
		if kind, e.Name, skip, msg = whiteoutOf(p, kind); skip {
			return false, nil
		}
		if msg != "" {
			return bad(msg)
		}
	}
	e.Kind = kind
	if p == "." && kind != KindDir {
		return bad(fmt.Sprintf("the root must be a directory, not a %s", kind))
	}
	if msg := w.checkLink(e, h, p); msg != "" {
		return bad(msg)
	}
	if msg := w.record(p, kind); msg != "" {
		return bad(msg)
	}
	return true, nil
}

// kindOf maps a tar entry type to a Kind; skip is true for entries that
// carry no file (a PAX global header).
func kindOf(typ byte) (kind Kind, skip bool, msg string) {
	switch typ {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
		return KindRegular, false, ""
	case tar.TypeDir:
		return KindDir, false, ""
	case tar.TypeSymlink:
		return KindSymlink, false, ""
	case tar.TypeLink:
		return KindHardlink, false, ""
	case tar.TypeFifo:
		return KindFIFO, false, ""
	case tar.TypeChar:
		return KindCharDevice, false, ""
	case tar.TypeBlock:
		return KindBlockDevice, false, ""
	case tar.TypeXGlobalHeader:
		return 0, true, ""
	}
	return 0, false, fmt.Sprintf("unsupported entry type %q", typ)
}

// whiteoutOf reads the whiteout markers in path p (an entry of kind): an
// opaque marker makes a KindOpaque entry for its directory, a whiteout a
// KindWhiteout entry for the name it hides; other aufs metadata is skipped
// with everything below it. A marker anywhere but in the last component is
// refused.
func whiteoutOf(p string, kind Kind) (Kind, string, bool, string) {
	name := p
	for rest := p; rest != ""; {
		comp := rest
		i := strings.IndexByte(rest, '/')
		if i >= 0 {
			comp, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		last := i < 0
		switch {
		case strings.HasPrefix(comp, whMeta):
			if last && comp == whOpaque {
				kind, name = KindOpaque, parent(p)
				break
			}
			return kind, name, true, "" // aufs metadata: skipped with all below it
		case strings.HasPrefix(comp, whPrefix):
			if !last {
				return kind, name, false, fmt.Sprintf("whiteout %q has entries below it", comp)
			}
			target := comp[len(whPrefix):]
			if target == "" || target == "." || target == ".." {
				return kind, name, false, "whiteout of an invalid name"
			}
			kind, name = KindWhiteout, join(parent(p), target)
		}
	}
	return kind, name, false, ""
}

// checkLink checks what entry e (at path p) may be by its kind: devices
// only when allowed, symlinks with a sane target, hard links to a file of
// this layer that no symlink of the layer leads to; it sets e.Linkname.
func (w *walker) checkLink(e *Entry, h *tar.Header, p string) string {
	switch e.Kind {
	case KindCharDevice, KindBlockDevice:
		if !w.devices {
			return "device nodes are not allowed"
		}
	case KindSymlink:
		if h.Linkname == "" {
			return "symlink with an empty target"
		}
		if len(h.Linkname) > MaxSymlinkLen {
			return fmt.Sprintf("symlink target longer than %d bytes", MaxSymlinkLen)
		}
		e.Linkname = h.Linkname
	case KindHardlink:
		t, msg := normalize(h.Linkname)
		if msg != "" {
			return fmt.Sprintf("hard link target %q: %s", truncName(h.Linkname), msg)
		}
		switch {
		case t == ".":
			return "hard link to the root directory"
		case t == p:
			return "hard link to itself"
		}
		st, ok := w.state(t)
		if ok && (st == pDir || st == pImplied) {
			return fmt.Sprintf("hard link to directory %q", t)
		}
		e.inLayer = ok
		for d := parent(t); d != "."; d = parent(d) {
			st, ok := w.state(d)
			if !ok {
				continue
			}
			if st == pSymlink {
				return fmt.Sprintf("hard link target %q goes through symlink %q of this layer", t, d)
			}
			if st == pOther {
				return fmt.Sprintf("hard link target %q lies below %q, not a directory in this layer", t, d)
			}
			if (st == pDir || st == pImplied) && !w.dirReplaced {
				break
			}
		}
		e.Linkname = t
	}
	return ""
}

// record notes path p of kind in the layer's paths, with its parents as
// implied directories, and refuses what the layer already has there:
// writing through a symlink or a file of this layer, or a duplicate (a
// directory may replace an earlier directory).
func (w *walker) record(p string, kind Kind) string {
	for d := parent(p); d != "."; d = parent(d) {
		st, ok := w.state(d)
		if !ok {
			w.set(d, pImplied)
			continue
		}
		if st == pDir || st == pImplied {
			if w.dirReplaced {
				continue
			}
			break
		}
		if st == pSymlink {
			return fmt.Sprintf("parent %q is a symlink in this layer (writing through it is not allowed)", d)
		}
		return fmt.Sprintf("parent %q is not a directory in this layer", d)
	}
	st, exists := w.state(p)
	switch {
	case kind == KindDir:
		if exists && st != pDir && st != pImplied && !w.lastWins {
			return "duplicate entry (a directory replaces an earlier non-directory)"
		}
		w.set(p, pDir)
	case exists && (st == pDir || st == pImplied) && !w.lastWins:
		return fmt.Sprintf("a %s where this layer has a directory", kind)
	case exists && st != pDir && st != pImplied && !w.lastWins:
		return "duplicate entry"
	case kind == KindSymlink:
		w.set(p, pSymlink)
	default:
		w.set(p, pOther)
	}
	if exists && (st == pDir || st == pImplied) && kind != KindDir {
		w.dirReplaced = true
	}
	return ""
}

// truncName shortens a name for an error message.
func truncName(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}
