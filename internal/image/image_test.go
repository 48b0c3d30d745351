package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/store"
)

// testImage builds a two-layer image with real tar layers and a config
// that records their diffIDs.
func testImage(t testing.TB, seed string) v1.Image {
	t.Helper()
	var layers []v1.Layer
	for i, files := range [][]string{{"etc/a", "etc/b"}, {"usr/c-" + seed}} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, f := range files {
			body := []byte(f + " content " + seed)
			tw.WriteHeader(&tar.Header{Name: f, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
			tw.Write(body)
		}
		tw.Close()
		b := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		_ = i
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, mustConfig(t, img, seed))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustConfig(t testing.TB, img v1.Image, seed string) *v1.ConfigFile {
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = []string{"/bin/sh", seed}
	return cf
}

// identity is what must survive every copy: the config bytes (so the image
// ID) and the uncompressed layer contents.
type identity struct {
	Config  string
	DiffIDs []v1.Hash
	Files   []string
}

func identityOf(t testing.TB, img v1.Image) identity {
	t.Helper()
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	id := identity{Config: string(cfg)}
	for _, l := range ls {
		d, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		id.DiffIDs = append(id.DiffIDs, d)
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", d, err)
			}
			b, _ := io.ReadAll(tr)
			id.Files = append(id.Files, h.Name+"="+string(b))
		}
		rc.Close()
	}
	return id
}

func TestRoundTrips(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	img := testImage(t, "x")
	want := identityOf(t, img)
	wantDigest, _ := img.Digest()

	tests := []struct {
		dst            string
		keepsDigest    bool
		uncompressedTo bool
	}{
		{"local:example.com/a/b:1", true, false},
		{"oci:" + filepath.Join(dir, "layout") + ":v1", true, false},
		{"oci-archive:" + filepath.Join(dir, "a.oci.tar") + ":v1", true, false},
		{"docker-archive:" + filepath.Join(dir, "a.docker.tar") + ":example.com/a/b:1", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.dst, func(t *testing.T) {
			dst, err := Parse(tt.dst)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Write(ctx, dst, Artifact{Image: img}, WithStore(st)); err != nil {
				t.Fatal(err)
			}
			src, err := Open(ctx, dst, WithStore(st))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if src.Image == nil {
				t.Fatal("opened an index, want an image")
			}
			if diff := cmp.Diff(want, identityOf(t, src.Image)); diff != "" {
				t.Errorf("identity changed (-want +got):\n%s", diff)
			}
			got, _ := src.Image.Digest()
			if tt.keepsDigest && got != wantDigest {
				t.Errorf("manifest digest %s, want %s", got, wantDigest)
			}
			if tt.uncompressedTo {
				m, _ := src.Image.Manifest()
				for _, l := range m.Layers {
					if content.IsCompressed(l.MediaType) {
						t.Errorf("layer %s is %s, want uncompressed", l.Digest, l.MediaType)
					}
				}
			}
		})
	}

	// The docker-archive written above is also an OCI layout.
	both, err := Parse("oci-archive:" + filepath.Join(dir, "a.docker.tar") + ":1")
	if err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, both)
	if err != nil {
		t.Fatalf("the docker-archive is not an oci-archive too: %v", err)
	}
	defer src.Close()
	if diff := cmp.Diff(want, identityOf(t, src.Image)); diff != "" {
		t.Errorf("identity through the OCI side (-want +got):\n%s", diff)
	}
}

