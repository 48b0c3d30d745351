package interop

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
)

type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: k.user, Password: k.pass}), nil
}

// TestLading pushes corpus images (a multi-platform index and a five-layer
// image) to lading serve with lading's own client, pulls them back, and
// checks digests, under no auth, basic auth, and the token flow over TLS.
func TestLading(t *testing.T) {
	corpus := corpustest.Dir(t)
	for _, tc := range []struct {
		name   string
		setups []setup
		auth   bool
	}{
		{"no-auth", []setup{withNoAuth}, false},
		{"htpasswd-import", []setup{withHtpasswd}, true},
		{"tls", []setup{withTLS}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			reg := start(t, tc.setups...)
			opts := []image.Option{image.WithInsecure(true), image.WithKeychain(staticKeychain{user, password})}
			for _, c := range []struct{ file, tag string }{
				{"alpine-3.20-multiarch.oci.tar", "latest"},
				{"alpine-3.20-app.oci.tar", "latest"},
			} {
				src, err := image.Open(ctx, image.Reference{Transport: image.OCIArchive, Path: filepath.Join(corpus, "images", c.file), Name: c.tag})
				if err != nil {
					t.Fatal(err)
				}
				want, err := src.Descriptor()
				if err != nil {
					t.Fatal(err)
				}
				dst := image.Reference{Transport: image.Registry, Name: reg.host + "/corpus/" + c.file + ":1"}
				if tc.auth {
					_, err := image.Write(ctx, dst, src.Artifact, image.WithInsecure(true), image.WithKeychain(authn.NewMultiKeychain()))
					if !errdefs.IsUnauthorized(err) {
						t.Errorf("push without credentials: %v, want unauthorized", err)
					}
				}
				got, err := image.Write(ctx, dst, src.Artifact, opts...)
				if err != nil {
					t.Fatalf("push %s: %v", c.file, err)
				}
				if got.Digest != want.Digest {
					t.Errorf("%s: pushed %s, want %s", c.file, got.Digest, want.Digest)
				}
				back, err := image.Open(ctx, dst, opts...)
				if err != nil {
					t.Fatalf("pull %s: %v", c.file, err)
				}
				bd, _ := back.Descriptor()
				if bd.Digest != want.Digest {
					t.Errorf("%s: pulled %s, want %s", c.file, bd.Digest, want.Digest)
				}
				img, err := back.Select(nil)
				if err != nil {
					t.Fatal(err)
				}
				ls, _ := img.Layers()
				for _, l := range ls {
					rc, err := l.Compressed() // verified at EOF
					if err != nil {
						t.Fatal(err)
					}
					buf := make([]byte, 1<<16)
					for {
						if _, err := rc.Read(buf); err != nil {
							if err != io.EOF {
								t.Errorf("layer read: %v", err)
							}
							break
						}
					}
					rc.Close()
				}
				back.Close()
				src.Close()
			}
		})
	}
}
