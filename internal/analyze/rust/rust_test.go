package rust

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

// elfWith builds a minimal 64-bit little-endian ELF file with one section
// of the given name and content (plus the null section and .shstrtab).
func elfWith(name string, content []byte) []byte {
	le := binary.LittleEndian
	shstr := append([]byte("\x00.shstrtab\x00"), append([]byte(name), 0)...)
	const ehsize, shentsize = 64, 64
	dataOff := ehsize
	shstrOff := dataOff + len(content)
	shoff := shstrOff + len(shstr)
	shoff = (shoff + 7) &^ 7
	out := make([]byte, shoff+3*shentsize)
	copy(out, "\x7fELF\x02\x01\x01")
	le.PutUint16(out[16:], 2)    // ET_EXEC
	le.PutUint16(out[18:], 0x3e) // x86-64
	le.PutUint32(out[20:], 1)
	le.PutUint64(out[40:], uint64(shoff))
	le.PutUint16(out[52:], ehsize)
	le.PutUint16(out[58:], shentsize)
	le.PutUint16(out[60:], 3)
	le.PutUint16(out[62:], 1) // .shstrtab is section 1
	copy(out[dataOff:], content)
	copy(out[shstrOff:], shstr)
	sh := func(i int, nameOff, typ uint32, off, size int) {
		h := out[shoff+i*shentsize:]
		le.PutUint32(h[0:], nameOff)
		le.PutUint32(h[4:], typ)
		le.PutUint64(h[24:], uint64(off))
		le.PutUint64(h[32:], uint64(size))
		le.PutUint64(h[48:], 1)
	}
	sh(1, 1, 3, shstrOff, len(shstr)) // SHT_STRTAB
	sh(2, 11, 1, dataOff, len(content))
	return out
}

func zlibOf(s string) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestAnalyze(t *testing.T) {
	lock, _ := os.ReadFile("testdata/Cargo.lock")
	dep := `{"packages":[{"name":"app","version":"0.1.0","source":"local","dependencies":[1],"root":true},` +
		`{"name":"serde","version":"1.0.152","source":"crates.io"},{"name":"cc","version":"1.0.79","source":"crates.io","kind":"build"}]}`
	bin := elfWith(".dep-v0", zlibOf(dep))
	bin = append(bin, make([]byte, minBinary)...) // big enough to be wanted
	for _, tc := range []struct {
		name, path string
		data       []byte
		want       *analyzer.Result
	}{
		{"Cargo.lock", "src/Cargo.lock", lock, &analyzer.Result{Type: "cargo", Packages: []pkg.Package{
			{Name: "app", Version: "0.1.0", Ecosystem: pkg.Cargo}, {Name: "serde", Version: "1.0.152", Ecosystem: pkg.Cargo}}}},
		{"auditable binary", "usr/bin/app", bin, &analyzer.Result{Type: "rustbinary", Packages: []pkg.Package{
			{Name: "serde", Version: "1.0.152", Ecosystem: pkg.Cargo}}}},
		{"binary without the section", "usr/bin/x", append(elfWith(".text", []byte{0x90}), make([]byte, 2048)...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !New().Wants(tc.path, analyzer.FileInfo(tc.path, int64(len(tc.data)), 0o755)) {
				t.Fatal("not wanted")
			}
			r, err := New().Analyze(context.Background(), analyzer.BytesFile(tc.path, tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, r); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	bad := elfWith(".dep-v0", []byte("not zlib"))
	if _, err := New().Analyze(context.Background(), analyzer.BytesFile("usr/bin/bad", bad)); err == nil {
		t.Error("damaged .dep-v0: no error")
	}
	bomb := elfWith(".dep-v0", zlibOf(`{"packages":[`+string(bytes.Repeat([]byte(" "), maxDepInfo+10))+`]}`))
	if _, err := New().Analyze(context.Background(), analyzer.BytesFile("usr/bin/bomb", bomb)); err == nil {
		t.Error("oversized .dep-v0: no error")
	}
}

func FuzzParse(f *testing.F) {
	lock, _ := os.ReadFile("testdata/Cargo.lock")
	f.Add(lock)
	f.Add(zlibOf(`{"packages":[{"name":"a","version":"1"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseCargoLock(b)
		ParseDepInfo(bytes.NewReader(b))
		New().Analyze(context.Background(), analyzer.BytesFile("bin/x", append([]byte("\x7fELF"), b...)))
	})
}
