package analyze

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/analyze/apk"
	"github.com/lading-dev/lading/internal/cache"
)

// counting counts the files an analyzer is given.
type counting struct {
	analyzer.Analyzer
	ver int
	n   *atomic.Int64
}

func (c counting) Version() int { return c.ver }
func (c counting) Analyze(ctx context.Context, f *analyzer.File) (*analyzer.Result, error) {
	c.n.Add(1)
	return c.Analyzer.Analyze(ctx, f)
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	layers := stack(t,
		[]ent{file("lib/apk/db/installed", apkDB("musl=1.2.5-r0", "busybox=1.36-r1")), file("a", "a")},
		[]ent{file("lib/apk/db/installed", apkDB("musl=1.2.5-r0")), file("b", "b"), whiteout("a")},
	)
	var opened atomic.Int64
	srcs := sourcesOf(layers)
	for i := range srcs {
		open := srcs[i].Open
		srcs[i].Open = func(ctx context.Context) (io.ReadCloser, error) { opened.Add(1); return open(ctx) }
	}
	var nApk, nEcho atomic.Int64
	run := func(apkVer, echoVer int) *Inventory {
		inv, err := Layers(ctx, srcs, WithCache(c), WithAnalyzers(
			counting{apk.New(), apkVer, &nApk},
			counting{echo{}, echoVer, &nEcho},
		))
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	cold := run(1, 1)
	if opened.Load() != 2 || nApk.Load() != 2 || nEcho.Load() != 4 {
		t.Fatalf("cold: %d layers opened, %d apk files, %d echo files", opened.Load(), nApk.Load(), nEcho.Load())
	}
	warm := run(1, 1)
	if opened.Load() != 2 || nApk.Load() != 2 || nEcho.Load() != 4 {
		t.Errorf("warm: layers opened again (%d) or files analyzed again (%d apk, %d echo)", opened.Load(), nApk.Load(), nEcho.Load())
	}
	for _, l := range warm.Layers {
		if !l.Cached {
			t.Errorf("layer %d not from the cache", l.Index)
		}
	}
	clear := func(inv *Inventory) *Inventory {
		for i := range inv.Layers {
			inv.Layers[i].Cached = false
		}
		return inv
	}
	if diff := cmp.Diff(clear(cold), clear(warm)); diff != "" {
		t.Errorf("warm differs from cold (-cold +warm):\n%s", diff)
	}
	// A new version of one analyzer reads the layers for it alone.
	bumped := run(1, 2)
	if opened.Load() != 4 || nApk.Load() != 2 || nEcho.Load() != 8 {
		t.Errorf("after a version bump: %d layers opened, %d apk files, %d echo files", opened.Load(), nApk.Load(), nEcho.Load())
	}
	if diff := cmp.Diff(clear(cold), clear(bumped)); diff != "" {
		t.Errorf("bumped differs from cold (-cold +bumped):\n%s", diff)
	}
}

// A layer whose content does not match the config's diffID (here: a stream
// cut short) fails the analysis, naming the layer and its digest, and
// nothing is cached.
func TestTruncatedLayerFails(t *testing.T) {
	ctx := context.Background()
	c, _ := cache.Open(t.TempDir())
	full := tarOf(t, file("lib/apk/db/installed", apkDB("musl=1.2.5-r0")), file("big", string(make([]byte, 4096))))
	cut := full[:len(full)-2048]
	srcs := sourcesOf([][]byte{cut})
	srcs[0].Digest, srcs[0].DiffID = digestOf(full), digestOf(full)
	_, err := Layers(ctx, srcs, WithCache(c))
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.Index != 0 || !strings.Contains(err.Error(), "layer 1/1 "+digestOf(full)) ||
		!strings.Contains(err.Error(), "the image config gives diffID "+digestOf(full)) {
		t.Fatalf("error %v, want an integrity error naming layer 1/1 and its digest", err)
	}
	st, _ := c.Stat(ctx)
	if st.Entries != 0 {
		t.Errorf("%d cache entries for a truncated layer", st.Entries)
	}
}

// A layer whose stream cannot be opened (its blob is missing) fails the
// analysis, naming the layer.
func TestUnopenableLayer(t *testing.T) {
	srcs := sourcesOf(stack(t, []ent{file("lib/apk/db/installed", apkDB("musl=1.2.5-r0"))}, []ent{file("x", "x")}))
	srcs[1].Open = func(context.Context) (io.ReadCloser, error) { return nil, errors.New("blob missing") }
	_, err := Layers(context.Background(), srcs)
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.Index != 1 || err.Error() != "layer 2/2 "+srcs[1].Digest+": blob missing" {
		t.Errorf("error %v, want an integrity error for layer 2/2", err)
	}
}
