package verify

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/lading-dev/lading/internal/errdefs"
)

func TestReader(t *testing.T) {
	data := []byte("hello, lading")
	d256, _ := FromBytes(data, "sha256")
	d512, _ := FromBytes(data, "sha512")
	other, _ := FromBytes([]byte("other"), "sha256")
	tests := []struct {
		name    string
		in      []byte
		digest  string
		size    int64
		corrupt bool
	}{
		{"sha256 exact", data, d256.String(), int64(len(data)), false},
		{"sha512 exact", data, d512.String(), int64(len(data)), false},
		{"unknown size", data, d256.String(), -1, false},
		{"truncated", data[:5], d256.String(), int64(len(data)), true},
		{"too long", append(bytes.Clone(data), 'x'), d256.String(), int64(len(data)), true},
		{"wrong digest", data, other.String(), int64(len(data)), true},
		{"wrong digest unknown size", data, other.String(), -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseDigest(tt.digest)
			if err != nil {
				t.Fatal(err)
			}
			r, err := NewReader(iotest.OneByteReader(bytes.NewReader(tt.in)), h, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if tt.corrupt {
				if !errors.Is(err, errdefs.ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				if tt.size >= 0 && int64(len(got)) > tt.size {
					t.Errorf("returned %d bytes past the expected size", int64(len(got))-tt.size)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.in) || !r.Verified() {
				t.Fatalf("ReadAll = %q, %v, verified %v", got, err, r.Verified())
			}
		})
	}
}

func TestParseDigest(t *testing.T) {
	good := "sha256:" + strings.Repeat("a", 64)
	bad := []string{
		"", "sha256", "sha256:", "sha256:" + strings.Repeat("A", 64), "sha256:" + strings.Repeat("a", 63),
		"md5:" + strings.Repeat("a", 32), "sha512:" + strings.Repeat("a", 64), "sha256:../../etc/passwd",
	}
	if _, err := ParseDigest(good); err != nil {
		t.Errorf("ParseDigest(%q) = %v", good, err)
	}
	if _, err := ParseDigest("sha512:" + strings.Repeat("0", 128)); err != nil {
		t.Errorf("sha512: %v", err)
	}
	for _, s := range bad {
		if _, err := ParseDigest(s); err == nil {
			t.Errorf("ParseDigest(%q) accepted", s)
		}
	}
}

func FuzzParseDigest(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("a", 64))
	f.Add("sha512:xyz")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseDigest(s)
		if err == nil && h.String() != s {
			t.Fatalf("round trip %q -> %q", s, h.String())
		}
	})
}

// TestReadCloserNested: a verifying stream wrapped again for the same
// digest is checked once, and still with every size either side gave; a
// wrap for another digest or size keeps both checks.
func TestReadCloserNested(t *testing.T) {
	data := []byte("hello, lading")
	d, _ := FromBytes(data, "sha256")
	other, _ := FromBytes([]byte("other"), "sha256")
	n := int64(len(data))
	tests := []struct {
		name              string
		innerSize         int64
		outer             string
		outerSize         int64
		reused, corrupted bool
	}{
		{"same digest and size", n, d.String(), n, true, false},
		{"outer size unknown", n, d.String(), -1, true, false},
		{"inner size unknown", -1, d.String(), n, true, false},
		{"inner size unknown, outer size wrong", -1, d.String(), n + 1, true, true},
		{"other size", n, d.String(), n - 1, false, true},
		{"other digest", n, other.String(), n, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner, err := NewReadCloser(io.NopCloser(bytes.NewReader(data)), d, tt.innerSize)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := ParseDigest(tt.outer)
			outer, err := NewReadCloser(inner, h, tt.outerSize)
			if err != nil {
				t.Fatal(err)
			}
			if got := outer == inner; got != tt.reused {
				t.Errorf("reused = %v, want %v", got, tt.reused)
			}
			_, err = io.ReadAll(outer)
			if got := errors.Is(err, errdefs.ErrCorrupt); got != tt.corrupted {
				t.Errorf("err = %v, want corrupt %v", err, tt.corrupted)
			}
		})
	}
}
