package rpm

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/testenv"
)

// fileFromImage returns the content of a file of a one-layer corpus image.
func fileFromImage(t *testing.T, name, path string) []byte {
	ref, err := image.Parse("oci-archive:" + corpustest.Image(t, name))
	if err != nil {
		t.Fatal(err)
	}
	src, err := image.Open(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ls, err := src.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []byte
	err = layer.Walk(context.Background(), rc, func(e *layer.Entry) error {
		if e.Name == path {
			out, err = io.ReadAll(e)
			return err
		}
		return nil
	})
	if err != nil || out == nil {
		t.Fatalf("%s in %s: %v", path, name, err)
	}
	return out
}

// TestRealHeadersInEveryFormat takes the 129 real package headers of the
// corpus's CBL-Mariner rpmdb.sqlite as rpm itself exports them (rpmdb
// --exportdb), lays them out as NDB, Berkeley DB (both byte orders) and
// SQLite, and checks that each reads back as exactly what rpm -qa reports
// of the original database. (Debian's rpm reads sqlite and, read-only,
// Berkeley DB, but has no NDB backend; the real Berkeley DB file of the
// corpus is checked against rpm in internal/analyze's accuracy test.)
func TestRealHeadersInEveryFormat(t *testing.T) {
	testenv.Tool(t, "rpm", "Debian's rpm")
	testenv.Tool(t, "rpmdb", "Debian's rpm")
	db := fileFromImage(t, "mariner-2.0-rpmdb.oci.tar", "var/lib/rpm/rpmdb.sqlite")
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "var/lib/rpm"), 0o755)
	os.WriteFile(filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"), db, 0o644)
	args := []string{"--root", root, "--dbpath", "/var/lib/rpm"}
	out, err := exec.Command("rpm", append(args, "-qa", "--qf", "%{NAME} %{EVR}\n")...).Output()
	if err != nil {
		t.Fatalf("rpm -qa: %v", err)
	}
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "gpg-pubkey ") {
			want = append(want, l)
		}
	}
	slices.Sort(want)
	export, err := exec.Command("rpmdb", append(args, "--exportdb")...).Output()
	if err != nil {
		t.Fatalf("rpmdb --exportdb: %v", err)
	}
	// The export is each header with its 8-byte magic.
	magic := []byte{0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0}
	var blobs [][]byte
	for rest := export; len(rest) > 0; {
		if !bytes.HasPrefix(rest, magic) || len(rest) < 16 {
			t.Fatalf("export: no header magic at %d", len(export)-len(rest))
		}
		rest = rest[8:]
		n := 8 + 16*int(binary.BigEndian.Uint32(rest)) + int(binary.BigEndian.Uint32(rest[4:]))
		blobs, rest = append(blobs, rest[:n]), rest[n:]
	}
	if len(blobs) != 129 {
		t.Fatalf("%d headers exported", len(blobs))
	}
	for _, tc := range []struct {
		name string
		db   []byte
	}{
		{"original sqlite", db},
		{"ndb", ndbFile(blobs)},
		{"bdb little-endian 4096", bdbFile(4096, binary.LittleEndian, blobs)},
		{"bdb big-endian 512", bdbFile(512, binary.BigEndian, blobs)},
		{"sqlite 1024", sqliteFile(1024, blobs)},
	} {
		pkgs, warnings, err := Read(context.Background(), bytes.NewReader(tc.db), int64(len(tc.db)))
		if err != nil || len(warnings) > 0 {
			t.Fatalf("%s: %v %v", tc.name, err, warnings)
		}
		var got []string
		for _, p := range pkgs {
			got = append(got, p.Name+" "+p.Version)
		}
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s differs from rpm -qa (-rpm +lading):\n%s", tc.name, diff)
		}
	}
}
