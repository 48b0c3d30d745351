package registry

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
)

// parseContentRange parses the Content-Range of a chunk upload: the spec's
// "<start>-<end>" (inclusive on both ends), also in the forms
// "bytes <start>-<end>[/<total>|/*]" and "bytes=<start>-<end>" that some
// clients send.
func parseContentRange(s string) (start, end int64, err error) {
	v := strings.TrimSpace(s)
	if r, ok := strings.CutPrefix(v, "bytes"); ok {
		v = strings.TrimLeft(r, " =")
	}
	if i := strings.IndexByte(v, '/'); i >= 0 {
		total := v[i+1:]
		if total != "*" {
			if _, err := parseOffset(total); err != nil {
				return 0, 0, errdefs.InvalidArgument(fmt.Errorf("Content-Range %q: total: %w", s, err))
			}
		}
		v = v[:i]
	}
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		return 0, 0, errdefs.InvalidArgument(fmt.Errorf("Content-Range %q: want <start>-<end>", s))
	}
	if start, err = parseOffset(a); err != nil {
		return 0, 0, errdefs.InvalidArgument(fmt.Errorf("Content-Range %q: start: %w", s, err))
	}
	if end, err = parseOffset(b); err != nil {
		return 0, 0, errdefs.InvalidArgument(fmt.Errorf("Content-Range %q: end: %w", s, err))
	}
	if end < start {
		return 0, 0, errdefs.InvalidArgument(fmt.Errorf("Content-Range %q: end before start", s))
	}
	return start, end, nil
}

// parseOffset parses a non-negative decimal byte offset (at most 18
// digits, so it cannot overflow).
func parseOffset(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, fmt.Errorf("%q is not a byte offset", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a byte offset", s)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// rangeKind is how a blob GET answers its Range header.
type rangeKind int

const (
	rangeFull          rangeKind = iota // 200, the whole blob
	rangePartial                        // 206, start..end
	rangeUnsatisfiable                  // 416
)

// parseRange reads the Range header of a blob GET against the blob's size.
// One range is served ("bytes=a-b", "bytes=a-", "bytes=-n"); a header that
// is not a single byte range is ignored, as RFC 9110 allows. A range that
// starts past the end, or ends before it starts, cannot be satisfied.
func parseRange(h string, size int64) (kind rangeKind, start, end int64) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return rangeFull, 0, size - 1
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return rangeFull, 0, size - 1
	}
	if a == "" {
		n, err := parseOffset(b)
		if err != nil {
			return rangeFull, 0, size - 1
		}
		if n == 0 || size == 0 {
			return rangeUnsatisfiable, 0, 0
		}
		return rangePartial, max(size-n, 0), size - 1
	}
	start, err := parseOffset(a)
	if err != nil {
		return rangeFull, 0, size - 1
	}
	end = size - 1
	if b != "" {
		e, err := parseOffset(b)
		if err != nil {
			return rangeFull, 0, size - 1
		}
		if e < start {
			return rangeUnsatisfiable, 0, 0
		}
		end = min(e, size-1)
	}
	if start >= size {
		return rangeUnsatisfiable, 0, 0
	}
	return rangePartial, start, end
}
