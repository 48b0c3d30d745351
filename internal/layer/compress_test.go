package layer

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/errdefs"
)

func compress(t *testing.T, c Compression, data []byte, opts ...Option) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := Compress(&b, c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCompressRoundTrip(t *testing.T) {
	data := tarOf(t, file("a", strings.Repeat("lading ", 100000)), file("b", "b"))
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		for _, level := range []int{0, 1, 9} {
			blob := compress(t, c, data, WithLevel(level))
			if again := compress(t, c, data, WithLevel(level)); !bytes.Equal(blob, again) {
				t.Errorf("%v level %d: output is not deterministic", c, level)
			}
			if c != Uncompressed && len(blob) > len(data)/10 {
				t.Errorf("%v: %d bytes from %d", c, len(blob), len(data))
			}
			rc, got, err := Decompress(bytes.NewReader(blob))
			if err != nil || got != c {
				t.Fatalf("%v: detected %v, %v", c, got, err)
			}
			out, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(out, data) {
				t.Errorf("%v: round trip: %d bytes, %v", c, len(out), err)
			}
		}
	}
}

func TestDecompressConcatenated(t *testing.T) {
	for _, c := range []Compression{Gzip, Zstd} {
		blob := append(compress(t, c, []byte("hello ")), compress(t, c, []byte("world"))...)
		rc, _, err := Decompress(bytes.NewReader(blob))
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(rc)
		if err != nil || string(out) != "hello world" {
			t.Errorf("%v: %q %v", c, out, err)
		}
	}
}

func TestDecompressErrors(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 100000)
	gz, zs := compress(t, Gzip, data), compress(t, Zstd, data)
	corruptGz := bytes.Clone(gz)
	corruptGz[len(corruptGz)-6] ^= 0xff // the CRC
	for _, tc := range []struct {
		name  string
		blob  []byte
		opts  []Option
		open  bool // the error comes from Decompress itself
		class error
		want  string
	}{
		{"bzip2", []byte("BZh91AY&SY"), nil, true, errdefs.ErrUnsupported, "L: bzip2-compressed layer"},
		{"xz", []byte("\xfd7zXZ\x00\x00"), nil, true, errdefs.ErrUnsupported, "L: xz-compressed layer"},
		{"gzip header cut", gz[:5], nil, true, errdefs.ErrCorrupt, "L: gzip: unexpected EOF"},
		{"gzip truncated", gz[:len(gz)/2], nil, false, errdefs.ErrCorrupt, "L: gzip: unexpected EOF"},
		{"gzip bad crc", corruptGz, nil, false, errdefs.ErrCorrupt, "L: gzip: gzip: invalid checksum"},
		{"zstd truncated", zs[:len(zs)/2], nil, false, errdefs.ErrCorrupt, "L: zstd: unexpected EOF"},
		{"gzip bomb", gz, []Option{MaxSize(1000)}, false, errdefs.ErrTooLarge, "L: uncompressed layer exceeds the limit of 1000 bytes"},
		{"zstd bomb", zs, []Option{MaxSize(4096)}, false, errdefs.ErrTooLarge, "L: uncompressed layer exceeds the limit of 4096 bytes"},
		{"plain over limit", data, []Option{MaxSize(len64(data) - 1)}, false, errdefs.ErrTooLarge, "limit of 1599999 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]Option{WithName("L")}, tc.opts...)
			rc, _, err := Decompress(bytes.NewReader(tc.blob), opts...)
			if !tc.open {
				if err != nil {
					t.Fatal(err)
				}
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if !errors.Is(err, tc.class) || err.Error() != tc.want && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n got %v\nwant %s (%v)", err, tc.want, tc.class)
			}
		})
	}
}

func len64(b []byte) int64 { return int64(len(b)) }

func TestDecompressLimitExact(t *testing.T) {
	data := []byte(strings.Repeat("x", 1000))
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		rc, _, err := Decompress(bytes.NewReader(compress(t, c, data)), MaxSize(1000))
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(rc)
		if err != nil || len(out) != 1000 {
			t.Errorf("%v: exactly the limit: %d bytes, %v", c, len(out), err)
		}
		rc, _, _ = Decompress(bytes.NewReader(compress(t, c, data)), MaxSize(999))
		out, err = io.ReadAll(rc)
		if !errors.Is(err, errdefs.ErrTooLarge) || len(out) != 999 {
			t.Errorf("%v: one past the limit: %d bytes, %v", c, len(out), err)
		}
	}
}

func TestDecompressEmpty(t *testing.T) {
	rc, c, err := Decompress(bytes.NewReader(nil))
	if err != nil || c != Uncompressed {
		t.Fatal(c, err)
	}
	if err := Walk(t.Context(), rc, func(*Entry) error { return nil }); err != nil {
		t.Fatalf("an empty blob is an empty layer: %v", err)
	}
}

// Media types: what each declares, as containerd reads them, and what a
// blob of another compression is told.
func TestMediaTypes(t *testing.T) {
	for _, tc := range []struct {
		mt           string
		want         Compression
		known        bool
		uncompressed string
	}{
		{MediaTypeOCI, Uncompressed, true, MediaTypeOCI},
		{MediaTypeOCIGzip, Gzip, true, MediaTypeOCI},
		{MediaTypeOCIZstd, Zstd, true, MediaTypeOCI},
		{MediaTypeOCINonDistGzip, Gzip, true, MediaTypeOCINonDistributable},
		{MediaTypeDocker, Uncompressed, true, MediaTypeDocker},
		{MediaTypeDockerGzip, Gzip, true, MediaTypeDocker},
		{MediaTypeDockerForeignGzip, Gzip, true, MediaTypeDockerForeign},
		{"application/vnd.oci.image.layer.v1.tar+bzip2", Uncompressed, false, "application/vnd.oci.image.layer.v1.tar+bzip2"},
		{"", Uncompressed, false, ""},
	} {
		c, ok := MediaCompression(tc.mt)
		if c != tc.want || ok != tc.known || UncompressedMediaType(tc.mt) != tc.uncompressed {
			t.Errorf("%q: %v %v %q", tc.mt, c, ok, UncompressedMediaType(tc.mt))
		}
		err := CheckMediaType(tc.mt, Zstd)
		switch {
		case !tc.known && !errors.Is(err, errdefs.ErrUnsupported):
			t.Errorf("%q: %v, want unsupported", tc.mt, err)
		case tc.known && tc.want == Zstd && err != nil:
			t.Errorf("%q with zstd bytes: %v", tc.mt, err)
		case tc.known && tc.want != Zstd && !errdefs.IsInvalidArgument(err):
			t.Errorf("%q with zstd bytes: %v, want invalid", tc.mt, err)
		}
	}
}
