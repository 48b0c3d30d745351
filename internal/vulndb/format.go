package vulndb

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
)

// SchemaVersion is the version of the file format this lading reads and
// writes. A change to the format or to the meaning of its fields bumps it.
const SchemaVersion = 1

const (
	magic      = "LADINGDB"
	headerSize = 128
	entrySize  = 16
	maxSection = math.MaxUint32
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// section is an offset and a length (or a count, for the index).
type section struct{ off, n uint64 }

type header struct {
	schema                         uint32
	meta, index, keys, advs, vulns section
	size                           uint64
}

func (h header) marshal() []byte {
	b := make([]byte, headerSize)
	copy(b, magic)
	binary.LittleEndian.PutUint32(b[8:], h.schema)
	binary.LittleEndian.PutUint32(b[12:], headerSize)
	for i, s := range []section{h.meta, h.index, h.keys, h.advs, h.vulns} {
		binary.LittleEndian.PutUint64(b[16+16*i:], s.off)
		binary.LittleEndian.PutUint64(b[24+16*i:], s.n)
	}
	binary.LittleEndian.PutUint64(b[96:], h.size)
	binary.LittleEndian.PutUint32(b[124:], crc32.Checksum(b[:124], castagnoli))
	return b
}

// schemaError says what to do about a database of another schema version.
func schemaError(path string, got uint32) error {
	if got > SchemaVersion {
		return errdefs.Unsupported(fmt.Errorf("vulnerability database %s has schema version %d, newer than the version %d this lading reads: upgrade lading, or get a database this version can read with `lading db update` or `lading db build`", path, got, SchemaVersion))
	}
	return errdefs.Unsupported(fmt.Errorf("vulnerability database %s has schema version %d, older than the version %d this lading reads: replace it with `lading db update` (or `lading db pull REF`, or `lading db build --from FEEDS` offline)", path, got, SchemaVersion))
}

// parseHeader checks the header of a database of size bytes.
func parseHeader(path string, b []byte) (header, error) {
	var h header
	if len(b) < headerSize || string(b[:8]) != magic {
		return h, errdefs.Corrupt(fmt.Errorf("%s is not a lading vulnerability database (no %q header)", path, magic))
	}
	h.schema = binary.LittleEndian.Uint32(b[8:])
	if h.schema != SchemaVersion {
		return h, schemaError(path, h.schema)
	}
	if crc32.Checksum(b[:124], castagnoli) != binary.LittleEndian.Uint32(b[124:]) {
		return h, errdefs.Corrupt(fmt.Errorf("vulnerability database %s: header checksum mismatch", path))
	}
	secs := []*section{&h.meta, &h.index, &h.keys, &h.advs, &h.vulns}
	for i, s := range secs {
		s.off = binary.LittleEndian.Uint64(b[16+16*i:])
		s.n = binary.LittleEndian.Uint64(b[24+16*i:])
	}
	h.size = binary.LittleEndian.Uint64(b[96:])
	size := uint64(len(b))
	if h.size != size {
		return h, errdefs.Corrupt(fmt.Errorf("vulnerability database %s: %d bytes, the header says %d (truncated?)", path, size, h.size))
	}
	if h.index.n > maxSection/entrySize {
		return h, errdefs.Corrupt(fmt.Errorf("vulnerability database %s: index of %d entries", path, h.index.n))
	}
	lens := []uint64{h.meta.n, h.index.n * entrySize, h.keys.n, h.advs.n, h.vulns.n}
	for i, s := range secs {
		if s.off < headerSize || s.off > size || lens[i] > size-s.off || lens[i] > maxSection {
			return h, errdefs.Corrupt(fmt.Errorf("vulnerability database %s: section %d out of bounds", path, i))
		}
	}
	return h, nil
}

// encoder appends the encodings of the format's values.
type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) byte(v byte)      { e.b = append(e.b, v) }

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) strs(ss []string) {
	e.uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

func (e *encoder) time(t time.Time) {
	if t.IsZero() || t.Unix() <= 0 {
		e.varint(0)
		return
	}
	e.varint(t.Unix())
}

func (e *encoder) severity(s Severity) {
	e.str(s.Source)
	e.byte(byte(s.Type))
	e.str(s.Vector)
	e.uvarint(uint64(math.Round(s.Score * 10)))
	e.byte(byte(s.Rating))
}

// cursor decodes from a string (a copy of one value, so the decoded strings
// share its memory and a lookup allocates once). The first error sticks.
type cursor struct {
	s   string
	i   int
	err error
}

func (c *cursor) fail(what string) {
	if c.err == nil {
		c.err = errdefs.Corrupt(fmt.Errorf("vulnerability database: bad %s at byte %d of a record", what, c.i))
	}
}

func (c *cursor) uvarint() uint64 {
	if c.err != nil {
		return 0
	}
	var v uint64
	var shift uint
	for n := 0; ; n++ {
		if c.i >= len(c.s) || n == binary.MaxVarintLen64 {
			c.fail("number")
			return 0
		}
		b := c.s[c.i]
		c.i++
		if b < 0x80 {
			if n == binary.MaxVarintLen64-1 && b > 1 {
				c.fail("number")
				return 0
			}
			return v | uint64(b)<<shift
		}
		v |= uint64(b&0x7f) << shift
		shift += 7
	}
}

func (c *cursor) varint() int64 {
	u := c.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (c *cursor) byte() byte {
	if c.err != nil {
		return 0
	}
	if c.i >= len(c.s) {
		c.fail("byte")
		return 0
	}
	c.i++
	return c.s[c.i-1]
}

func (c *cursor) str() string {
	n := c.uvarint()
	if c.err != nil {
		return ""
	}
	if n > uint64(len(c.s)-c.i) {
		c.fail("string length")
		return ""
	}
	s := c.s[c.i : c.i+int(n)]
	c.i += int(n)
	return s
}

// count reads a count of items that take at least min bytes each, so a
// corrupted count cannot make a reader allocate more than the data holds.
func (c *cursor) count(min int) int {
	n := c.uvarint()
	if c.err != nil {
		return 0
	}
	if n > uint64(len(c.s)-c.i)/uint64(min) {
		c.fail("count")
		return 0
	}
	return int(n)
}

func (c *cursor) strs() []string {
	n := c.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = c.str()
	}
	return out
}

func (c *cursor) time() time.Time {
	v := c.varint()
	if v <= 0 {
		return time.Time{}
	}
	return time.Unix(v, 0).UTC()
}

func (c *cursor) severity() Severity {
	var s Severity
	s.Source = c.str()
	s.Type = SeverityType(c.byte())
	s.Vector = c.str()
	s.Score = float64(c.uvarint()) / 10
	s.Rating = Rating(c.byte())
	return s
}
