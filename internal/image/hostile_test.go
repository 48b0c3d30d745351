package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/store"
	"github.com/lading-dev/lading/internal/verify"
)

type member struct {
	name string
	body []byte
}

func writeTar(t testing.TB, path string, ms []member) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.body)), Typeflag: tar.TypeReg})
		tw.Write(m.body)
	}
	tw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func layerTar(t testing.TB, files ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
		tw.Write([]byte("x"))
	}
	tw.Close()
	return buf.Bytes()
}

func sha(b []byte) v1.Hash { h, _ := verify.FromBytes(b, "sha256"); return h }

func configFor(diffIDs ...v1.Hash) []byte {
	b, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	return b
}

func dockerArchive(t testing.TB, path string, cfg []byte, layers []string, extra ...member) {
	mj, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{"bad:1"}, "Layers": layers}})
	writeTar(t, path, append([]member{{"manifest.json", mj}, {"config.json", cfg}}, extra...))
}

// ociLayout writes an OCI layout dir with the given blobs and an index.json
// naming desc.
func ociLayout(t testing.TB, dir string, desc v1.Descriptor, blobs map[v1.Hash][]byte) {
	os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	desc.Annotations = map[string]string{"org.opencontainers.image.ref.name": "bad"}
	idx, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, Manifests: []v1.Descriptor{desc}})
	os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644)
	for h, b := range blobs {
		os.WriteFile(filepath.Join(dir, "blobs", h.Algorithm, h.Hex), b, 0o644)
	}
}

func manifestFor(cfg []byte, layers ...[]byte) ([]byte, map[v1.Hash][]byte) {
	blobs := map[v1.Hash][]byte{sha(cfg): cfg}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: sha(cfg), Size: int64(len(cfg))}}
	for _, l := range layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCIUncompressedLayer, Digest: sha(l), Size: int64(len(l))})
		blobs[sha(l)] = l
	}
	b, _ := json.Marshal(m)
	blobs[sha(b)] = b
	return b, blobs
}

// TestHostileSources feeds broken archives and layouts to a pull into the
// store: each must fail with an error of the right class that names what is
// wrong, and leave no reference and no unverified blob in the store.
func TestHostileSources(t *testing.T) {
	good := layerTar(t, "etc/ok")
	other := layerTar(t, "etc/other")
	wrong := sha([]byte("not the manifest"))

	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the reference
		class error
		msg   []string
	}{
		{
			name: "docker-archive: missing layer file",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "a.tar")
				dockerArchive(t, p, configFor(sha(good)), []string{"l1.tar"})
				return "docker-archive:" + p
			},
			class: errdefs.ErrNotFound, msg: []string{"bad:1", "l1.tar", "missing"},
		},
		{
			name: "docker-archive: layer does not match its diffID",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "a.tar")
				dockerArchive(t, p, configFor(sha(good)), []string{"l1.tar"}, member{"l1.tar", other})
				return "docker-archive:" + p
			},
			class: errdefs.ErrCorrupt, msg: []string{sha(good).String()},
		},
		{
			name: "docker-archive: layer path escapes",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "a.tar")
				dockerArchive(t, p, configFor(sha(good)), []string{"../../etc/passwd"})
				return "docker-archive:" + p
			},
			class: errdefs.ErrInvalidArgument, msg: []string{"../../etc/passwd", "not inside the archive"},
		},
		{
			name: "docker-archive: fewer layers than diffIDs",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "a.tar")
				dockerArchive(t, p, configFor(sha(good), sha(other)), []string{"l1.tar"}, member{"l1.tar", good})
				return "docker-archive:" + p
			},
			class: errdefs.ErrInvalidArgument, msg: []string{"1 layers", "2 diffIDs"},
		},
		{
			name: "docker-archive: manifest.json is not JSON",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "a.tar")
				writeTar(t, p, []member{{"manifest.json", []byte("[{")}})
				return "docker-archive:" + p
			},
			class: errdefs.ErrInvalidArgument, msg: []string{"manifest.json"},
		},
		{
			name: "docker-archive: truncated",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "a.tar")
				dockerArchive(t, p, configFor(sha(good)), []string{"l1.tar"}, member{"l1.tar", good})
				b, _ := os.ReadFile(p)
				os.WriteFile(p, b[:len(b)-1500], 0o644)
				return "docker-archive:" + p
			},
			class: errdefs.ErrCorrupt, msg: []string{"truncated"},
		},
		{
			name: "oci: manifest names a missing blob",
			setup: func(t *testing.T, dir string) string {
				m, blobs := manifestFor(configFor(sha(good)), good)
				delete(blobs, sha(good))
				ociLayout(t, dir, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: sha(m), Size: int64(len(m))}, blobs)
				return "oci:" + dir + ":bad"
			},
			class: errdefs.ErrNotFound, msg: []string{sha(good).String(), "missing"},
		},
		{
			name: "oci: blob content does not match its name",
			setup: func(t *testing.T, dir string) string {
				m, blobs := manifestFor(configFor(sha(good)), good)
				blobs[sha(good)] = other[:len(good)] // same size, other bytes
				ociLayout(t, dir, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: sha(m), Size: int64(len(m))}, blobs)
				return "oci:" + dir + ":bad"
			},
			class: errdefs.ErrCorrupt, msg: []string{sha(good).String()},
		},
		{
			name: "oci: manifest digest does not match",
			setup: func(t *testing.T, dir string) string {
				m, blobs := manifestFor(configFor(sha(good)), good)
				blobs[wrong] = m
				ociLayout(t, dir, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: wrong, Size: int64(len(m))}, blobs)
				return "oci:" + dir + ":bad"
			},
			class: errdefs.ErrCorrupt, msg: []string{wrong.String()},
		},
		{
			name: "oci: unknown manifest media type",
			setup: func(t *testing.T, dir string) string {
				m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json","config":{"mediaType":"x","digest":"` + sha(nil).String() + `","size":0},"layers":[]}`)
				ociLayout(t, dir, v1.Descriptor{MediaType: "application/vnd.example.thing+json", Digest: sha(m), Size: int64(len(m))}, map[v1.Hash][]byte{sha(m): m})
				return "oci:" + dir + ":bad"
			},
			class: errdefs.ErrUnsupported, msg: []string{"application/vnd.example.thing+json"},
		},
		{
			name: "oci: digest with path tricks",
			setup: func(t *testing.T, dir string) string {
				os.MkdirAll(dir, 0o755)
				os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
				os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../etc/passwd","size":3}]}`), 0o644)
				return "oci:" + dir
			},
			class: errdefs.ErrInvalidArgument, msg: []string{"sha256:../../../etc/passwd"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			st, err := store.Open(filepath.Join(dir, "store"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			os.MkdirAll(filepath.Join(dir, "src"), 0o755)
			ref, err := Parse(tt.setup(t, filepath.Join(dir, "src")))
			if err != nil {
				t.Fatal(err)
			}
			err = pull(ctx, ref, st)
			if err == nil {
				t.Fatal("pull succeeded")
			}
			if !errors.Is(err, tt.class) {
				t.Errorf("error class: got %v, want %v", err, tt.class)
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			idx, _ := st.Index(ctx)
			if len(idx.Manifests) != 0 {
				t.Errorf("a failed pull left references: %v", idx.Manifests)
			}
			assertStoreVerifies(t, st)
		})
	}
}

func pull(ctx context.Context, ref Reference, st *store.Store) error {
	src, err := Open(ctx, ref, WithStore(st))
	if err != nil {
		return err
	}
	defer src.Close()
	_, err = Write(ctx, Reference{Transport: Local, Name: "docker.io/library/pulled:1"}, src.Artifact, WithStore(st))
	return err
}

// assertStoreVerifies reads every blob of the store through its verifying
// reader.
func assertStoreVerifies(t *testing.T, st *store.Store) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(st.Root(), "blobs", "sha256"))
	for _, e := range ents {
		h := v1.Hash{Algorithm: "sha256", Hex: e.Name()}
		if _, err := st.ReadBlob(context.Background(), h, 1<<30); err != nil {
			t.Errorf("store holds a bad blob: %v", err)
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(st.Root(), "ingest")); len(tmp) != 0 {
		t.Errorf("temp files left in ingest/: %d", len(tmp))
	}
}

