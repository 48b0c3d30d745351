package rpm

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
	"github.com/lading-dev/lading/internal/testenv"
)

func TestParseHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		blob   []byte
		want   pkg.Package
		ok     bool
		errSub string
	}{
		{"no epoch", pkgHeader("libuuid", "2.32.1", "42.el8_8", -1, "x86_64"),
			pkg.Package{Name: "libuuid", Version: "2.32.1-42.el8_8", Ecosystem: pkg.RPM, Arch: "x86_64", Licenses: []string{"MIT"},
				Source: &pkg.Source{Name: "libuuid", Version: "2.32.1-42.el8_8"}}, true, ""},
		{"epoch", pkgHeader("openssl", "1.1.1k", "7.el8", 1, "x86_64"),
			pkg.Package{Name: "openssl", Version: "1:1.1.1k-7.el8", Ecosystem: pkg.RPM, Arch: "x86_64", Licenses: []string{"MIT"},
				Source: &pkg.Source{Name: "openssl", Version: "1:1.1.1k-7.el8"}}, true, ""},
		{"epoch 0 is kept", pkgHeader("a", "1", "2", 0, "noarch"),
			pkg.Package{Name: "a", Version: "0:1-2", Ecosystem: pkg.RPM, Arch: "noarch", Licenses: []string{"MIT"},
				Source: &pkg.Source{Name: "a", Version: "0:1-2"}}, true, ""},
		{"modularity and source", hdr(tagValue{tagName, "nodejs"}, tagValue{tagVersion, "18.19.0"}, tagValue{tagRelease, "1.module+el8.9.0"},
			tagValue{tagSourceRPM, "nodejs-18.19.0-1.module+el8.9.0.src.rpm"}, tagValue{tagModularityLabel, "nodejs:18:8090020231019:a75119d5"}),
			pkg.Package{Name: "nodejs", Version: "18.19.0-1.module+el8.9.0", Ecosystem: pkg.RPM, Modularity: "nodejs:18:8090020231019:a75119d5",
				Source: &pkg.Source{Name: "nodejs", Version: "18.19.0-1.module+el8.9.0"}}, true, ""},
		{"dribble entry replaces the region's", hdr(tagValue{tagName, "a"}, tagValue{tagVersion, "1"}, tagValue{tagRelease, "1"}, tagValue{tagVersion, "2"}),
			pkg.Package{Name: "a", Version: "2-1", Ecosystem: pkg.RPM}, true, ""},
		{"gpg-pubkey", hdr(tagValue{tagName, "gpg-pubkey"}, tagValue{tagVersion, "fd431d51"}, tagValue{tagRelease, "4ae0493b"}), pkg.Package{}, false, ""},
		{"no name", hdr(tagValue{tagVersion, "1"}), pkg.Package{}, false, "without a name"},
		{"too short", []byte{0, 0, 0}, pkg.Package{}, false, "not an RPM header"},
		{"counts beyond the blob", []byte{0, 0, 0, 9, 0, 0, 0, 9, 1, 2}, pkg.Package{}, false, "need"},
		{"string offset beyond the data", func() []byte {
			b := hdr(tagValue{tagName, "a"}, tagValue{tagVersion, "1"})
			binary.BigEndian.PutUint32(b[8+8:], 1<<20)
			return b
		}(), pkg.Package{}, false, "without a name"},
		{"unterminated string", func() []byte {
			b := hdr(tagValue{tagName, "a"}, tagValue{tagVersion, "1"})
			return append(b[:len(b)-1], 'x')
		}(), pkg.Package{}, false, "without a name or version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok, err := ParseHeader(tc.blob)
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("err = %v, want one containing %q", err, tc.errSub)
				}
				return
			}
			if err != nil || ok != tc.ok {
				t.Fatalf("ok=%v err=%v", ok, err)
			}
			if diff := cmp.Diff(tc.want, p); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSplitSourceRPM(t *testing.T) {
	for in, want := range map[string][2]string{
		"util-linux-2.32.1-42.el8_8.src.rpm": {"util-linux", "2.32.1-42.el8_8"},
		"glibc-2.34-2.cm2.nosrc.rpm":         {"glibc", "2.34-2.cm2"},
		"a-1-2.src.rpm":                      {"a", "1-2"},
		"nodashes.src.rpm":                   {"", ""},
		"a-1.src.rpm":                        {"", ""},
		"x":                                  {"", ""},
	} {
		n, v, _ := splitSourceRPM(in)
		if n != want[0] || v != want[1] {
			t.Errorf("splitSourceRPM(%q) = %q, %q", in, n, v)
		}
	}
}

// sample returns headers of n packages, some long enough to span several
// pages of any database.
func sample(n int) ([][]byte, []string) {
	var blobs [][]byte
	var names []string
	for i := range n {
		name := fmt.Sprintf("pkg%03d", i)
		if i%3 == 0 {
			name += "-" + strings.Repeat("long", 300) // a header of several pages
		}
		blobs = append(blobs, pkgHeader(name, "1.0", fmt.Sprint(i), -1, "x86_64"))
		names = append(names, fmt.Sprintf("%s 1.0-%d", name, i))
	}
	return blobs, names
}

func namesOf(ps []pkg.Package) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name+" "+p.Version)
	}
	return out
}

