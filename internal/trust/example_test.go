package trust_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/store"
	"github.com/lading-dev/lading/internal/trust"
)

// Sign a manifest kept in an OCI layout with a cosign key, in the bundle
// format, then verify it as a registry would at pull time: a Policy built
// once, a Source over the storage, the subject's descriptor.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "trust-example")
	defer os.RemoveAll(dir)
	st, _ := store.Open(filepath.Join(dir, "layout"), store.AsLayout())
	defer st.Close()
	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	h, _ := st.PutBlob(ctx, raw)
	subj := trust.Subject{
		Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: int64(len(raw))},
		Name:       "registry.example/team/app",
	}
	layout := trust.NewLayout(st, "")

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := trust.Sign(ctx, layout, layout, subj, trust.SignOptions{
		Format: trust.CosignBundle, Key: key, Annotations: map[string]string{"env": "prod"},
	}); err != nil {
		fmt.Println(err)
		return
	}

	trusted, _ := trust.NewKey(key.Public())
	policy := &trust.Policy{Keys: []*trust.Key{trusted}, Annotations: map[string]string{"env": "prod"}}
	res, err := trust.Verify(ctx, layout, subj, policy)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := res.Err(); err != nil {
		fmt.Println("refused:", err)
		return
	}
	s := res.Verified[0]
	fmt.Println(s.Format, s.Signer.KeyID == trusted.ID, s.Annotations["env"])
	// Output: cosign-bundle true prod
}
