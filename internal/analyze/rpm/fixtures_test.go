package rpm

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Writers of small rpm databases for the tests, from the format
// descriptions in the package's files.

type tagValue struct {
	tag uint32
	val any // string, []string, int32
}

// hdr builds a header blob (il, dl, index, data) from tags, in order.
func hdr(tags ...tagValue) []byte {
	var index, data bytes.Buffer
	be := binary.BigEndian
	for _, tv := range tags {
		var typ, count uint32
		off := uint32(data.Len())
		switch v := tv.val.(type) {
		case string:
			typ, count = typeString, 1
			data.WriteString(v)
			data.WriteByte(0)
		case []string:
			typ, count = typeStringArray, uint32(len(v))
			for _, s := range v {
				data.WriteString(s)
				data.WriteByte(0)
			}
		case int32:
			for data.Len()%4 != 0 {
				data.WriteByte(0)
			}
			off = uint32(data.Len())
			typ, count = typeInt32, 1
			binary.Write(&data, be, v)
		}
		binary.Write(&index, be, [4]uint32{tv.tag, typ, off, count})
	}
	var out bytes.Buffer
	binary.Write(&out, be, [2]uint32{uint32(len(tags)), uint32(data.Len())})
	out.Write(index.Bytes())
	out.Write(data.Bytes())
	return out.Bytes()
}

// pkgHeader is the header of a package with the usual tags; epoch < 0
// leaves the epoch out.
func pkgHeader(name, version, release string, epoch int32, arch string) []byte {
	tags := []tagValue{
		{tagName, name}, {tagVersion, version}, {tagRelease, release},
		{tagArch, arch}, {tagLicense, "MIT"},
		{tagSourceRPM, fmt.Sprintf("%s-%s-%s.src.rpm", name, version, release)},
	}
	if epoch >= 0 {
		tags = append(tags, tagValue{tagEpoch, epoch})
	}
	return hdr(tags...)
}

// ndbFile lays blobs out as an NDB Packages.db.
func ndbFile(blobs [][]byte) []byte {
	le := binary.LittleEndian
	slotPages := 1
	out := make([]byte, slotPages*ndbSlotPage)
	le.PutUint32(out[0:], ndbMagic)
	le.PutUint32(out[12:], uint32(slotPages))
	for i := 32; i < len(out); i += 16 {
		le.PutUint32(out[i:], ndbSlotMagic)
	}
	for i, b := range blobs {
		off := len(out)
		n := (16 + len(b) + 16 + ndbBlock - 1) / ndbBlock * ndbBlock
		blk := make([]byte, n)
		le.PutUint32(blk[0:], ndbBlobMagic)
		le.PutUint32(blk[4:], uint32(i+1))
		le.PutUint32(blk[12:], uint32(len(b)))
		copy(blk[16:], b)
		out = append(out, blk...)
		s := out[32+16*i:]
		le.PutUint32(s[4:], uint32(i+1))
		le.PutUint32(s[8:], uint32(off/ndbBlock))
		le.PutUint32(s[12:], uint32(n/ndbBlock))
	}
	return out
}

// bdbFile lays values out as a Berkeley DB hash file: hash pages with the
// keys 1..n and the values in overflow chains; values of fewer than 16
// bytes stay on the hash page.
func bdbFile(pageSize int, order binary.ByteOrder, values [][]byte) []byte {
	pages := [][]byte{make([]byte, pageSize)}
	var hash []byte
	var end int
	var offs []uint16
	finish := func() {
		if hash == nil {
			return
		}
		order.PutUint16(hash[20:], uint16(len(offs)))
		for i, o := range offs {
			order.PutUint16(hash[bdbPageHeader+2*i:], o)
		}
		hash = nil
	}
	item := func(b []byte) {
		end -= len(b)
		copy(hash[end:], b)
		offs = append(offs, uint16(end))
	}
	for i, v := range values {
		key := make([]byte, 5)
		key[0] = bdbItemKeyData
		order.PutUint32(key[1:], uint32(i+1))
		val := append([]byte{bdbItemKeyData}, v...)
		if len(v) >= minHeaderRecord {
			val = make([]byte, 12)
			val[0] = bdbItemOffPage
			order.PutUint32(val[4:], uint32(len(pages)))
			order.PutUint32(val[8:], uint32(len(v)))
		}
		if hash == nil || end-len(key)-len(val) < bdbPageHeader+2*(len(offs)+2) {
			finish()
			hash = make([]byte, pageSize)
			hash[25] = bdbPageHash
			pages = append(pages, hash)
			end, offs = pageSize, nil
			if len(v) >= minHeaderRecord {
				order.PutUint32(val[4:], uint32(len(pages)))
			}
		}
		item(key)
		item(val)
		if len(v) < minHeaderRecord {
			continue
		}
		for rest := v; len(rest) > 0; {
			pg := make([]byte, pageSize)
			pg[25] = bdbPageOverflow
			k := min(len(rest), pageSize-bdbPageHeader)
			copy(pg[bdbPageHeader:], rest[:k])
			order.PutUint16(pg[22:], uint16(k))
			rest = rest[k:]
			if len(rest) > 0 {
				order.PutUint32(pg[16:], uint32(len(pages)+1))
			}
			pages = append(pages, pg)
		}
	}
	finish()
	meta := pages[0]
	order.PutUint32(meta[12:], bdbHashMagic)
	order.PutUint32(meta[20:], uint32(pageSize))
	order.PutUint32(meta[32:], uint32(len(pages)-1))
	meta[25] = bdbPageHashMeta
	return bytes.Join(pages, nil)
}

