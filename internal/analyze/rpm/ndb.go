package rpm

import (
	"encoding/binary"
	"fmt"
	"io"
)

// NDB databases (rpm's Packages.db, SUSE since 15 SP3): little-endian. A
// 32-byte header (magic "RpmP", version 0, generation, number of slot pages)
// is followed by the slot pages, 4096 bytes each, whose first two 16-byte
// slots are the header itself. A slot (magic "Slot", package index, block
// offset, block count) whose package index is not 0 points to a blob at
// block offset × 16: a 16-byte blob header (magic "BlbS", package index,
// checksum, length) and the package header.

const (
	ndbMagic      = 'R' | 'p'<<8 | 'm'<<16 | 'P'<<24
	ndbSlotMagic  = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	ndbBlobMagic  = 'B' | 'l'<<8 | 'b'<<16 | 'S'<<24
	ndbSlotPage   = 4096
	ndbBlock      = 16
	ndbMaxSlotPgs = 2048
)

func isNDB(head []byte) bool {
	return len(head) >= 4 && binary.LittleEndian.Uint32(head) == ndbMagic
}

func readNDB(r io.ReaderAt, size int64, fn func([]byte)) (warnings []string, err error) {
	hdr := make([]byte, 32)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("ndb: header: %w", err)
	}
	if v := binary.LittleEndian.Uint32(hdr[4:]); v != 0 {
		return nil, fmt.Errorf("ndb: unsupported version %d", v)
	}
	npages := binary.LittleEndian.Uint32(hdr[12:])
	if npages == 0 || npages > ndbMaxSlotPgs || int64(npages)*ndbSlotPage > size {
		return nil, fmt.Errorf("ndb: bad number of slot pages %d for a file of %d bytes", npages, size)
	}
	slots := make([]byte, int(npages)*ndbSlotPage)
	if _, err := r.ReadAt(slots, 0); err != nil {
		return nil, fmt.Errorf("ndb: slot pages: %w", err)
	}
	for off := 32; off+16 <= len(slots); off += 16 {
		s := slots[off:]
		if binary.LittleEndian.Uint32(s) != ndbSlotMagic {
			return warnings, fmt.Errorf("ndb: slot %d: bad magic", (off-32)/16)
		}
		idx := binary.LittleEndian.Uint32(s[4:])
		if idx == 0 {
			continue
		}
		blkOff, blkCnt := int64(binary.LittleEndian.Uint32(s[8:])), int64(binary.LittleEndian.Uint32(s[12:]))
		b, err := ndbBlob(r, size, idx, blkOff*ndbBlock, blkCnt*ndbBlock)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("ndb: package %d: %v", idx, err))
			continue
		}
		fn(b)
	}
	return warnings, nil
}

func ndbBlob(r io.ReaderAt, size int64, idx uint32, off, n int64) ([]byte, error) {
	if off < int64(ndbSlotPage) || n < 16 || off+n > size {
		return nil, fmt.Errorf("blob at %d of %d bytes is outside the file", off, n)
	}
	bh := make([]byte, 16)
	if _, err := r.ReadAt(bh, off); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(bh) != ndbBlobMagic {
		return nil, fmt.Errorf("blob at %d: bad magic", off)
	}
	if got := binary.LittleEndian.Uint32(bh[4:]); got != idx {
		return nil, fmt.Errorf("blob at %d belongs to package %d", off, got)
	}
	l := int64(binary.LittleEndian.Uint32(bh[12:]))
	if l > n-16 || l > maxRecord {
		return nil, fmt.Errorf("blob of %d bytes does not fit its %d-byte block", l, n)
	}
	b := make([]byte, l)
	if _, err := r.ReadAt(b, off+16); err != nil {
		return nil, err
	}
	return b, nil
}