func TestMultiImageDockerArchive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := testImage(t, "a"), testImage(t, "b")
	path := filepath.Join(dir, "two.tar")
	dst := Reference{Transport: DockerArchive, Path: path}
	err := Save(ctx, dst, []Item{
		{Artifact: Artifact{Image: a}, Names: []string{"docker.io/library/a:1", "docker.io/library/a:latest"}},
		{Artifact: Artifact{Image: b}, Names: []string{"quay.io/b/b:2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]v1.Image{
		"docker-archive:" + path + ":a:1":           a,
		"docker-archive:" + path + ":a":             a,
		"docker-archive:" + path + ":quay.io/b/b:2": b,
		"docker-archive:" + path + ":@1":            b,
	} {
		r, err := Parse(ref)
		if err != nil {
			t.Fatal(err)
		}
		src, err := Open(ctx, r)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if diff := cmp.Diff(identityOf(t, want), identityOf(t, src.Image)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", ref, diff)
		}
		src.Close()
	}
	// Ambiguous and missing names are errors that list what is there.
	for _, bad := range []string{"docker-archive:" + path, "docker-archive:" + path + ":c:1", "docker-archive:" + path + ":@7"} {
		r, _ := Parse(bad)
		if src, err := Open(ctx, r); err == nil {
			src.Close()
			t.Errorf("%s: opened", bad)
		}
	}
	// OpenAll (load) yields both with their names.
	srcs, err := OpenAll(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	var names [][]string
	for _, s := range srcs {
		names = append(names, s.Names)
		s.Close()
	}
	if diff := cmp.Diff([][]string{{"docker.io/library/a:1", "docker.io/library/a:latest"}, {"quay.io/b/b:2"}}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}

func TestRecompress(t *testing.T) {
	ctx := context.Background()
	img := testImage(t, "z")
	want := identityOf(t, img)
	for _, c := range []Compression{CompressGzip, CompressZstd} {
		art, cleanup, err := recompress(ctx, Artifact{Image: img}, c, makeOptions(nil))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, identityOf(t, art.Image)); diff != "" {
			t.Errorf("%s changed the image (-want +got):\n%s", c, diff)
		}
		m, _ := art.Image.Manifest()
		for _, l := range m.Layers {
			wantMT := types.OCILayer
			if c == CompressZstd {
				wantMT = types.OCILayerZStd
			}
			if l.MediaType != wantMT && !(c == CompressGzip && l.MediaType == types.DockerLayer) {
				t.Errorf("%s: layer media type %s", c, l.MediaType)
			}
		}
		cleanup()
	}
}

func TestPlatformSelect(t *testing.T) {
	amd, arm := testImage(t, "amd"), testImage(t, "arm")
	cf, _ := arm.ConfigFile()
	cf.Architecture, cf.Variant = "arm64", "v8"
	arm, _ = mutate.ConfigFile(arm, cf)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	// A nested index, as buildah writes them.
	outer := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: idx})
	for _, tt := range []struct {
		platform string
		want     v1.Image
	}{{"linux/amd64", amd}, {"linux/arm64", arm}, {"linux/arm64/v8", arm}} {
		p, err := ParsePlatform(tt.platform)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Artifact{Index: outer}.Select(p)
		if err != nil {
			t.Fatalf("%s: %v", tt.platform, err)
		}
		gd, _ := got.Digest()
		wd, _ := tt.want.Digest()
		if gd != wd {
			t.Errorf("%s: got %s want %s", tt.platform, gd, wd)
		}
	}
	p, _ := ParsePlatform("linux/s390x")
	if _, err := (Artifact{Index: outer}).Select(p); err == nil {
		t.Error("selected an absent platform")
	}
	if _, err := ParsePlatform("linux"); err == nil {
		t.Error("ParsePlatform(linux) accepted")
	}
}

func TestDockerArchiveGzipAndStdin(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	img := testImage(t, "g")
	plain := filepath.Join(dir, "p.tar")
	if err := Save(ctx, Reference{Transport: DockerArchive, Path: plain}, []Item{{Artifact: Artifact{Image: img}, Names: []string{"docker.io/library/g:1"}}}); err != nil {
		t.Fatal(err)
	}
	gz := filepath.Join(dir, "p.tar.gz")
	data, _ := os.ReadFile(plain)
	var buf bytes.Buffer
	zw := newGzipWriter(&buf)
	zw.Write(data)
	zw.Close()
	os.WriteFile(gz, buf.Bytes(), 0o644)
	src, err := Open(ctx, Reference{Transport: DockerArchive, Path: gz})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if diff := cmp.Diff(identityOf(t, img), identityOf(t, src.Image)); diff != "" {
		t.Errorf("gzipped archive (-want +got):\n%s", diff)
	}
}

// TestForeignLayers copies an image with a non-distributable layer whose
// blob is absent (as Windows base images have): every sink skips it without
// failing, and the manifest keeps naming it.
func TestForeignLayers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	img := testImage(t, "f")
	m, _ := img.Manifest()
	cf, _ := img.ConfigFile()
	// Make the first layer foreign and drop its blob from the source.
	foreign := m.Layers[0]
	foreign.MediaType = types.DockerForeignLayer
	foreign.URLs = []string{"https://example.com/layer.tar.gz"}
	m.Layers[0] = foreign
	m.MediaType = types.DockerManifestSchema2
	m.Config.MediaType = types.DockerConfigJSON
	cfgRaw, _ := json.Marshal(cf)
	m.Config.Digest = sha(cfgRaw)
	m.Config.Size = int64(len(cfgRaw))
	raw, _ := json.Marshal(m)
	src := memSource{sha(cfgRaw): memSource{}.raw(cfgRaw), sha(raw): memSource{}.raw(raw)}
	second, _ := img.LayerByDigest(m.Layers[1].Digest)
	src[m.Layers[1].Digest] = second.Compressed
	fimg, err := content.ImageFromManifest(src, v1.Descriptor{MediaType: types.DockerManifestSchema2, Digest: sha(raw), Size: int64(len(raw))}, raw)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := store.Open(filepath.Join(dir, "store"))
	defer st.Close()
	for _, dst := range []string{"local:example.com/f:1", "oci:" + filepath.Join(dir, "l") + ":f", "oci-archive:" + filepath.Join(dir, "a.tar") + ":f"} {
		ref, _ := Parse(dst)
		desc, err := Write(ctx, ref, Artifact{Image: fimg}, WithStore(st))
		if err != nil {
			t.Fatalf("%s: %v", dst, err)
		}
		if desc.Digest != sha(raw) {
			t.Errorf("%s: digest changed", dst)
		}
		back, err := Open(ctx, ref, WithStore(st))
		if err != nil {
			t.Fatalf("%s: read back: %v", dst, err)
		}
		bm, _ := back.Image.Manifest()
		if bm.Layers[0].MediaType != types.DockerForeignLayer || len(bm.Layers[0].URLs) != 1 {
			t.Errorf("%s: the foreign layer lost its descriptor: %+v", dst, bm.Layers[0])
		}
		back.Close()
	}
}

