package cache

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestPutGet(t *testing.T) {
	ctx := context.Background()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := Key{Digest: digestA, Part: "dpkg@1.f1"}
	if _, ok, err := c.Get(ctx, k); ok || err != nil {
		t.Fatalf("Get on an empty cache: ok=%v err=%v", ok, err)
	}
	if err := c.Put(ctx, k, []byte("result")); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(ctx, k)
	if err != nil || !ok || string(got) != "result" {
		t.Fatalf("Get = %q, %v, %v", got, ok, err)
	}
	if _, ok, _ := c.Get(ctx, Key{Digest: digestA, Part: "dpkg@2.f1"}); ok {
		t.Error("another part name found the entry")
	}
	st, err := c.Stat(ctx)
	if err != nil || st.Entries != 1 || st.Layers != 1 {
		t.Errorf("Stat = %+v, %v", st, err)
	}
}

func TestBadKeys(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Key{
		{Digest: "sha256:../../etc", Part: "x"},
		{Digest: "sha256:" + "a", Part: "x"},
		{Digest: digestA, Part: "../x"},
		{Digest: digestA, Part: "a/b"},
		{Digest: digestA, Part: ""},
		{Digest: "nocolon", Part: "x"},
	} {
		if err := c.Put(context.Background(), k, nil); err == nil {
			t.Errorf("Put(%+v) succeeded", k)
		}
	}
}

func TestDamagedEntryIsAMiss(t *testing.T) {
	ctx := context.Background()
	c, _ := Open(t.TempDir())
	k := Key{Digest: digestA, Part: "p"}
	if err := c.Put(ctx, k, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	p, _ := c.path(k)
	for name, damage := range map[string]func([]byte) []byte{
		"flipped byte": func(b []byte) []byte { b[len(b)-1] ^= 1; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)-3] },
		"empty":        func([]byte) []byte { return nil },
	} {
		b, _ := os.ReadFile(p)
		if len(b) == 0 {
			c.Put(ctx, k, []byte("0123456789"))
			b, _ = os.ReadFile(p)
		}
		os.WriteFile(p, damage(b), 0o644)
		if _, ok, err := c.Get(ctx, k); ok || err != nil {
			t.Errorf("%s: Get ok=%v err=%v", name, ok, err)
		}
		c.Put(ctx, k, []byte("0123456789"))
	}
}

func TestTrimRemovesLeastRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	c, _ := Open(t.TempDir(), WithMaxSize(10_000))
	data := make([]byte, 1000)
	var keys []Key
	for i := range 20 {
		k := Key{Digest: fmt.Sprintf("sha256:%064x", i), Part: "p"}
		keys = append(keys, k)
		if err := c.Put(ctx, k, data); err != nil {
			t.Fatal(err)
		}
		p, _ := c.path(k)
		old := time.Now().Add(-time.Duration(100-i) * time.Minute)
		os.Chtimes(p, old, old)
	}
	c.Get(ctx, keys[0]) // recently used now
	freed, err := c.Trim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := c.Stat(ctx)
	if st.Size > 9000 || freed == 0 {
		t.Errorf("after Trim: %d bytes, %d freed", st.Size, freed)
	}
	if _, ok, _ := c.Get(ctx, keys[0]); !ok {
		t.Error("the most recently used entry was trimmed")
	}
	if _, ok, _ := c.Get(ctx, keys[1]); ok {
		t.Error("the least recently used entry was kept")
	}
	if _, ok, _ := c.Get(ctx, keys[19]); !ok {
		t.Error("a recent entry was trimmed")
	}
}

func TestClean(t *testing.T) {
	ctx := context.Background()
	c, _ := Open(t.TempDir())
	for i := range 5 {
		c.Put(ctx, Key{Digest: fmt.Sprintf("sha256:%064x", i), Part: "p"}, []byte("x"))
	}
	st, err := c.Clean(ctx)
	if err != nil || st.Entries != 5 {
		t.Fatalf("Clean = %+v, %v", st, err)
	}
	after, _ := c.Stat(ctx)
	if diff := cmp.Diff(Stats{}, after); diff != "" {
		t.Errorf("after Clean (-want +got):\n%s", diff)
	}
	if err := c.Put(ctx, Key{Digest: digestA, Part: "p"}, []byte("y")); err != nil {
		t.Errorf("Put after Clean: %v", err)
	}
}

// Several processes write, read, trim and clean one cache at once; every
// read returns a whole entry or none.
func TestManyProcesses(t *testing.T) {
	if dir := os.Getenv("LADING_CACHE_CHILD"); dir != "" {
		child(t, dir)
		return
	}
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestManyProcesses$")
			cmd.Env = append(os.Environ(), "LADING_CACHE_CHILD="+dir, "LADING_CACHE_ID="+strconv.Itoa(i))
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("child %d: %v\n%s", i, err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "lock")); err != nil {
		t.Error(err)
	}
}

func child(t *testing.T, dir string) {
	ctx := context.Background()
	c, err := Open(dir, WithMaxSize(20_000))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := strconv.Atoi(os.Getenv("LADING_CACHE_ID"))
	for i := range 200 {
		k := Key{Digest: fmt.Sprintf("sha256:%064x", i%25), Part: "p"}
		want := fmt.Sprintf("entry %d, the same from every process %0900d", i%25, 0)
		switch (i + id) % 10 {
		case 0:
			if _, err := c.Trim(ctx); err != nil {
				t.Fatal(err)
			}
		case 1:
			if id == 0 && i%50 == 1 {
				if _, err := c.Clean(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := c.Put(ctx, k, []byte(want)); err != nil {
			t.Fatal(err)
		}
		got, ok, err := c.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if ok && string(got) != want {
			t.Fatalf("read %q", got)
		}
	}
}

// Entries of the diffID-keyed layout (v1) are never read: Open removes
// them.
func TestDiffIDLayoutRemoved(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "v1", "sha256", strings.Repeat("a", 64))
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(old, "layer@1"), []byte("x"), 0o644)
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "v1")); !os.IsNotExist(err) {
		t.Errorf("v1 is still there: %v", err)
	}
	if st, _ := c.Stat(context.Background()); st.Entries != 0 {
		t.Errorf("%d entries", st.Entries)
	}
}