func FuzzDockerArchive(f *testing.F) {
	good := layerTar(f, "a")
	cfg := configFor(sha(good))
	f.Add([]byte(`[{"Config":"config.json","RepoTags":["a:1"],"Layers":["l.tar"]}]`), cfg, good)
	f.Add([]byte(`[{"Config":"../x","Layers":["/etc/passwd"]}]`), cfg, good)
	f.Add([]byte(`[]`), []byte(`{}`), []byte{})
	f.Fuzz(func(t *testing.T, mj, cfg, layer []byte) {
		p := filepath.Join(t.TempDir(), "f.tar")
		writeTar(t, p, []member{{"manifest.json", mj}, {"config.json", cfg}, {"l.tar", layer}})
		src, err := Open(context.Background(), Reference{Transport: DockerArchive, Path: p, Name: "@0"})
		if err != nil {
			return
		}
		defer src.Close()
		ls, err := src.Image.Layers()
		if err != nil {
			return
		}
		for _, l := range ls {
			if rc, err := l.Uncompressed(); err == nil {
				buf := make([]byte, 1<<16)
				for {
					if _, err := rc.Read(buf); err != nil {
						break
					}
				}
				rc.Close()
			}
		}
	})
}

func FuzzOCILayout(f *testing.F) {
	cfg := configFor(sha(layerTar(f, "a")))
	m, _ := manifestFor(cfg, layerTar(f, "a"))
	idx := fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d}]}`, sha(m), len(m))
	f.Add([]byte(idx), m)
	f.Add([]byte(`{"manifests":[{"digest":"sha256:zz"}]}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, index, manifest []byte) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
		os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
		os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644)
		os.WriteFile(filepath.Join(dir, "blobs", "sha256", sha(manifest).Hex), manifest, 0o644)
		src, err := Open(context.Background(), Reference{Transport: OCI, Path: dir})
		if err != nil {
			return
		}
		defer src.Close()
		if src.Image != nil {
			src.Image.ConfigFile()
			src.Image.Layers()
		} else {
			src.Select(nil)
		}
	})
}
