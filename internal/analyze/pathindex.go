package analyze

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"strings"

	"github.com/lading-dev/lading/internal/layer"
)

// pathIndex is what one layer hides of the layers below it, by overlay
// rules, as sets of path hashes:
//
//   - self and subtree: every path the layer has an entry at (a file, a
//     directory, explicit or implied by entries below it, a symlink, a
//     whiteout's target). A lower regular file there is hidden: replaced,
//     whited out, turned into a directory. self holds those not in
//     subtree: the directories.
//
//   - subtree: the paths of non-directories and whiteout targets. Everything
//     lower layers have below them is hidden (a directory replaced by a file
//     or a symlink, trivy#2637; a directory whited out).
//
//   - opaque: directories with an opaque marker. Everything lower layers
//     have below them is hidden, the directory itself is not. An opaque root
//     (the hash of ".") hides every lower layer, as containerd's and umoci's
//     appliers unpack it.
//
//   - links: the symbolic links of the layer, path and target as stored,
//     so that the merge can resolve paths through the merged filesystem
//     (a package database behind a symlinked directory). They are kept
//     whole: a layer has few.
//
// A path's hash is the first 8 bytes of its SHA-256: an image cannot make a
// path collide with another to hide a package.
type pathIndex struct {
	self, subtree, opaque []uint64
	links                 []linkEntry
}

// linkEntry is a symbolic link of a layer.
type linkEntry struct {
	Path, Target string
}

// rootHash is the hash of the root, ".".
var rootHash = pathHash(".")

func pathHash(p string) uint64 {
	s := sha256.Sum256([]byte(p))
	return binary.LittleEndian.Uint64(s[:8])
}

// indexBuilder collects a pathIndex during a walk.
type indexBuilder struct {
	x          pathIndex
	lastParent string
	linkAt     map[string]int // path → index in x.links
}

// add records e and returns the hash of its path (0 for markers).
func (b *indexBuilder) add(e *layer.Entry) uint64 {
	// The directories the entry implies (for a marker, its own directory
	// and those above). Entries of a directory usually come together, so
	// the parents of the previous entry are not hashed again.
	raw := e.Name
	if e.Kind == layer.KindWhiteout || e.Kind == layer.KindOpaque {
		raw = e.Name + "/.wh." // any child of the marker's directory
		if e.Kind == layer.KindWhiteout {
			raw = parent(e.Name) + "/.wh."
		}
	}
	if d := parent(raw); d != b.lastParent {
		b.lastParent = d
		for ; d != "." && d != ""; d = parent(d) {
			b.x.self = append(b.x.self, pathHash(d))
		}
	}
	if i, ok := b.linkAt[e.Name]; ok && e.Kind != layer.KindOpaque {
		b.x.links[i].Target = "" // replaced by a later entry of the layer
		delete(b.linkAt, e.Name)
	}
	switch e.Kind {
	case layer.KindOpaque:
		b.x.opaque = append(b.x.opaque, pathHash(e.Name))
		return 0
	case layer.KindDir:
		if e.Name == "." {
			return 0
		}
		h := pathHash(e.Name)
		b.x.self = append(b.x.self, h)
		return h
	}
	h := pathHash(e.Name)
	b.x.subtree = append(b.x.subtree, h) // a non-directory: in self too, implicitly
	if e.Kind == layer.KindSymlink && e.Linkname != "" {
		if b.linkAt == nil {
			b.linkAt = map[string]int{}
		}
		b.linkAt[e.Name] = len(b.x.links)
		b.x.links = append(b.x.links, linkEntry{e.Name, e.Linkname})
	}
	if e.Kind == layer.KindWhiteout {
		return 0
	}
	return h
}