func TestFormats(t *testing.T) {
	blobs, want := sample(40)
	for _, tc := range []struct {
		name, path string
		db         []byte
	}{
		{"sqlite 512", "var/lib/rpm/rpmdb.sqlite", sqliteFile(512, blobs)},
		{"sqlite 4096", "usr/lib/sysimage/rpm/rpmdb.sqlite", sqliteFile(4096, blobs)},
		{"ndb", "usr/lib/sysimage/rpm/Packages.db", ndbFile(blobs)},
		{"bdb little-endian", "var/lib/rpm/Packages", bdbFile(4096, binary.LittleEndian, append(blobs, []byte{1, 0, 0, 0}))},
		{"bdb big-endian", "var/lib/rpm/Packages", bdbFile(512, binary.BigEndian, blobs)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New()
			if !a.Wants(tc.path, nil) {
				t.Fatalf("Wants(%q) = false", tc.path)
			}
			r, err := a.Analyze(context.Background(), analyzer.BytesFile(tc.path, tc.db))
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Warnings) > 0 {
				t.Errorf("warnings: %q", r.Warnings)
			}
			if diff := cmp.Diff(want, namesOf(r.Packages)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// The SQLite fixture writer makes files that SQLite itself reads, checked
// with Python's sqlite3 module when there is one.
func TestSQLiteFixtureIsSQLite(t *testing.T) {
	py := testenv.Tool(t, "python3", "python3")
	blobs, _ := sample(40)
	p := filepath.Join(t.TempDir(), "rpmdb.sqlite")
	os.WriteFile(p, sqliteFile(512, blobs), 0o644)
	script := `import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute("pragma integrity_check").fetchone()[0])
print(sum(len(b) for (b,) in c.execute("select blob from Packages")))`
	out, err := exec.Command(py, "-c", script, p).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "No module named") {
			testenv.Skip(t, "python3 has no sqlite3 module")
		}
		t.Fatalf("%v\n%s", err, out)
	}
	total := 0
	for _, b := range blobs {
		total += len(b)
	}
	if got := string(out); got != fmt.Sprintf("ok\n%d\n", total) {
		t.Errorf("sqlite3 says %q", got)
	}
}

func TestDamaged(t *testing.T) {
	blobs, _ := sample(6)
	le := binary.LittleEndian
	for _, tc := range []struct {
		name   string
		db     func() []byte
		errSub string // empty: some packages and a warning
	}{
		{"not a database", func() []byte { return []byte("hello") }, "not an rpm database"},
		{"empty", func() []byte { return nil }, "not an rpm database"},
		{"bdb overflow loop", func() []byte {
			b := bdbFile(512, le, blobs)
			// The first overflow page points back to itself.
			le.PutUint32(b[2*512+16:], 2)
			return b
		}, ""},
		{"bdb truncated", func() []byte { b := bdbFile(512, le, blobs); return b[:len(b)-700] }, ""},
		{"bdb bad page size", func() []byte { b := bdbFile(512, le, blobs); le.PutUint32(b[20:], 513); return b }, "bad page size"},
		{"bdb item offsets outside the page", func() []byte {
			b := bdbFile(512, le, blobs)
			le.PutUint16(b[512+bdbPageHeader+2:], 0xffff)
			return b
		}, ""},
		{"bdb huge item count", func() []byte { b := bdbFile(512, le, blobs); le.PutUint16(b[512+20:], 0xffff); return b }, "no packages"},
		{"ndb blob outside the file", func() []byte {
			b := ndbFile(blobs)
			le.PutUint32(b[32+8:], 1<<30)
			return b
		}, ""},
		{"ndb bad slot magic", func() []byte { b := ndbFile(blobs); le.PutUint32(b[32+16*3:], 0); return b }, ""},
		{"ndb too many slot pages", func() []byte { b := ndbFile(blobs); le.PutUint32(b[12:], 1<<20); return b }, "slot pages"},
		{"sqlite interior loop", func() []byte {
			b := sqliteFile(512, blobs)
			binary.BigEndian.PutUint32(b[512+8:], 2) // the root's right-most child is the root
			return b
		}, ""},
		{"sqlite overflow loop", func() []byte {
			b := sqliteFile(512, blobs)
			// Find the first overflow page (page after the first long row's
			// leaf) and point it at itself.
			binary.BigEndian.PutUint32(b[3*512:], 4)
			return b
		}, ""},
		{"sqlite truncated", func() []byte { b := sqliteFile(512, blobs); return b[:len(b)-1500] }, ""},
		{"sqlite without Packages", func() []byte { return sqliteFile(512, nil)[:512] }, "no Packages table"},
		{"sqlite bad page type", func() []byte { b := sqliteFile(512, blobs); b[512] = 0x0a; return b }, "not a table b-tree page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.db()
			r, err := New().Analyze(context.Background(), analyzer.BytesFile("var/lib/rpm/Packages", db))
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) {
					if err == nil && tc.errSub == "no packages" && len(r.Packages) == 0 {
						return
					}
					t.Fatalf("err = %v, result %+v; want an error containing %q", err, r, tc.errSub)
				}
				return
			}
			if err != nil {
				if strings.Contains(err.Error(), "loop") || strings.Contains(err.Error(), "twice") || strings.Contains(err.Error(), "outside") {
					return // no package before the damage: an error that says what
				}
				t.Fatal(err)
			}
			if len(r.Warnings) == 0 {
				t.Errorf("no warning; %d packages", len(r.Packages))
			}
		})
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(pkgHeader("libuuid", "2.32.1", "42.el8_8", 1, "x86_64"))
	f.Add(hdr(tagValue{tagName, "a"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok, err := ParseHeader(b)
		if ok && (err != nil || p.Name == "" || p.Version == "") {
			t.Fatalf("ok with %+v, %v", p, err)
		}
	})
}

func FuzzRead(f *testing.F) {
	blobs, _ := sample(3)
	f.Add(sqliteFile(512, blobs))
	f.Add(ndbFile(blobs))
	f.Add(bdbFile(512, binary.LittleEndian, blobs))
	f.Fuzz(func(t *testing.T, db []byte) {
		Read(context.Background(), bytes.NewReader(db), int64(len(db)))
	})
}
