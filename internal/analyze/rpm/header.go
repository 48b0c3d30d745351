package rpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/lading-dev/lading/internal/pkg"
)

// An RPM header as the database stores it (rpm's headerExport): the number
// of index entries il and the size of the data store dl, both big-endian
// int32, then il index entries of 16 bytes (tag, type, offset, count, each a
// big-endian 32-bit number), then dl bytes of data. Entries may repeat a tag
// (a "dribble" entry after the immutable region replaces the region's); the
// last one counts.

// Tags read.
const (
	tagName            = 1000
	tagVersion         = 1001
	tagRelease         = 1002
	tagEpoch           = 1003
	tagLicense         = 1014
	tagArch            = 1022
	tagSourceRPM       = 1044
	tagModularityLabel = 5096
)

// Data types.
const (
	typeInt32       = 4
	typeString      = 6
	typeStringArray = 8
	typeI18NString  = 9
)

const (
	maxIndexEntries = 1 << 16
	maxHeaderData   = 256 << 20
)

type indexEntry struct {
	tag, typ, off, count uint32
}

type header struct {
	index []indexEntry
	data  []byte
}

var errNotHeader = errors.New("not an RPM header")

func parseHeader(b []byte) (*header, error) {
	if len(b) < 8 {
		return nil, errNotHeader
	}
	il := binary.BigEndian.Uint32(b[0:4])
	dl := binary.BigEndian.Uint32(b[4:8])
	if il == 0 || il > maxIndexEntries || dl > maxHeaderData {
		return nil, fmt.Errorf("%w: %d index entries, %d data bytes", errNotHeader, il, dl)
	}
	end := 8 + 16*uint64(il) + uint64(dl)
	if end > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d index entries and %d data bytes need %d bytes, the record has %d", errNotHeader, il, dl, end, len(b))
	}
	h := &header{index: make([]indexEntry, il), data: b[8+16*int(il) : end]}
	for i := range h.index {
		e := b[8+16*i:]
		h.index[i] = indexEntry{
			tag:   binary.BigEndian.Uint32(e[0:]),
			typ:   binary.BigEndian.Uint32(e[4:]),
			off:   binary.BigEndian.Uint32(e[8:]),
			count: binary.BigEndian.Uint32(e[12:]),
		}
	}
	return h, nil
}

func (h *header) find(tag uint32) (indexEntry, bool) {
	for i := len(h.index) - 1; i >= 0; i-- {
		if h.index[i].tag == tag {
			return h.index[i], true
		}
	}
	return indexEntry{}, false
}

// str returns the first string of a string-typed tag.
func (h *header) str(tag uint32) (string, bool) {
	e, ok := h.find(tag)
	if !ok {
		return "", false
	}
	switch e.typ {
	case typeString, typeStringArray, typeI18NString:
	default:
		return "", false
	}
	if e.count == 0 || uint64(e.off) >= uint64(len(h.data)) {
		return "", false
	}
	s := h.data[e.off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		return string(s[:i]), true
	}
	return "", false // unterminated
}

// int32 returns the first number of an INT32 tag.
func (h *header) int32(tag uint32) (int64, bool) {
	e, ok := h.find(tag)
	if !ok || e.typ != typeInt32 || e.count == 0 || uint64(e.off)+4 > uint64(len(h.data)) {
		return 0, false
	}
	return int64(int32(binary.BigEndian.Uint32(h.data[e.off:]))), true
}

// ParseHeader returns the package a header describes. ok is false for
// headers that are not installed packages (gpg-pubkey entries, which hold
// imported signing keys).
func ParseHeader(b []byte) (p pkg.Package, ok bool, err error) {
	h, err := parseHeader(b)
	if err != nil {
		return p, false, err
	}
	name, _ := h.str(tagName)
	version, _ := h.str(tagVersion)
	release, _ := h.str(tagRelease)
	if name == "" || version == "" {
		return p, false, fmt.Errorf("header without a name or version (name %q, version %q)", name, version)
	}
	if name == "gpg-pubkey" {
		return p, false, nil
	}
	evr := version
	if release != "" {
		evr += "-" + release
	}
	epoch, hasEpoch := h.int32(tagEpoch)
	if hasEpoch {
		evr = fmt.Sprintf("%d:%s", epoch, evr)
	}
	p = pkg.Package{Name: name, Version: evr, Ecosystem: pkg.RPM}
	p.Arch, _ = h.str(tagArch)
	if l, ok := h.str(tagLicense); ok {
		p.AddLicense(l)
	}
	p.Modularity, _ = h.str(tagModularityLabel)
	if s, ok := h.str(tagSourceRPM); ok && s != "(none)" {
		if n, v, ok := splitSourceRPM(s); ok {
			if hasEpoch {
				v = fmt.Sprintf("%d:%s", epoch, v)
			}
			p.Source = &pkg.Source{Name: n, Version: v}
		}
	}
	return p, true, nil
}

// splitSourceRPM splits "util-linux-2.32.1-42.el8_8.src.rpm" into
// "util-linux" and "2.32.1-42.el8_8".
func splitSourceRPM(s string) (name, version string, ok bool) {
	s, ok = strings.CutSuffix(s, ".rpm")
	if !ok {
		return "", "", false
	}
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		s = s[:i] // .src, .nosrc
	}
	ri := strings.LastIndexByte(s, '-')
	if ri <= 0 {
		return "", "", false
	}
	vi := strings.LastIndexByte(s[:ri], '-')
	if vi <= 0 {
		return "", "", false
	}
	return s[:vi], s[vi+1:], true
}
