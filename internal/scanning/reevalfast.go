package scanning

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/lading-dev/lading/internal/match"
)

// Re-evaluation reads each report's stored matcher inputs (a zstd-packed
// JSON array of match.Package objects). Images share most packages, so the
// same object text recurs across thousands of reports: rawMemo keys the
// findings by that text and decodes an object only the first time it is
// seen, which spares the re-evaluation nearly all of its JSON decoding.

// rawMemo is a memo that also knows packages by their stored JSON text.
type rawMemo struct {
	*memo
	raw   map[string][]finding
	plain []byte   // the decompressed inputs of the report at hand
	elems [][2]int // their array's elements
}

func newRawMemo(mm *memo) *rawMemo { return &rawMemo{memo: mm, raw: map[string][]finding{}} }

// computePacked is the verdict of a report's packed inputs.
func (rm *rawMemo) computePacked(ctx context.Context, packed []byte) (verdict, error) {
	if len(packed) == 0 {
		return verdict{}, fmt.Errorf("no stored data")
	}
	var err error
	if rm.plain, err = zdec.DecodeAll(packed, rm.plain[:0]); err != nil {
		return verdict{}, err
	}
	var ok bool
	if rm.elems, ok = splitObjects(rm.plain, rm.elems[:0]); !ok {
		// Not the shape lading writes: decode it whole, which says
		// what is wrong with it if anything is.
		var pkgs []match.Package
		if err := json.Unmarshal(rm.plain, &pkgs); err != nil {
			return verdict{}, err
		}
		return rm.compute(ctx, pkgs)
	}
	v := newVerdict()
	for _, e := range rm.elems {
		obj := rm.plain[e[0]:e[1]]
		fs, ok := rm.raw[string(obj)]
		if !ok {
			var p match.Package
			if err := json.Unmarshal(obj, &p); err != nil {
				return verdict{}, err
			}
			if fs, err = rm.findings(ctx, p); err != nil {
				return verdict{}, err
			}
			if len(rm.raw) < memoLimit {
				rm.raw[string(obj)] = fs
			}
		}
		v.add(fs)
	}
	return v, nil
}

// splitObjects appends to elems the bounds of each element of b, a JSON
// array of objects. It returns false when b is not such an array as far
// as a scan of its structure tells (the elements' contents are left to
// the JSON decoder).
func splitObjects(b []byte, elems [][2]int) ([][2]int, bool) {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '[' {
		return elems, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return elems, skipSpace(b, i+1) == len(b)
	}
	for {
		end, ok := objectEnd(b, i)
		if !ok {
			return elems, false
		}
		elems = append(elems, [2]int{i, end})
		i = skipSpace(b, end)
		if i == len(b) {
			return elems, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return elems, skipSpace(b, i+1) == len(b)
		default:
			return elems, false
		}
	}
}

// objectEnd returns the end of the JSON object that starts at b[i],
// matching brackets outside strings.
func objectEnd(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			j := i + 1
			for {
				k := bytes.IndexAny(b[j:], `"\`)
				if k < 0 {
					return 0, false
				}
				j += k
				if b[j] == '"' {
					break
				}
				j += 2 // an escape and the byte it escapes
				if j > len(b) {
					return 0, false
				}
			}
			i = j
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// sameFindings reports whether stored (packed findings, as pack wrote
// them) says what now (the JSON of the findings just computed) says,
// comparing the JSON texts: encoding/json writes a []finding one way
// only. No finding written as null or [] are the same.
func sameFindings(stored, now, scratch []byte) (bool, []byte) {
	if len(stored) == 0 {
		return isEmptyJSON(now), scratch
	}
	plain, err := zdec.DecodeAll(stored, scratch[:0])
	if err != nil {
		return false, scratch
	}
	if isEmptyJSON(now) {
		return isEmptyJSON(plain), plain
	}
	return bytes.Equal(plain, now), plain
}

func isEmptyJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null" || string(b) == "[]"
}
