// Package verify checks content against its digest and size as it streams.
//
// The contract, as umoci states it for its blob readers: a Reader returns the
// bytes of the underlying stream unchanged; the Read that would return io.EOF
// instead returns an error of class errdefs.ErrCorrupt when the bytes read do
// not hash to the expected digest or their count differs from the expected
// size. A stream longer than the expected size fails as soon as the excess is
// read, so a hostile source cannot make a caller consume unbounded data. A
// caller that stops before EOF has verified nothing.
package verify

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Hasher returns a new hash for a digest algorithm ("sha256" or "sha512").
func Hasher(algorithm string) (hash.Hash, error) {
	switch algorithm {
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, errdefs.Unsupported(fmt.Errorf("digest algorithm %q", algorithm))
}

// ParseDigest parses "algorithm:hex" and checks that the hex part has the
// length and alphabet the algorithm requires. The error is of class
// errdefs.ErrInvalidArgument.
func ParseDigest(s string) (v1.Hash, error) {
	h, err := v1.NewHash(s)
	if err != nil {
		// v1.NewHash only accepts sha256; handle sha512 ourselves.
		h, err = parseAny(s)
		if err != nil {
			return v1.Hash{}, err
		}
	}
	if err := CheckHash(h); err != nil {
		return v1.Hash{}, err
	}
	return h, nil
}

func parseAny(s string) (v1.Hash, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return v1.Hash{Algorithm: s[:i], Hex: s[i+1:]}, nil
		}
	}
	return v1.Hash{}, errdefs.InvalidArgument(fmt.Errorf("digest %q: want algorithm:hex", s))
}

// CheckHash reports whether h is a well-formed sha256 or sha512 digest.
func CheckHash(h v1.Hash) error {
	var n int
	switch h.Algorithm {
	case "sha256":
		n = sha256.Size * 2
	case "sha512":
		n = sha512.Size * 2
	default:
		return errdefs.Unsupported(fmt.Errorf("digest %q: algorithm %q", h.String(), h.Algorithm))
	}
	if len(h.Hex) != n {
		return errdefs.InvalidArgument(fmt.Errorf("digest %q: %s wants %d hex digits, got %d", h.String(), h.Algorithm, n, len(h.Hex)))
	}
	for i := 0; i < len(h.Hex); i++ {
		c := h.Hex[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return errdefs.InvalidArgument(fmt.Errorf("digest %q: %q is not a lower-case hex digit", h.String(), c))
		}
	}
	return nil
}

// Reader verifies a stream against a digest and a size; see the package
// comment for its contract.
type Reader struct {
	r    io.Reader
	h    hash.Hash
	want v1.Hash
	size int64 // -1: unknown, digest only
	n    int64
	err  error // sticky
	// mismatch is set when the reader's own check failed (not the
	// stream below it).
	mismatch bool
}

// NewReader returns a Reader that checks r against want and size. A size of
// -1 checks the digest only.
func NewReader(r io.Reader, want v1.Hash, size int64) (*Reader, error) {
	h, err := Hasher(want.Algorithm)
	if err != nil {
		return nil, err
	}
	return &Reader{r: r, h: h, want: want, size: size}, nil
}

// Read implements io.Reader.
func (v *Reader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.size >= 0 && int64(len(p)) > v.size-v.n+1 {
		// Never read more than one byte past the expected size.
		p = p[:v.size-v.n+1]
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	if v.size >= 0 && v.n > v.size {
		v.err = errdefs.Corrupt(fmt.Errorf("content %s: more than the expected %d bytes", v.want, v.size))
		v.mismatch = true
		return n - int(v.n-v.size), v.err
	}
	if err == io.EOF {
		if err := v.check(); err != nil {
			v.err = err
			v.mismatch = true
			return n, err
		}
		v.err = io.EOF
	} else if err != nil {
		v.err = err
	}
	return n, err
}

func (v *Reader) check() error {
	if v.size >= 0 && v.n != v.size {
		return errdefs.Corrupt(fmt.Errorf("content %s: got %d bytes, want %d (truncated)", v.want, v.n, v.size))
	}
	got := hex.EncodeToString(v.h.Sum(nil))
	if got != v.want.Hex {
		return errdefs.Corrupt(fmt.Errorf("content %s: got digest %s:%s", v.want, v.want.Algorithm, got))
	}
	return nil
}

// Verified reports whether the whole stream has been read and matched.
func (v *Reader) Verified() bool { return v.err == io.EOF }

// Mismatch reports whether the stream failed the check: it did not hash to
// the digest, or its size differed. An error of the stream itself is not a
// mismatch.
func (v *Reader) Mismatch() bool { return v.mismatch }

// ReadCloser is a Reader that closes the underlying stream.
type ReadCloser struct {
	*Reader
	c io.Closer
}

// NewReadCloser wraps rc like NewReader; Close closes rc. When rc is
// itself a ReadCloser not yet read that checks the same digest, with the
// same size or none, it is returned (with the size to check), not wrapped:
// its check is this one, and hashing every byte twice would only cost time.
func NewReadCloser(rc io.ReadCloser, want v1.Hash, size int64) (*ReadCloser, error) {
	if v, ok := rc.(*ReadCloser); ok && v.n == 0 && v.err == nil && v.want == want && (size < 0 || v.size < 0 || v.size == size) {
		if size >= 0 {
			v.size = size
		}
		return v, nil
	}
	r, err := NewReader(rc, want, size)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &ReadCloser{Reader: r, c: rc}, nil
}

// Close closes the underlying stream.
func (v *ReadCloser) Close() error { return v.c.Close() }

// Digest computes the digest of r with the given algorithm and returns it
// with the number of bytes read.
func Digest(r io.Reader, algorithm string) (v1.Hash, int64, error) {
	h, err := Hasher(algorithm)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	n, err := io.Copy(h, r)
	if err != nil {
		return v1.Hash{}, n, err
	}
	return v1.Hash{Algorithm: algorithm, Hex: hex.EncodeToString(h.Sum(nil))}, n, nil
}

// FromBytes returns the digest of b.
func FromBytes(b []byte, algorithm string) (v1.Hash, error) {
	h, err := Hasher(algorithm)
	if err != nil {
		return v1.Hash{}, err
	}
	h.Write(b)
	return v1.Hash{Algorithm: algorithm, Hex: hex.EncodeToString(h.Sum(nil))}, nil
}
