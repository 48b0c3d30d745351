package analyze

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lading-dev/lading/internal/cache"
)

// The cache is keyed by the blob digest that was read and verified, not by
// the config's diffIDs: an image whose config names the diffIDs of benign,
// cached layers over blobs that hold something else is not reported as the
// benign layers.
func TestCachePoisoningByDiffID(t *testing.T) {
	ctx := context.Background()
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	benign := tarOf(t, file("lib/apk/db/installed", apkDB("musl=1.2.5-r0")))
	evil := tarOf(t, file("lib/apk/db/installed", apkDB("musl=1.2.5-r0", "backdoor=6.6.6-r0")))
	if _, err := Layers(ctx, sourcesOf([][]byte{benign}), WithCache(c)); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name          string
		digest, claim string
		blob          []byte
		want          string // in the error; "" for success
	}{
		{"evil blob, config claims the benign diffID", digestOf(evil), digestOf(benign), evil,
			"the image config gives diffID " + digestOf(benign) + ", but the layer's content has diffID " + digestOf(evil)},
		{"benign blob (cached), config claims another diffID", digestOf(benign), digestOf(evil), benign,
			"the image config gives diffID " + digestOf(evil) + ", but the layer's content has diffID " + digestOf(benign)},
		{"evil blob, claims what it is", digestOf(evil), digestOf(evil), evil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := LayerSource{Digest: tc.digest, DiffID: tc.claim, Open: func(context.Context) (io.ReadCloser, error) {
				return io.NopCloser(strings.NewReader(string(tc.blob))), nil
			}}
			inv, err := Layers(ctx, []LayerSource{src}, WithCache(c))
			if tc.want != "" {
				var ie *IntegrityError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "layer 1/1 "+tc.digest) {
					t.Fatalf("error %v, want an integrity error with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range inv.Packages() {
				names = append(names, p.Name)
			}
			if fmt.Sprint(names) != "[backdoor musl]" || inv.Layers[0].DiffID != digestOf(evil) {
				t.Errorf("packages %v, diffID %s: want what the blob holds", names, inv.Layers[0].DiffID)
			}
		})
	}
}

// A cached layer whose blob the image does not have is an integrity
// failure when the source can tell without reading.
func TestCachedLayerMissingBlob(t *testing.T) {
	ctx := context.Background()
	c, _ := cache.Open(t.TempDir())
	srcs := sourcesOf(stack(t, []ent{file("lib/apk/db/installed", apkDB("musl=1.2.5-r0"))}))
	if _, err := Layers(ctx, srcs, WithCache(c)); err != nil {
		t.Fatal(err)
	}
	srcs[0].Present = func(context.Context) error { return errors.New("blob is missing") }
	_, err := Layers(ctx, srcs, WithCache(c))
	var ie *IntegrityError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "blob is missing") {
		t.Fatalf("error %v, want the missing blob", err)
	}
}

// A manifest of 10,000 layers whose blobs are missing fails on the first:
// the layers after it are never opened.
func TestManyMissingLayersFailFast(t *testing.T) {
	var opened atomic.Int64
	srcs := make([]LayerSource, 10000)
	for i := range srcs {
		srcs[i] = LayerSource{Digest: fmt.Sprintf("sha256:%064x", i), Open: func(context.Context) (io.ReadCloser, error) {
			opened.Add(1)
			return nil, fmt.Errorf("blob %d is missing", i)
		}}
	}
	_, err := Layers(context.Background(), srcs, WithParallel(4))
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.Index != 0 || !strings.Contains(err.Error(), "layer 1/10000") {
		t.Fatalf("error %v, want layer 1's", err)
	}
	if n := opened.Load(); n > 8 {
		t.Errorf("%d layers opened after the first failed", n)
	}
}
