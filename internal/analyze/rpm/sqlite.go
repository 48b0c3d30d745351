package rpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// SQLite databases (rpmdb.sqlite, rpm 4.16 and later), read directly from
// the file format (https://www.sqlite.org/fileformat2.html) without an SQL
// engine: only what rpm's Packages table needs. The table's row is (hnum
// INTEGER PRIMARY KEY, blob BLOB), so a row's record holds NULL (the rowid
// alias) and the header.
//
// The database header gives the page size (offset 16, big-endian; 1 means
// 65536) and the reserved bytes per page (offset 20). Page 1 is the root of
// the schema table, whose rows are (type, name, tbl_name, rootpage, sql).
// A table b-tree page starts with a header (at offset 100 on page 1): the
// page type (13 leaf, 5 interior), the cell count at 3, the right-most child
// at 8 for interior pages, then the cell pointer array. A leaf cell is the
// payload length and the rowid as varints, then the payload, whose tail may
// go to a chain of overflow pages (each: the next page number, then
// usable size − 4 bytes). A database with an uncheckpointed write-ahead log
// (rpmdb.sqlite-wal) is read without it.
//
// Pages are visited at most once, so a damaged or hostile file cannot make
// the reader loop; b-trees deeper than 64 levels are refused.

var sqliteMagic = []byte("SQLite format 3\x00")

func isSQLite(head []byte) bool { return bytes.HasPrefix(head, sqliteMagic) }

type sqliteDB struct {
	r        io.ReaderAt
	pageSize int
	usable   int
	nPages   uint32
	visited  map[uint32]bool
}

var errSQLite = errors.New("sqlite")

func (db *sqliteDB) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errSQLite}, args...)...)
}