// sqliteFile lays blobs out as an SQLite database with rpm's schema, one
// row per leaf page under an interior root page, overflow pages for long
// rows.
func sqliteFile(pageSize int, blobs [][]byte) []byte {
	be := binary.BigEndian
	u := pageSize
	var pages [][]byte
	newPage := func() (int, []byte) {
		p := make([]byte, pageSize)
		pages = append(pages, p)
		return len(pages), p // 1-based page number
	}
	newPage() // page 1: schema, filled in last
	rootNo, root := newPage()
	cell := func(page []byte, h int, rowid int64, payload []byte) {
		x := u - 35
		local := len(payload)
		if local > x {
			m := (u-12)*32/255 - 23
			k := m + (len(payload)-m)%(u-4)
			local = m
			if k <= x {
				local = k
			}
		}
		var c []byte
		c = appendVarint(c, uint64(len(payload)))
		c = appendVarint(c, uint64(rowid))
		c = append(c, payload[:local]...)
		if rest := payload[local:]; len(rest) > 0 {
			next := len(pages) + 1
			c = be.AppendUint32(c, uint32(next))
			for len(rest) > 0 {
				_, op := newPage()
				k := min(len(rest), u-4)
				copy(op[4:], rest[:k])
				rest = rest[k:]
				if len(rest) > 0 {
					be.PutUint32(op, uint32(len(pages)+1))
				}
			}
		}
		start := pageSize - len(c)
		copy(page[start:], c)
		page[h] = 0x0d
		be.PutUint16(page[h+3:], 1)
		be.PutUint16(page[h+5:], uint16(start))
		be.PutUint16(page[h+8:], uint16(start))
	}
	record := func(vals ...any) []byte {
		var types, body []byte
		for _, v := range vals {
			switch v := v.(type) {
			case nil:
				types = appendVarint(types, 0)
			case string:
				types = appendVarint(types, uint64(13+2*len(v)))
				body = append(body, v...)
			case []byte:
				types = appendVarint(types, uint64(12+2*len(v)))
				body = append(body, v...)
			case int:
				types = appendVarint(types, 4)
				body = be.AppendUint32(body, uint32(v))
			}
		}
		h := appendVarint(nil, uint64(len(types)+1))
		return append(append(h, types...), body...)
	}
	var leaves []int
	for i, b := range blobs {
		no, lp := newPage()
		leaves = append(leaves, no)
		cell(lp, 0, int64(i+1), record(nil, b))
	}
	// The interior root: a cell (left child, key) per leaf but the last,
	// which is the right-most pointer.
	root[0] = 0x05
	end := pageSize
	n := len(leaves) - 1
	for i := 0; i < n; i++ {
		c := be.AppendUint32(nil, uint32(leaves[i]))
		c = appendVarint(c, uint64(i+1))
		end -= len(c)
		copy(root[end:], c)
		be.PutUint16(root[12+2*i:], uint16(end))
	}
	be.PutUint16(root[3:], uint16(n))
	be.PutUint16(root[5:], uint16(end))
	if len(leaves) > 0 {
		be.PutUint32(root[8:], uint32(leaves[n]))
	} else {
		root[0] = 0x0d
	}
	schema := record("table", "Packages", "Packages", rootNo, "CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)")
	cell(pages[0], 100, 1, schema)
	p1 := pages[0]
	copy(p1, sqliteMagic)
	be.PutUint16(p1[16:], uint16(pageSize))
	p1[18], p1[19] = 1, 1
	p1[21], p1[22], p1[23] = 64, 32, 32
	be.PutUint32(p1[24:], 1)
	be.PutUint32(p1[28:], uint32(len(pages)))
	be.PutUint32(p1[44:], 4) // schema format
	be.PutUint32(p1[56:], 1) // UTF-8
	be.PutUint32(p1[92:], 1)
	be.PutUint32(p1[96:], 3045000)
	return bytes.Join(pages, nil)
}

func appendVarint(b []byte, v uint64) []byte {
	if v <= 0x7f {
		return append(b, byte(v))
	}
	var tmp [10]byte
	n := 0
	for v > 0 {
		tmp[n] = byte(v & 0x7f)
		v >>= 7
		n++
	}
	for i := n - 1; i >= 0; i-- {
		c := tmp[i]
		if i > 0 {
			c |= 0x80
		}
		b = append(b, c)
	}
	return b
}
