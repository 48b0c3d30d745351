package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/lading-dev/lading/internal/contenttrust"
	"github.com/lading-dev/lading/internal/harbortest"
	lproject "github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/trust"
)

// adminKeychain hands out the administrator's credentials.
type adminKeychain struct{}

func (adminKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: admin, Password: adminPW}, nil
}

// BenchmarkHarborPullSigned measures the signature policy's cost on a
// pull: the manifest of a signed image (cosign, a key the project trusts)
// fetched anonymously from a project with the policy on and from one with
// it off, in interleaved rounds on one server. It reports both p99s and
// their difference (the goal is under 1 ms):
//
//	go test -run '^$' -bench HarborPullSigned -benchtime 2000x ./internal/registry/server/
func BenchmarkHarborPullSigned(b *testing.B) {
	ctx := context.Background()
	srv := harbortest.Start(b)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(k.Public())
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	img, err := random.Image(1024, 2)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range []struct {
		name string
		md   map[string]string
	}{{"off", map[string]string{"public": "true"}}, {"on", map[string]string{"public": "true", contenttrust.MetaCosign: "true"}}} {
		if _, err := srv.Core.Projects.Create(ctx, srv.AdminSubject(b), lproject.Create{Name: p.name, Metadata: p.md}); err != nil {
			b.Fatal(err)
		}
		if err := srv.Push(ctx, img, p.name+"/app", "v1", admin, adminPW); err != nil {
			b.Fatal(err)
		}
		repo, _ := name.NewRepository(srv.Host+"/"+p.name+"/app", name.Insecure)
		r := trust.NewRemote(repo, adminKeychain{}, nil)
		h, _ := img.Digest()
		raw, _ := img.RawManifest()
		mt, _ := img.MediaType()
		subj := trust.Subject{Descriptor: v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(raw))}, Name: repo.Name()}
		if _, err := trust.Sign(ctx, r, r, subj, trust.SignOptions{Format: trust.Cosign, Key: k}); err != nil {
			b.Fatal(err)
		}
	}
	if err := srv.Core.Trust.Put(ctx, srv.AdminSubject(b), lproject.Ref{Name: "on"}, contenttrust.Policy{CosignKeys: []contenttrust.CosignKey{{Name: "bench", PublicKey: pub}}}); err != nil {
		b.Fatal(err)
	}
	manifest := func(repo string) func() (time.Duration, error) {
		_, body, err := get(srv.URL+"/service/token?service=harbor-registry&scope=repository:"+repo+":pull", "", "")
		var tok struct{ Token string }
		json.Unmarshal(body, &tok)
		return func() (time.Duration, error) {
			if err != nil {
				return 0, err
			}
			req, _ := http.NewRequest("GET", srv.URL+"/v2/"+repo+"/manifests/v1", nil)
			req.Header.Set("Authorization", "Bearer "+tok.Token)
			req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json")
			t0 := time.Now()
			resp, err := benchHTTP.Do(req)
			if err != nil {
				return 0, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			d := time.Since(t0)
			if resp.StatusCode != 200 {
				return 0, fmt.Errorf("GET %s manifest: %d", repo, resp.StatusCode)
			}
			return d, nil
		}
	}
	on, off := manifest("on/app"), manifest("off/app")
	for _, f := range []func() (time.Duration, error){on, off} { // warm: the verdict is computed once
		if _, err := f(); err != nil {
			b.Fatal(err)
		}
	}
	latOn, latOff := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		for j := range 2 {
			policyOn := (i+j)%2 == 0 // alternate which goes first
			f, lat := off, &latOff
			if policyOn {
				f, lat = on, &latOn
			}
			d, err := f()
			if err != nil {
				b.Fatal(err)
			}
			*lat = append(*lat, d)
		}
	}
	b.StopTimer()
	slices.Sort(latOn)
	slices.Sort(latOff)
	p := func(l []time.Duration, q float64) float64 {
		return float64(l[int(q*float64(len(l)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(p(latOff, 0.5), "off-p50-ms")
	b.ReportMetric(p(latOn, 0.5), "on-p50-ms")
	b.ReportMetric(p(latOff, 0.9), "off-p90-ms")
	b.ReportMetric(p(latOn, 0.9), "on-p90-ms")
	b.ReportMetric(p(latOff, 0.99), "off-p99-ms")
	b.ReportMetric(p(latOn, 0.99), "on-p99-ms")
	b.ReportMetric(p(latOn, 0.99)-p(latOff, 0.99), "p99-delta-ms")
}
