package analyze

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/layer"
)

func indexOf(t testing.TB, ents ...ent) *pathIndex {
	var b indexBuilder
	err := layer.Walk(context.Background(), bytes.NewReader(tarOf(t, ents...)), func(e *layer.Entry) error {
		b.add(e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.build()
}

// The index keeps the layer's symlinks, the last entry at a path winning,
// and survives its encoding.
func TestPathIndexRoundTrip(t *testing.T) {
	x := indexOf(t, dir("var"), symlink("var/db", "/data"), file("var/x", "x"), symlink("lib", "usr/lib"),
		whiteout("old"), opaque("etc"), file("etc/y", "y"))
	want := []linkEntry{{"lib", "usr/lib"}, {"var/db", "/data"}}
	if diff := cmp.Diff(want, x.links); diff != "" {
		t.Errorf("links (-want +got):\n%s", diff)
	}
	b, err := x.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var y pathIndex
	if err := y.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(x, &y, cmp.AllowUnexported(pathIndex{}, linkEntry{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for _, p := range []string{"var/x", "var/db", "lib", "old", "old/below", "etc/y", "etc/lower", "lib/x"} {
		if !x.hides(chainOf(p)) {
			t.Errorf("does not hide %s", p)
		}
	}
	for _, p := range []string{"usr/lib/x", "data/installed", "usr/lib"} {
		if x.hides(chainOf(p)) {
			t.Errorf("hides %s", p)
		}
	}
}

// A cached index is read back whatever its bytes: an error, never a panic
// or a huge allocation.
func FuzzPathIndex(f *testing.F) {
	x := indexOf(f, symlink("a", "b"), file("c", "c"), dir("d"))
	b, _ := x.MarshalBinary()
	f.Add(b)
	f.Add([]byte("lading-paths\x00\x02\x00\x00\x00\x01\x03abc\x01d"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var y pathIndex
		if y.UnmarshalBinary(b) == nil {
			if _, err := y.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
