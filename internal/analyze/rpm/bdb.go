package rpm

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Berkeley DB hash databases (rpm's Packages up to RHEL 8): fixed-size
// pages; page 0 is the hash metadata page (magic 0x061561 at offset 12, in
// either byte order, which tells the file's byte order; page size at 20;
// last page number at 32; page type 8 at 25). Hash pages (type 13, or 2 for
// databases from before Berkeley DB 4.6) hold an index of 16-bit item
// offsets after a 26-byte header; items alternate key and value. rpm's
// values are package headers, stored in chains of overflow pages (an
// H_OFFPAGE item: type 3, page number at 4, total length at 8) whose pages
// (type 7) give the next page at 16 and the bytes they hold at 22. Small
// values are inline (an H_KEYDATA item: type 1, then the bytes).
//
// Every hash page is read in file order, so a damaged bucket chain cannot
// hide the rest; overflow chains are followed with a bound on their length
// and without revisiting a page.

const (
	bdbHashMagic    = 0x00061561
	bdbPageHeader   = 26
	bdbPageHashMeta = 8
	bdbPageHash     = 13
	bdbPageHashOld  = 2
	bdbPageOverflow = 7
	bdbItemKeyData  = 1
	bdbItemOffPage  = 3
	maxRecord       = 64 << 20
	minHeaderRecord = 16
)

func isBDB(head []byte) bool {
	if len(head) < 26 {
		return false
	}
	le := binary.LittleEndian.Uint32(head[12:])
	be := binary.BigEndian.Uint32(head[12:])
	return (le == bdbHashMagic || be == bdbHashMagic) && head[25] == bdbPageHashMeta
}

type bdb struct {
	r        io.ReaderAt
	order    binary.ByteOrder
	pageSize uint32
	last     uint32
}

// readBDB calls fn with every value of the database; warnings are records
// that could not be read.
func readBDB(r io.ReaderAt, size int64, fn func([]byte)) (warnings []string, err error) {
	meta := make([]byte, 512)
	if _, err := r.ReadAt(meta, 0); err != nil {
		return nil, fmt.Errorf("berkeley db: metadata page: %w", err)
	}
	db := &bdb{r: r, order: binary.LittleEndian}
	if binary.LittleEndian.Uint32(meta[12:]) != bdbHashMagic {
		db.order = binary.BigEndian
	}
	if meta[24] != 0 {
		return nil, fmt.Errorf("berkeley db: encrypted (algorithm %d)", meta[24])
	}
	db.pageSize = db.order.Uint32(meta[20:])
	db.last = db.order.Uint32(meta[32:])
	if db.pageSize < 512 || db.pageSize > 65536 || db.pageSize&(db.pageSize-1) != 0 {
		return nil, fmt.Errorf("berkeley db: bad page size %d", db.pageSize)
	}
	if max := uint64(size) / uint64(db.pageSize); uint64(db.last) >= max {
		if max == 0 {
			return nil, fmt.Errorf("berkeley db: file of %d bytes is shorter than a page", size)
		}
		warnings = append(warnings, fmt.Sprintf("berkeley db: last page %d is beyond the end of the file (%d pages); reading what is there", db.last, max))
		db.last = uint32(max - 1)
	}
	page := make([]byte, db.pageSize)
	for pg := uint32(1); pg <= db.last; pg++ {
		if _, err := r.ReadAt(page, int64(pg)*int64(db.pageSize)); err != nil {
			return warnings, fmt.Errorf("berkeley db: page %d: %w", pg, err)
		}
		if t := page[25]; t != bdbPageHash && t != bdbPageHashOld {
			continue
		}
		warnings = append(warnings, db.hashPage(pg, page, fn)...)
	}
	return warnings, nil
}

// hashPage calls fn with the values of one hash page.
func (db *bdb) hashPage(pg uint32, page []byte, fn func([]byte)) (warnings []string) {
	n := int(db.order.Uint16(page[20:]))
	if bdbPageHeader+2*n > len(page) {
		return []string{fmt.Sprintf("berkeley db: page %d: %d items do not fit", pg, n)}
	}
	offset := func(i int) int { return int(db.order.Uint16(page[bdbPageHeader+2*i:])) }
	for i := 1; i < n; i += 2 { // values: every second item
		off := offset(i)
		end := int(db.pageSize)
		if i > 0 {
			end = offset(i - 1)
		}
		if off < bdbPageHeader+2*n || off >= len(page) || end > len(page) || end <= off {
			warnings = append(warnings, fmt.Sprintf("berkeley db: page %d: item %d has a bad offset", pg, i))
			continue
		}
		switch page[off] {
		case bdbItemKeyData:
			if v := page[off+1 : end]; len(v) >= minHeaderRecord {
				fn(v)
			}
		case bdbItemOffPage:
			if off+12 > len(page) {
				warnings = append(warnings, fmt.Sprintf("berkeley db: page %d: item %d is cut off", pg, i))
				continue
			}
			v, err := db.overflow(db.order.Uint32(page[off+4:]), db.order.Uint32(page[off+8:]))
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("berkeley db: page %d: item %d: %v", pg, i, err))
				continue
			}
			fn(v)
		}
	}
	return warnings
}

// overflow reads a value of length n from the chain of overflow pages that
// starts at pg.
func (db *bdb) overflow(pg, n uint32) ([]byte, error) {
	if n > maxRecord {
		return nil, fmt.Errorf("value of %d bytes is over the limit of %d", n, maxRecord)
	}
	// The length is the file's word: allocate as the pages come.
	out := make([]byte, 0, min(n, 1<<20))
	page := make([]byte, db.pageSize)
	seen := map[uint32]bool{}
	for uint32(len(out)) < n {
		if pg == 0 || pg > db.last {
			return nil, fmt.Errorf("overflow chain ends at page %d after %d of %d bytes", pg, len(out), n)
		}
		if seen[pg] {
			return nil, fmt.Errorf("overflow chain loops at page %d", pg)
		}
		seen[pg] = true
		if _, err := db.r.ReadAt(page, int64(pg)*int64(db.pageSize)); err != nil {
			return nil, fmt.Errorf("overflow page %d: %w", pg, err)
		}
		if page[25] != bdbPageOverflow {
			return nil, fmt.Errorf("page %d in an overflow chain is of type %d", pg, page[25])
		}
		k := int(db.order.Uint16(page[22:]))
		if k > len(page)-bdbPageHeader {
			return nil, fmt.Errorf("overflow page %d claims %d bytes", pg, k)
		}
		if rest := int(n) - len(out); k > rest {
			k = rest
		}
		out = append(out, page[bdbPageHeader:bdbPageHeader+k]...)
		pg = db.order.Uint32(page[16:])
	}
	if uint32(len(out)) != n {
		return nil, fmt.Errorf("overflow chain holds %d of %d bytes", len(out), n)
	}
	return out, nil
}
