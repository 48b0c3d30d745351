package layer

import (
	"archive/tar"
	"path"
	"strings"
)

// MaxNameLen is the longest entry name or hard link target, in bytes, that
// [Walk] accepts. A path may be longer than Linux's PATH_MAX (4096): tar
// keeps such names in PAX records, and GNU tar, docker and containerd keep
// them; [Export] writes them and [Extract] creates them a directory at a
// time. The limit bounds memory only.
const MaxNameLen = 64 << 10

// MaxSymlinkLen is the longest symlink target, in bytes, that [Walk]
// accepts: Linux's PATH_MAX, beyond which no file system stores one.
const MaxSymlinkLen = 4096

// Kind says what an [Entry] is.
type Kind uint8

// The kinds of entries.
const (
	KindRegular     Kind = iota + 1 // a regular file (tar types '0', '\x00', '7', 'S')
	KindDir                         // a directory
	KindSymlink                     // a symbolic link; Linkname is its target as stored
	KindHardlink                    // a hard link; Linkname is the normalized name of an earlier entry
	KindFIFO                        // a named pipe
	KindCharDevice                  // a character device node
	KindBlockDevice                 // a block device node
	KindWhiteout                    // a whiteout (".wh.NAME"): Name is the path it removes from lower layers
	KindOpaque                      // an opaque marker (".wh..wh..opq"): Name is the directory whose lower contents it hides
)

var kindNames = [...]string{"invalid", "regular", "dir", "symlink", "hardlink", "fifo", "chardev", "blockdev", "whiteout", "opaque"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// IsDir reports whether k is KindDir.
func (k Kind) IsDir() bool { return k == KindDir }

// isMarker reports whether k is a whiteout or an opaque marker, entries that
// describe lower layers rather than files of this one.
func (k Kind) isMarker() bool { return k == KindWhiteout || k == KindOpaque }

// Entry is one entry of a layer as [Walk] delivers it. An Entry, and the
// content it reads, are valid only during the callback that receives it; the
// walker reuses it for the next entry.
//
// Entry is an io.Reader of the entry's content: the file's bytes for
// KindRegular (Header.Size of them, sparse files expanded) and nothing for
// every other kind. Content the callback does not read is skipped. A stream
// that ends inside the content makes Read fail with an [*Error] of class
// ErrCorrupt that names the entry; the callback may return it as it is.
type Entry struct {
	// Name is the entry's normalized name: cleaned, relative, without "./"
	// or a trailing slash; "." is the layer's root directory. For
	// KindWhiteout it is the path the whiteout removes, for KindOpaque the
	// directory made opaque.
	Name string
	// Kind says what the entry is.
	Kind Kind
	// Linkname is, for KindHardlink, the normalized name of the link's
	// target (an earlier entry of this layer, or a path of a lower layer);
	// for KindSymlink, the target exactly as stored (it may be absolute or
	// contain ".."); empty otherwise.
	Linkname string
	// Header is the header as archive/tar read it; Header.Name is the raw
	// name. The callback must not change it.
	Header *tar.Header

	path    string // the entry's own normalized name (differs from Name for markers)
	inLayer bool   // a hard link's target is an entry of this layer
	w       *walker
}

// LinkInLayer reports, for a KindHardlink entry, whether its target is an
// earlier entry of the same layer rather than a file of a lower layer.
func (e *Entry) LinkInLayer() bool { return e.Kind == KindHardlink && e.inLayer }

// Read reads the entry's content.
func (e *Entry) Read(p []byte) (int, error) {
	if e.w == nil || e.Kind != KindRegular {
		return 0, eofErr
	}
	return e.w.readContent(e, p)
}

// Size returns the number of content bytes Read returns: Header.Size for a
// regular file, 0 otherwise.
func (e *Entry) Size() int64 {
	if e.Kind != KindRegular {
		return 0
	}
	return e.Header.Size
}

// normalize cleans a raw entry name or hard link target. It returns the
// problem as a message when the name is empty, absolute, too long, or escapes
// the root.
func normalize(raw string) (string, string) {
	switch {
	case raw == "":
		return "", "empty name"
	case len(raw) > MaxNameLen:
		return "", "name longer than 65536 bytes"
	case strings.IndexByte(raw, 0) >= 0:
		return "", "name contains a NUL byte"
	case raw[0] == '/':
		return "", "absolute path not allowed"
	}
	p := path.Clean(raw)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", "path escapes the layer root"
	}
	return p, ""
}

// parent returns the directory holding p ("." for top-level names).
func parent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// base returns the last element of p.
func base(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// join joins a normalized directory and a name.
func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// isUnder reports whether p is dir or lies below it.
func isUnder(p, dir string) bool {
	if dir == "." {
		return true
	}
	return p == dir || (len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir)
}

const (
	whPrefix = ".wh."
	whMeta   = ".wh..wh."
	whOpaque = ".wh..wh..opq"
)
