package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/verify"
)

func openT(t *testing.T, root string) *Store {
	t.Helper()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func digestOf(t testing.TB, b []byte) v1.Hash {
	h, err := verify.FromBytes(b, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteBlobVerifies(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	data := []byte("layer bytes")
	h := digestOf(t, data)
	sha512, _ := verify.FromBytes(data, "sha512")

	tests := []struct {
		name  string
		h     v1.Hash
		size  int64
		in    []byte
		class error
	}{
		{"wrong digest", digestOf(t, []byte("other")), int64(len(data)), data, errdefs.ErrCorrupt},
		{"truncated", h, int64(len(data)), data[:4], errdefs.ErrCorrupt},
		{"too long", h, int64(len(data)) - 1, data, errdefs.ErrCorrupt},
		{"bad hex", v1.Hash{Algorithm: "sha256", Hex: "../../etc/passwd"}, -1, data, errdefs.ErrInvalidArgument},
		{"bad algorithm", v1.Hash{Algorithm: "md5", Hex: "00"}, -1, data, errdefs.ErrUnsupported},
		{"good", h, int64(len(data)), data, nil},
		{"good, size unknown", h, -1, data, nil},
		{"sha512", sha512, int64(len(data)), data, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.WriteBlob(ctx, tt.h, tt.size, bytes.NewReader(tt.in))
			if tt.class == nil {
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.ReadBlob(ctx, tt.h, 1<<20)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("ReadBlob = %q, %v", got, err)
				}
				return
			}
			if !errors.Is(err, tt.class) {
				t.Fatalf("err = %v, want %v", err, tt.class)
			}
			if tt.class == errdefs.ErrCorrupt && s.Has(ctx, tt.h, -1) && tt.h != h {
				t.Errorf("corrupt blob %s became visible", tt.h)
			}
		})
	}
	if left := listDir(t, s.ingest); len(left) != 0 {
		t.Errorf("temp files left in ingest/: %v", left)
	}
}

func TestOpenBlobDetectsDamage(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	h, err := s.PutBlob(ctx, []byte("original"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.blobPath(h), []byte("damaged!"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = s.ReadBlob(ctx, h, 100)
	if !errdefs.IsCorrupt(err) {
		t.Fatalf("ReadBlob of a damaged blob: %v, want ErrCorrupt", err)
	}
	if _, _, err := s.OpenBlob(ctx, digestOf(t, []byte("absent"))); !errdefs.IsNotFound(err) {
		t.Fatalf("OpenBlob of absent blob: %v", err)
	}
}

func TestRefs(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	d1 := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: digestOf(t, []byte("1")), Size: 1}
	d2 := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: digestOf(t, []byte("2")), Size: 1}
	for _, step := range []struct {
		name string
		d    v1.Descriptor
	}{{"a:1", d1}, {"a:2", d2}, {"a:1", d2}} {
		if err := s.SetRef(ctx, step.name, step.d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Resolve(ctx, "a:1")
	if err != nil || got.Digest != d2.Digest {
		t.Fatalf("Resolve(a:1) = %v, %v; want %v", got.Digest, err, d2.Digest)
	}
	if _, err := s.Resolve(ctx, "nope"); !errdefs.IsNotFound(err) {
		t.Fatalf("Resolve(nope) = %v", err)
	}
	if _, err := s.RemoveRef(ctx, "a:2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveRef(ctx, "a:2"); !errdefs.IsNotFound(err) {
		t.Fatalf("second RemoveRef = %v", err)
	}
	idx, _ := s.Index(ctx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("index has %d entries, want 1", len(idx.Manifests))
	}
}

func TestConcurrentSetRef(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		s := openT(t, root) // separate opens: separate flock descriptions
		for j := 0; j < 10; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := v1.Descriptor{Digest: digestOf(t, []byte{byte(i), byte(j)}), Size: 2}
				if err := s.SetRef(ctx, fmt.Sprintf("r%d-%d", i, j), d); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	idx, err := openT(t, root).Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 40 {
		t.Fatalf("index has %d refs, want 40", len(idx.Manifests))
	}
}

// writeImage writes a tiny image (config, one layer, manifest) and tags it.
func writeImage(ctx context.Context, s *Store, name string, layer []byte) (v1.Hash, error) {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":%q}`, name))
	ch, err := s.PutBlob(ctx, cfg)
	if err != nil {
		return v1.Hash{}, err
	}
	lh, err := s.PutBlob(ctx, layer)
	if err != nil {
		return v1.Hash{}, err
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: ch, Size: int64(len(cfg))},
		Layers: []v1.Descriptor{{MediaType: types.OCIUncompressedLayer, Digest: lh, Size: int64(len(layer))}}}
	mb, _ := json.Marshal(m)
	mh, err := s.PutBlob(ctx, mb)
	if err != nil {
		return v1.Hash{}, err
	}
	return mh, s.SetRef(ctx, name, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: mh, Size: int64(len(mb))})
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	if _, err := writeImage(ctx, s, "keep", []byte("shared layer")); err != nil {
		t.Fatal(err)
	}
	if _, err := writeImage(ctx, s, "drop", []byte("shared layer")); err != nil {
		t.Fatal(err)
	}
	orphan, _ := s.PutBlob(ctx, []byte("orphan"))
	os.WriteFile(filepath.Join(s.ingest, "blob-123"), []byte("partial"), 0o644)
	if _, err := s.RemoveRef(ctx, "drop"); err != nil {
		t.Fatal(err)
	}

	dry, err := s.Prune(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	// drop's config and manifest, plus the orphan; the layer is shared.
	if len(dry.Blobs) != 3 || dry.TempFiles != 1 {
		t.Fatalf("dry run: %+v", dry)
	}
	if !s.Has(ctx, orphan, -1) {
		t.Fatal("dry run removed a blob")
	}
	rep, err := s.Prune(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dry, rep); diff != "" {
		t.Errorf("prune differs from its dry run (-dry +real):\n%s", diff)
	}
	if s.Has(ctx, orphan, -1) || len(listDir(t, s.ingest)) != 0 {
		t.Fatal("prune left garbage")
	}
	live, err := s.Reachable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for h := range live {
		if !s.Has(ctx, h, -1) {
			t.Errorf("prune removed live blob %s", h)
		}
	}
}

// The tests below run a second lading process: this test binary re-executed
// with STORE_HELPER set.

func TestMain(m *testing.M) {
	switch os.Getenv("STORE_HELPER") {
	case "":
		os.Exit(m.Run())
	case "writer":
		helperWriter()
	case "hold":
		helperHold()
	case "slow":
		helperSlow()
	}
	os.Exit(0)
}

func helperWriter() {
	ctx := context.Background()
	s, err := Open(os.Getenv("STORE_ROOT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer s.Close()
	id := os.Getenv("STORE_ID")
	for i := 0; i < 20; i++ {
		// Every process writes the same shared layers and its own config.
		if _, err := writeImage(ctx, s, fmt.Sprintf("p%s-%d", id, i), bytes.Repeat([]byte{byte(i)}, 1<<16)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func helperHold() {
	s, err := Open(os.Getenv("STORE_ROOT"))
	if err != nil {
		os.Exit(1)
	}
	fmt.Println("open")
	time.Sleep(time.Minute)
	s.Close()
}

// helperSlow writes one blob from a reader that never ends until killed.
func helperSlow() {
	s, err := Open(os.Getenv("STORE_ROOT"))
	if err != nil {
		os.Exit(1)
	}
	h, _ := verify.ParseDigest(os.Getenv("STORE_DIGEST"))
	pr, pw := io.Pipe()
	go func() {
		for i := 0; ; i++ {
			pw.Write(bytes.Repeat([]byte{'x'}, 4096))
			if i == 16 {
				fmt.Println("writing")
			}
			time.Sleep(time.Millisecond)
		}
	}()
	s.WriteBlob(context.Background(), h, 1<<30, pr)
}

func helper(t *testing.T, mode string, env ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "STORE_HELPER="+mode)...)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestProcessesShareStore(t *testing.T) {
	root := t.TempDir()
	var cmds []*exec.Cmd
	for i := 0; i < 4; i++ {
		c := helper(t, "writer", "STORE_ROOT="+root, "STORE_ID="+strconv.Itoa(i))
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("writer process: %v", err)
		}
	}
	ctx := context.Background()
	s := openT(t, root)
	idx, err := s.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 80 {
		t.Fatalf("%d refs after 4 processes wrote 20 each", len(idx.Manifests))
	}
	live, err := s.Reachable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for h := range live {
		if _, err := s.ReadBlob(ctx, h, 1<<20); err != nil {
			t.Errorf("blob %s: %v", h, err)
		}
	}
	if rep, _ := s.Prune(ctx, true); len(rep.Blobs) != 0 || rep.TempFiles != 0 {
		t.Errorf("garbage after concurrent writers: %+v", rep)
	}
}

func TestPruneWaitsForOtherProcesses(t *testing.T) {
	root := t.TempDir()
	s := openT(t, root)
	c := helper(t, "hold", "STORE_ROOT="+root)
	out, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { c.Process.Kill(); c.Wait() }()
	buf := make([]byte, 5)
	io.ReadFull(out, buf)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Prune(ctx, false); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("Prune while another process holds the store: %v, want ErrConflict", err)
	}
	c.Process.Kill()
	c.Wait()
	if _, err := s.Prune(context.Background(), false); err != nil {
		t.Fatalf("Prune after the other process died: %v", err)
	}
}

// TestKilledWriter kills a process in the middle of a blob write (SIGKILL,
// no chance to clean up) and checks that nothing half-written is visible,
// that the store still works, and that Prune collects the leftover.
func TestKilledWriter(t *testing.T) {
	root := t.TempDir()
	h := digestOf(t, []byte("never completed"))
	c := helper(t, "slow", "STORE_ROOT="+root, "STORE_DIGEST="+h.String())
	out, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	io.ReadFull(out, buf)
	c.Process.Signal(syscall.SIGKILL)
	c.Wait()

	ctx := context.Background()
	s := openT(t, root)
	if s.Has(ctx, h, -1) {
		t.Fatal("half-written blob is visible")
	}
	if len(listDir(t, s.ingest)) == 0 {
		t.Fatal("expected the killed writer's temp file in ingest/ (test did not kill mid-write)")
	}
	if _, err := writeImage(ctx, s, "after", []byte("x")); err != nil {
		t.Fatalf("store unusable after a killed writer: %v", err)
	}
	rep, err := s.Prune(ctx, false)
	if err != nil || rep.TempFiles != 1 || len(rep.Blobs) != 0 {
		t.Fatalf("Prune = %+v, %v", rep, err)
	}
}
