package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"

	"github.com/go-openapi/runtime"
	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/contenttrust"
)

// apiCall is a raw API request, for lading's endpoints the go-client does
// not know; a status of 300 or more is a *runtime.APIError.
func apiCall(e *env, user, pass, method, path, body string) error {
	req, _ := http.NewRequest(method, e.srv.URL+"/api/v2.0"+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return &runtime.APIError{Code: resp.StatusCode, OperationName: method + " " + path + ": " + string(b)}
	}
	return nil
}

// testPolicy is a trust policy naming one cosign key.
func testPolicy() string {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(k.Public())
	b, _ := json.Marshal(contenttrust.Policy{CosignKeys: []contenttrust.CosignKey{{Name: "release", PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}}})
	return string(b)
}

// withPolicy gives the project a trust policy, for a call that deletes it.
func withPolicy(t *testingT, e *env, p proj) any {
	if err := apiCall(e, "admin", "Harbor12345", "PUT", "/projects/"+p.name+"/trust-policy", testPolicy()); err != nil {
		t.Fatal(err)
	}
	return nil
}

// trustRows are the accessories' and the signature policies' endpoints.
func trustRows() []row {
	return []row{
		{name: "GET .../artifacts/{ref}/accessories", scope: inProject, res: access.Accessory, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Artifact.ListAccessories(ctx, artifact.NewListAccessoriesParams().WithProjectName(p.name).WithRepositoryName("app").WithReference("v1")))
		}},
		{name: "GET .../artifacts?with_accessory=true", scope: inProject, res: access.Artifact, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Artifact.ListArtifacts(ctx, artifact.NewListArtifactsParams().WithProjectName(p.name).WithRepositoryName("app").WithWithAccessory(ptr(true))))
		}},
		{name: "GET .../artifacts/{ref}/signatures", scope: inProject, res: access.Artifact, act: access.Read, call: func(_ context.Context, _ *v2.HarborAPI, e *env, p proj, s subject, _ any) error {
			return apiCall(e, s.user, s.password, "GET", "/projects/"+p.name+"/repositories/app/artifacts/v1/signatures", "")
		}},
		{name: "GET /projects/{p}/trust-policy", scope: inProject, res: access.Metadata, act: access.Read, call: func(_ context.Context, _ *v2.HarborAPI, e *env, p proj, s subject, _ any) error {
			return apiCall(e, s.user, s.password, "GET", "/projects/"+p.name+"/trust-policy", "")
		}},
		{name: "PUT /projects/{p}/trust-policy", scope: inProject, res: access.Metadata, act: access.Update, call: func(_ context.Context, _ *v2.HarborAPI, e *env, p proj, s subject, _ any) error {
			return apiCall(e, s.user, s.password, "PUT", "/projects/"+p.name+"/trust-policy", testPolicy())
		}},
		{name: "DELETE /projects/{p}/trust-policy", scope: inProject, res: access.Metadata, act: access.Delete, setup: withPolicy, call: func(_ context.Context, _ *v2.HarborAPI, e *env, p proj, s subject, _ any) error {
			return apiCall(e, s.user, s.password, "DELETE", "/projects/"+p.name+"/trust-policy", "")
		}},
	}
}