func readSQLite(r io.ReaderAt, size int64, fn func([]byte)) (warnings []string, err error) {
	hdr := make([]byte, 100)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("sqlite: header: %w", err)
	}
	db := &sqliteDB{r: r, visited: map[uint32]bool{}}
	db.pageSize = int(binary.BigEndian.Uint16(hdr[16:]))
	if db.pageSize == 1 {
		db.pageSize = 65536
	}
	if db.pageSize < 512 || db.pageSize > 65536 || db.pageSize&(db.pageSize-1) != 0 {
		return nil, db.errorf("bad page size %d", db.pageSize)
	}
	db.usable = db.pageSize - int(hdr[20])
	if db.usable < 480 {
		return nil, db.errorf("bad reserved space %d", hdr[20])
	}
	db.nPages = uint32(size / int64(db.pageSize))
	if db.nPages == 0 {
		return nil, db.errorf("file of %d bytes is shorter than a page", size)
	}
	root := uint32(0)
	err = db.rows(1, func(rowid int64, payload []byte) error {
		cols, err := db.record(payload, 5)
		if err != nil {
			return err
		}
		if t, _ := cols[0].([]byte); string(t) != "table" {
			return nil
		}
		if n, _ := cols[1].([]byte); string(n) != "Packages" {
			return nil
		}
		if v, ok := cols[3].(int64); ok && v > 0 && v <= int64(db.nPages) {
			root = uint32(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if root == 0 {
		return nil, db.errorf("no Packages table")
	}
	err = db.rows(root, func(rowid int64, payload []byte) error {
		cols, err := db.record(payload, 2)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("sqlite: Packages row %d: %v", rowid, err))
			return nil
		}
		if b, ok := cols[1].([]byte); ok {
			fn(b)
		} else {
			warnings = append(warnings, fmt.Sprintf("sqlite: Packages row %d: the blob column is not a blob", rowid))
		}
		return nil
	})
	if err != nil {
		return warnings, fmt.Errorf("Packages table: %w", err)
	}
	return warnings, nil
}

func (db *sqliteDB) page(n uint32) ([]byte, error) {
	if n == 0 || n > db.nPages {
		return nil, db.errorf("page %d is outside the file (%d pages)", n, db.nPages)
	}
	if db.visited[n] {
		return nil, db.errorf("page %d is referenced twice", n)
	}
	db.visited[n] = true
	b := make([]byte, db.pageSize)
	if _, err := db.r.ReadAt(b, int64(n-1)*int64(db.pageSize)); err != nil {
		return nil, fmt.Errorf("sqlite: page %d: %w", n, err)
	}
	return b, nil
}

// rows calls fn for each row of the table b-tree rooted at root, with the
// row's whole payload.
func (db *sqliteDB) rows(root uint32, fn func(rowid int64, payload []byte) error) error {
	type item struct {
		pg    uint32
		depth int
	}
	stack := []item{{root, 0}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it.depth > 64 {
			return db.errorf("b-tree deeper than 64 levels")
		}
		b, err := db.page(it.pg)
		if err != nil {
			return err
		}
		h := 0
		if it.pg == 1 {
			h = 100
		}
		if len(b) < h+12 {
			return db.errorf("page %d is too short", it.pg)
		}
		typ, n := b[h], int(binary.BigEndian.Uint16(b[h+3:]))
		switch typ {
		case 0x0d: // leaf
			if h+8+2*n > db.usable {
				return db.errorf("page %d: %d cells do not fit", it.pg, n)
			}
			for i := range n {
				off := int(binary.BigEndian.Uint16(b[h+8+2*i:]))
				rowid, payload, err := db.leafCell(b, off)
				if err != nil {
					return fmt.Errorf("page %d cell %d: %w", it.pg, i, err)
				}
				if err := fn(rowid, payload); err != nil {
					return err
				}
			}
		case 0x05: // interior
			if h+12+2*n > db.usable {
				return db.errorf("page %d: %d cells do not fit", it.pg, n)
			}
			// Push the right-most child first, so children are visited in
			// key order.
			stack = append(stack, item{binary.BigEndian.Uint32(b[h+8:]), it.depth + 1})
			for i := n - 1; i >= 0; i-- {
				off := int(binary.BigEndian.Uint16(b[h+12+2*i:]))
				if off+4 > db.usable {
					return db.errorf("page %d: cell %d is outside the page", it.pg, i)
				}
				stack = append(stack, item{binary.BigEndian.Uint32(b[off:]), it.depth + 1})
			}
		default:
			return db.errorf("page %d is not a table b-tree page (type %d)", it.pg, typ)
		}
	}
	return nil
}

// leafCell returns the rowid and the whole payload of the leaf cell at off.
func (db *sqliteDB) leafCell(b []byte, off int) (int64, []byte, error) {
	if off < 8 || off >= db.usable {
		return 0, nil, db.errorf("cell offset %d is outside the page", off)
	}
	c := b[off:db.usable]
	plen, n := varint(c)
	if n == 0 {
		return 0, nil, db.errorf("malformed cell")
	}
	c = c[n:]
	rowid, n := varint(c)
	if n == 0 {
		return 0, nil, db.errorf("malformed cell")
	}
	c = c[n:]
	if plen > maxRecord {
		return 0, nil, db.errorf("payload of %d bytes is over the limit of %d", plen, maxRecord)
	}
	p := int(plen)
	u := db.usable
	x := u - 35
	local := p
	if p > x {
		m := (u-12)*32/255 - 23
		k := m + (p-m)%(u-4)
		local = m
		if k <= x {
			local = k
		}
	}
	if local > len(c) {
		return 0, nil, db.errorf("payload is cut off")
	}
	out := make([]byte, 0, min(p, 1<<20)) // p is the file's word
	out = append(out, c[:local]...)
	if local == p {
		return int64(rowid), out, nil
	}
	if len(c) < local+4 {
		return 0, nil, db.errorf("overflow page number is cut off")
	}
	next := binary.BigEndian.Uint32(c[local:])
	for len(out) < p {
		pg, err := db.page(next)
		if err != nil {
			return 0, nil, fmt.Errorf("overflow: %w", err)
		}
		k := min(u-4, p-len(out))
		out = append(out, pg[4:4+k]...)
		next = binary.BigEndian.Uint32(pg)
	}
	return int64(rowid), out, nil
}

// record decodes the first n columns of a record: nil, int64, float
// (as nil) or []byte (text and blobs).
func (db *sqliteDB) record(p []byte, n int) ([]any, error) {
	hlen, k := varint(p)
	if k == 0 || hlen > uint64(len(p)) || hlen < uint64(k) {
		return nil, db.errorf("malformed record header")
	}
	types := p[k:hlen]
	body := p[hlen:]
	cols := make([]any, n)
	for i := 0; i < n && len(types) > 0; i++ {
		t, m := varint(types)
		if m == 0 {
			return nil, db.errorf("malformed record header")
		}
		types = types[m:]
		size := 0
		switch {
		case t == 0, t == 8, t == 9:
			if t == 8 || t == 9 {
				cols[i] = int64(t - 8)
			}
		case t >= 1 && t <= 6:
			size = []int{0, 1, 2, 3, 4, 6, 8}[t]
		case t == 7:
			size = 8
		case t >= 12:
			size = int((t - 12) / 2)
			if uint64(size) > uint64(len(body)) {
				return nil, db.errorf("record column %d is cut off", i)
			}
		default:
			return nil, db.errorf("record column %d has reserved type %d", i, t)
		}
		if size > len(body) {
			return nil, db.errorf("record column %d is cut off", i)
		}
		v := body[:size]
		body = body[size:]
		switch {
		case t >= 1 && t <= 6:
			x := int64(int8(v[0]))
			for _, c := range v[1:] {
				x = x<<8 | int64(c)
			}
			cols[i] = x
		case t >= 12:
			cols[i] = v
		}
	}
	return cols, nil
}

// varint decodes an SQLite varint: big-endian, 7 bits per byte with the
// high bit set on all but the last, the ninth byte giving 8 bits. n is 0
// when b is too short.
func varint(b []byte) (v uint64, n int) {
	for i := 0; i < 9; i++ {
		if i >= len(b) {
			return 0, 0
		}
		if i == 8 {
			return v<<8 | uint64(b[i]), 9
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return v, 9
}
