package registry_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/registry"
)

// Clients trust the sizes a manifest states (they allocate and verify by
// them), so a descriptor whose size is not the stored blob's, or the stored
// manifest's, is refused with MANIFEST_INVALID and a message naming the
// descriptor and both sizes.
func TestManifestDescriptorSizes(t *testing.T) {
	tr := newRegistry(t)
	layer := randomBytes(100)
	good, m := tr.image(t, "r", layer)
	want(t, "true sizes", tr.putManifest(t, "r", "good", good, registry.MediaTypeOCIManifest), http.StatusCreated, "")

	mutated := func(f func(m *manifest)) []byte {
		c := m
		cfg := *m.Config
		c.Config = &cfg
		c.Layers = append([]desc(nil), m.Layers...)
		f(&c)
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		body  []byte
		words []string // the message names these
		mt    string
	}{
		{"layer too large", mutated(func(m *manifest) { m.Layers[0].Size = 101 }), []string{"layers[0]", digestOf(layer), "101", "100"}, registry.MediaTypeOCIManifest},
		{"layer too small", mutated(func(m *manifest) { m.Layers[0].Size = 1 }), []string{"layers[0]", "1", "100"}, registry.MediaTypeOCIManifest},
		{"config", mutated(func(m *manifest) { m.Config.Size += 7 }), []string{"config", m.Config.Digest, fmt.Sprint(m.Config.Size + 7), fmt.Sprint(m.Config.Size)}, registry.MediaTypeOCIManifest},
		{"one digest, two sizes", mutated(func(m *manifest) {
			m.Layers = append(m.Layers, m.Layers[0])
			m.Layers[1].Size = 5
		}), []string{"layers[1]", "layers[0]", digestOf(layer)}, registry.MediaTypeOCIManifest},
		{"index entry", func() []byte {
			b, _ := json.Marshal(manifest{SchemaVersion: 2, MediaType: registry.MediaTypeOCIIndex, Manifests: []desc{
				{MediaType: registry.MediaTypeOCIManifest, Digest: digestOf(good), Size: int64(len(good)) + 1},
			}})
			return b
		}(), []string{"manifests[0]", digestOf(good), fmt.Sprint(len(good) + 1), fmt.Sprint(len(good))}, registry.MediaTypeOCIIndex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tr.putManifest(t, "r", "bad", tc.body, tc.mt)
			want(t, tc.name, r, http.StatusBadRequest, "MANIFEST_INVALID")
			for _, w := range tc.words {
				if !strings.Contains(string(r.body), w) {
					t.Errorf("message %s does not name %q", r.body, w)
				}
			}
			want(t, "refused manifest", tr.do(t, "GET", "/v2/r/manifests/bad", nil), http.StatusNotFound, "MANIFEST_UNKNOWN")
		})
	}
}