// TestZstdLayers writes an image with zstd layers and reads it back.
func TestZstdLayers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	img := testImage(t, "zstd")
	ref, _ := Parse("oci:" + filepath.Join(dir, "z") + ":1")
	if _, err := Write(ctx, ref, Artifact{Image: img}, WithCompression(CompressZstd)); err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	m, _ := src.Image.Manifest()
	if m.Layers[0].MediaType != types.OCILayerZStd {
		t.Fatalf("layer media type %s", m.Layers[0].MediaType)
	}
	if diff := cmp.Diff(identityOf(t, img), identityOf(t, src.Image)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestConcurrentLayerReads reads every layer of an image from many
// goroutines at once, as the scanner and the copy do: the config, read
// once on first use, is shared safely (run under -race).
func TestConcurrentLayerReads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ref, _ := Parse("oci:" + filepath.Join(dir, "l") + ":1")
	if _, err := Write(ctx, ref, Artifact{Image: testImage(t, "c")}); err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	layers, err := src.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(layers))
	for range 8 {
		for _, l := range layers {
			wg.Go(func() {
				rc, err := l.Uncompressed()
				if err == nil {
					_, err = io.Copy(io.Discard, rc)
					rc.Close()
				}
				if err == nil {
					_, err = src.Image.ConfigFile()
				}
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
