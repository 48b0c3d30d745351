package contenttrust

import (
	"fmt"
	"testing"
)

func TestInert(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want bool
	}{
		{"image", `{"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip"}]}`, false},
		{"docker-image", `{"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip"}]}`, false},
		{"notation-signature", `{"subject":{"digest":"sha256:00"},"layers":[{"mediaType":"application/jose+json"}]}`, true},
		{"image-with-subject", `{"subject":{"digest":"sha256:00"},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar"}]}`, false},
		{"cosign-legacy", `{"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json"}]}`, true},
		{"attestation-legacy", `{"layers":[{"mediaType":"application/vnd.dsse.envelope.v1+json"}]}`, true},
		{"no-layers", `{"layers":[]}`, false},
		{"untyped-layer", `{"subject":{"digest":"sha256:00"},"layers":[{}]}`, false},
		{"index", `{"subject":{"digest":"sha256:00"},"manifests":[{}]}`, false},
		{"not-json", `{`, false},
	} {
		if got := inert([]byte(tc.body)); got != tc.want {
			t.Errorf("%s: inert = %t, want %t", tc.name, got, tc.want)
		}
	}
}

func FuzzInert(f *testing.F) {
	f.Add([]byte(`{"subject":{"digest":"sha256:00"},"layers":[{"mediaType":"application/jose+json"}]}`))
	f.Add([]byte(`{"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		inert(b) // never panics
	})
}

func TestLRU(t *testing.T) {
	c := newLRU(3)
	for i := range 5 {
		c.put(fmt.Sprint(i), verdict{gen: int64(i)})
	}
	if c.len() != 3 {
		t.Fatalf("len %d, want 3", c.len())
	}
	if _, ok := c.get("0"); ok {
		t.Error("the oldest was kept")
	}
	c.get("2") // most recent now
	c.put("5", verdict{})
	if _, ok := c.get("2"); !ok {
		t.Error("a recently used verdict was dropped")
	}
	if _, ok := c.get("3"); ok {
		t.Error("the least recently used was kept")
	}
}
