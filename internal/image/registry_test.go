package image

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/registrytest"
)

// staticKeychain answers every registry with one user.
type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: k.user, Password: k.pass}), nil
}

func TestRegistry(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth registrytest.Auth
	}{{"anonymous", registrytest.None}, {"htpasswd", registrytest.Htpasswd}, {"token", registrytest.Token}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			reg := registrytest.Start(t, tc.auth)
			creds := WithKeychain(staticKeychain{reg.User, reg.Password})
			img := testImage(t, tc.name)
			ref, err := Parse(reg.Host + "/lading/test:1")
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != registrytest.None {
				_, err := Write(ctx, ref, Artifact{Image: img}, WithKeychain(authn.NewMultiKeychain()))
				if !errdefs.IsUnauthorized(err) {
					t.Fatalf("push without credentials: %v, want unauthorized", err)
				}
				_, err = Write(ctx, ref, Artifact{Image: img}, WithKeychain(staticKeychain{reg.User, "wrong"}))
				if !errdefs.IsUnauthorized(err) {
					t.Fatalf("push with a wrong password: %v, want unauthorized", err)
				}
			}
			desc, err := Write(ctx, ref, Artifact{Image: img}, creds)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := img.Digest()
			if desc.Digest != want {
				t.Errorf("pushed digest %s, want %s (a compressed image must keep its digest)", desc.Digest, want)
			}
			src, err := Open(ctx, ref, creds)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if diff := cmp.Diff(identityOf(t, img), identityOf(t, src.Image)); diff != "" {
				t.Errorf("pulled image differs (-pushed +pulled):\n%s", diff)
			}
		})
	}
}

// TestRegistryDockerConfig reads credentials the way docker users store
// them: config.json in $DOCKER_CONFIG.
func TestRegistryDockerConfig(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Htpasswd)
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600)
	t.Setenv("DOCKER_CONFIG", dir)
	ref, _ := Parse(reg.Host + "/cfg/test:1")
	if _, err := Write(ctx, ref, Artifact{Image: testImage(t, "cfg")}); err != nil {
		t.Fatalf("push with config.json credentials: %v", err)
	}
}

// TestRegistryCompressesUncompressed pushes an image whose layers are
// stored uncompressed (as docker load leaves them): the registry gets gzip
// layers, the config and diffIDs stay the same.
func TestRegistryCompressesUncompressed(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.None)
	dir := t.TempDir()
	img := testImage(t, "u")
	archive := Reference{Transport: DockerArchive, Path: filepath.Join(dir, "u.tar")}
	if err := Save(ctx, archive, []Item{{Artifact: Artifact{Image: img}}}); err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, archive)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ref, _ := Parse(reg.Host + "/u/u:1")
	if _, err := Write(ctx, ref, src.Artifact); err != nil {
		t.Fatal(err)
	}
	pulled, err := Open(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := pulled.Image.Manifest()
	for _, l := range m.Layers {
		if !content.IsCompressed(l.MediaType) {
			t.Errorf("registry got an uncompressed layer %s (%s)", l.Digest, l.MediaType)
		}
	}
	if diff := cmp.Diff(identityOf(t, img), identityOf(t, pulled.Image)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// With keep, the layers go as they are.
	ref2, _ := Parse(reg.Host + "/u/keep:1")
	if _, err := Write(ctx, ref2, src.Artifact, WithCompression(CompressKeep)); err != nil {
		t.Fatal(err)
	}
	kept, _ := Open(ctx, ref2)
	km, _ := kept.Image.Manifest()
	if km.Layers[0].MediaType != types.OCIUncompressedLayer {
		t.Errorf("--compress keep pushed %s", km.Layers[0].MediaType)
	}
}

// TestRegistryIndex pushes a multi-platform index and pulls one platform.
func TestRegistryIndex(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.None)
	amd, arm := testImage(t, "amd"), testImage(t, "arm")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	ref, _ := Parse(reg.Host + "/multi/x:1")
	if _, err := Write(ctx, ref, Artifact{Index: idx}); err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if src.Index == nil {
		t.Fatal("pulled an image, want the index")
	}
	p, _ := ParsePlatform("linux/arm64")
	got, err := src.Select(p)
	if err != nil {
		t.Fatal(err)
	}
	gd, _ := got.Digest()
	wd, _ := arm.Digest()
	if gd != wd {
		t.Errorf("arm64 image %s, want %s", gd, wd)
	}
	missing, _ := Parse(reg.Host + "/multi/none:1")
	if _, err := Open(ctx, missing); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("absent tag: %v, want not found", err)
	}
}