func (b *indexBuilder) build() *pathIndex {
	for _, s := range []*[]uint64{&b.x.self, &b.x.subtree, &b.x.opaque} {
		slices.Sort(*s)
		*s = slices.Compact(*s)
	}
	// A path in subtree is in self too: self keeps the others only (the
	// directories), so that a file costs 8 bytes, not 16.
	self := b.x.self[:0]
	for _, h := range b.x.self {
		if !has(b.x.subtree, h) {
			self = append(self, h)
		}
	}
	// Exact sizes, so that the slices grown during the walk are freed.
	b.x.self, b.x.subtree, b.x.opaque = slices.Clone(self), slices.Clone(b.x.subtree), slices.Clone(b.x.opaque)
	// The last entry at a path wins: a symlink replaced by another entry
	// of the same layer is no link.
	b.x.links = slices.DeleteFunc(b.x.links, func(l linkEntry) bool { return l.Target == "" })
	slices.SortFunc(b.x.links, func(a, b linkEntry) int { return strings.Compare(a.Path, b.Path) })
	b.x.links = slices.Clip(b.x.links)
	b.linkAt = nil
	x := b.x
	return &x
}

// chain is the hashes of a path and its ancestors, path first.
type chain []uint64

func chainOf(p string) chain {
	c := chain{pathHash(p)}
	for d := parent(p); d != "."; d = parent(d) {
		c = append(c, pathHash(d))
	}
	return c
}

// hides reports whether the layer hides the lower regular file whose chain
// is c.
func (x *pathIndex) hides(c chain) bool {
	if has(x.self, c[0]) || has(x.subtree, c[0]) || has(x.opaque, rootHash) {
		return true
	}
	for _, h := range c[1:] {
		if has(x.subtree, h) || has(x.opaque, h) {
			return true
		}
	}
	return false
}

func has(s []uint64, h uint64) bool {
	_, ok := slices.BinarySearch(s, h)
	return ok
}

// indexMagic starts an encoded path index; version 2 added the links.
var indexMagic = []byte("lading-paths\x00\x02")

// MarshalBinary encodes x: the magic, the counts of self, subtree, opaque
// and links as uvarints, the hashes as little-endian uint64s, then each
// link as the uvarint length and bytes of its path and of its target.
func (x *pathIndex) MarshalBinary() ([]byte, error) {
	n := len(indexMagic) + 4*binary.MaxVarintLen64 + 8*(len(x.self)+len(x.subtree)+len(x.opaque))
	for _, l := range x.links {
		n += 2*binary.MaxVarintLen64 + len(l.Path) + len(l.Target)
	}
	b := make([]byte, 0, n)
	b = append(b, indexMagic...)
	for _, s := range [][]uint64{x.self, x.subtree, x.opaque} {
		b = binary.AppendUvarint(b, uint64(len(s)))
	}
	b = binary.AppendUvarint(b, uint64(len(x.links)))
	for _, s := range [][]uint64{x.self, x.subtree, x.opaque} {
		for _, h := range s {
			b = binary.LittleEndian.AppendUint64(b, h)
		}
	}
	for _, l := range x.links {
		for _, s := range []string{l.Path, l.Target} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b, nil
}

func (x *pathIndex) UnmarshalBinary(b []byte) error {
	bad := errors.New("malformed path index")
	if !bytes.HasPrefix(b, indexMagic) {
		return bad
	}
	b = b[len(indexMagic):]
	var counts [4]uint64
	for i := range counts {
		v, n := binary.Uvarint(b)
		if n <= 0 || v > uint64(len(b)) {
			return bad
		}
		counts[i], b = v, b[n:]
	}
	hashes := counts[0] + counts[1] + counts[2]
	if hashes > uint64(len(b))/8 {
		return bad
	}
	for i, s := range []*[]uint64{&x.self, &x.subtree, &x.opaque} {
		*s = make([]uint64, counts[i])
		for j := range *s {
			(*s)[j] = binary.LittleEndian.Uint64(b)
			b = b[8:]
		}
		if !slices.IsSorted(*s) {
			return bad
		}
	}
	if counts[3] > uint64(len(b))/2 {
		return bad
	}
	x.links = make([]linkEntry, counts[3])
	for i := range x.links {
		var f [2]string
		for k := range f {
			v, n := binary.Uvarint(b)
			if n <= 0 || v > uint64(len(b)-n) {
				return bad
			}
			f[k], b = string(b[n:n+int(v)]), b[n+int(v):]
		}
		x.links[i] = linkEntry{f[0], f[1]}
	}
	if len(b) != 0 {
		return bad
	}
	return nil
}

// parent returns the directory holding p ("." for top-level names).
func parent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}
