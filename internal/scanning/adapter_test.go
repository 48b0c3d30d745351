package scanning_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/scan"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/scanner"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registry/server"
)

// The Pluggable Scanner API v1.2 as its specification writes it
// (goharbor/pluggable-scanner-spec): the MIME types a client sends and
// expects, spelled here rather than taken from package adapter, so that
// the test is a client written to the spec and not lading's own.
const (
	specMetadata     = "application/vnd.scanner.adapter.metadata+json; version=1.1"
	specScanRequest  = "application/vnd.scanner.adapter.scan.request+json; version=1.1"
	specScanResponse = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
	specVulnReport   = "application/vnd.security.vulnerability.report; version=1.1"
	specSBOMReport   = "application/vnd.security.sbom.report+json; version=1.0"
	specSPDX         = "application/spdx+json"
	specAPIKey       = "X-ScannerAdapter-API-Key"
)

// specClient calls a scanner adapter the way Harbor's scan job does.
type specClient struct {
	base   string // http://host/api/v1
	header string // the authorization header Harbor's registration sends
	value  string
}

func (c specClient) do(t *testing.T, method, path, accept, ctype string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if c.header != "" {
		req.Header.Set(c.header, c.value)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	// Harbor reads the 302 itself: it is "not ready yet", not a redirect.
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// report polls a scan's report until it is ready, as Harbor does: 302
// with Refresh-After while the scan runs.
func (c specClient) report(t *testing.T, id, accept, query string) []byte {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, b := c.do(t, http.MethodGet, "/scan/"+id+"/report"+query, accept, "", nil)
		switch resp.StatusCode {
		case http.StatusOK:
			if ct := resp.Header.Get("Content-Type"); ct != accept {
				t.Errorf("report Content-Type %q, want %q", ct, accept)
			}
			return b
		case http.StatusFound:
			secs, err := strconv.Atoi(resp.Header.Get("Refresh-After"))
			if err != nil || secs < 1 {
				t.Fatalf("302 with Refresh-After %q", resp.Header.Get("Refresh-After"))
			}
		default:
			t.Fatalf("report %s: %d %s", id, resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("report %s not ready after 3 minutes", id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scanRequest is a spec scan request for an image of registry reg.
func scanRequest(reg, authorization, repo, dgst string) []byte {
	b, _ := json.Marshal(map[string]any{
		"registry": map[string]string{"url": reg, "authorization": authorization},
		"artifact": map[string]string{"repository": repo, "digest": dgst, "mime_type": "application/vnd.oci.image.manifest.v1+json"},
		"enabled_capabilities": []map[string]any{
			{"type": "vulnerability", "produces_mime_types": []string{specVulnReport}},
			{"type": "sbom", "produces_mime_types": []string{specSBOMReport}, "parameters": map[string]any{"sbom_media_types": []string{specSPDX}}},
		},
	})
	return b
}

// TestScannerAdapterAPI plays Harbor's part against lading as a scanner:
// the image lives in another registry (a second lading serve, standing
// for Harbor's registry), the scan request names it with the basic
// credentials Harbor would hand over, and a client written to the
// specification asks for metadata, posts the scan, polls the report
// through 302s and reads the vulnerability and SBOM reports.
func TestScannerAdapterAPI(t *testing.T) {
	const apiKey = "adapter-secret"
	scannerSrv := start(t, corpusDB(t), harbortest.WithConfig(func(c *server.Config) {
		c.Scan.Adapter = server.ScanAdapterConfig{Auth: specAPIKey, Credential: apiKey}
	}))
	harbor := start(t, "")
	newProject(t, harbor, "team", nil)
	dgst := push(t, harbor, corpusImage(t, "alpine-3.20-app.oci.tar"), "team/app:1")

	base := scannerSrv.URL + "/api/v1"
	client := specClient{base: base, header: specAPIKey, value: apiKey}

	// Authentication: none, a wrong key, the key, a user of the registry.
	for _, tc := range []struct {
		name          string
		header, value string
		want          int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong API key", specAPIKey, "nope", http.StatusUnauthorized},
		{"API key", specAPIKey, apiKey, http.StatusOK},
		{"registry user", "Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+harbortest.AdminPassword)), http.StatusOK},
	} {
		c := specClient{base: base, header: tc.header, value: tc.value}
		resp, b := c.do(t, http.MethodGet, "/metadata", specMetadata, "", nil)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: metadata %d %s, want %d", tc.name, resp.StatusCode, b, tc.want)
		}
	}
	resp, b := client.do(t, http.MethodGet, "/metadata", specMetadata, "", nil)
	var md struct {
		Scanner      struct{ Name, Vendor, Version string }
		Capabilities []struct {
			Type              string   `json:"type"`
			ConsumesMimeTypes []string `json:"consumes_mime_types"`
			ProducesMimeTypes []string `json:"produces_mime_types"`
		} `json:"capabilities"`
	}
	if err := json.Unmarshal(b, &md); err != nil || md.Scanner.Name == "" {
		t.Fatalf("metadata: %v %s", err, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != specMetadata {
		t.Errorf("metadata Content-Type %q", ct)
	}
	produces := map[string]bool{}
	for _, c := range md.Capabilities {
		for _, m := range c.ProducesMimeTypes {
			produces[c.Type+" "+m] = true
		}
	}
	for _, want := range []string{"vulnerability " + specVulnReport, "sbom " + specSBOMReport} {
		if !produces[want] {
			t.Errorf("metadata does not produce %s: %s", want, b)
		}
	}

	// The scan.
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+harbortest.AdminPassword))
	resp, b = client.do(t, http.MethodPost, "/scan", specScanResponse, specScanRequest, scanRequest(harbor.URL, auth, "team/app", dgst))
	var accepted struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &accepted) != nil || accepted.ID == "" {
		t.Fatalf("POST /scan: %d %s", resp.StatusCode, b)
	}
	var rep report
	if err := json.Unmarshal(client.report(t, accepted.ID, specVulnReport, ""), &rep); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, v := range rep.Vulnerabilities {
		found[v.Package] = true
		if v.ID == "" || v.Version == "" || v.Severity == "" {
			t.Errorf("incomplete item: %+v", v)
		}
	}
	for _, want := range []string{"lodash", "handlebars", "morgan", "moment", "github.com/gin-gonic/gin", "golang.org/x/text"} {
		if !found[want] {
			t.Errorf("the report misses %s", want)
		}
	}
	if rep.Scanner.Name != md.Scanner.Name || rep.Severity == "" {
		t.Errorf("report scanner %+v severity %q", rep.Scanner, rep.Severity)
	}

	// The SBOM of the same scan, as SPDX.
	var sb struct {
		MediaType string `json:"media_type"`
		SBOM      struct {
			SPDXVersion string `json:"spdxVersion"`
			Packages    []struct {
				Name    string `json:"name"`
				Version string `json:"versionInfo"`
			} `json:"packages"`
		} `json:"sbom"`
	}
	if err := json.Unmarshal(client.report(t, accepted.ID, specSBOMReport, "?sbom_media_type="+url.QueryEscape(specSPDX)), &sb); err != nil {
		t.Fatal(err)
	}
	inSBOM := map[string]bool{}
	for _, p := range sb.SBOM.Packages {
		inSBOM[p.Name+"@"+p.Version] = true
	}
	if sb.MediaType != specSPDX || sb.SBOM.SPDXVersion == "" || !inSBOM["lodash@4.17.4"] || !inSBOM["musl@"+muslVersion(t, sb.SBOM.Packages)] {
		t.Errorf("SBOM report: media type %q, version %q, %d packages", sb.MediaType, sb.SBOM.SPDXVersion, len(sb.SBOM.Packages))
	}

	// Bad requests.
	resp, b = client.do(t, http.MethodGet, "/scan/"+accepted.ID+"/report", "application/vnd.example.unknown+json", "", nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown report type: %d %s, want 400", resp.StatusCode, b)
	}
	resp, b = client.do(t, http.MethodGet, "/scan/no-such-id/report", specVulnReport, "", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown scan id: %d %s, want 404", resp.StatusCode, b)
	}
	// The spec: 400 for JSON that does not parse, 422 for a request
	// with invalid fields.
	resp, b = client.do(t, http.MethodPost, "/scan", specScanResponse, specScanRequest, []byte(`{"registry":`))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed scan request: %d %s, want 400", resp.StatusCode, b)
	}
	resp, b = client.do(t, http.MethodPost, "/scan", specScanResponse, specScanRequest, []byte(`{"registry":{}}`))
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("incomplete scan request: %d %s, want 422", resp.StatusCode, b)
	}
	// Another caller (a user of the scanner's registry who did not ask
	// for the scan) may not read its report.
	newUser(t, scannerSrv, "mallory")
	other := specClient{base: base, header: "Authorization", value: "Basic " + base64.StdEncoding.EncodeToString([]byte("mallory:"+userPassword))}
	resp, b = other.do(t, http.MethodGet, "/scan/"+accepted.ID+"/report", specVulnReport, "", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("another caller's report: %d %s, want 403", resp.StatusCode, b)
	}
	// Wrong credentials for the image's registry: the scan ends in an
	// error the report says.
	resp, b = client.do(t, http.MethodPost, "/scan", specScanResponse, specScanRequest,
		scanRequest(harbor.URL, "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:wrong")), "team/app", dgst))
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &accepted) != nil {
		t.Fatalf("POST /scan: %d %s", resp.StatusCode, b)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, b = client.do(t, http.MethodGet, "/scan/"+accepted.ID+"/report", specVulnReport, "", nil)
		if resp.StatusCode != http.StatusFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a scan with wrong registry credentials never ended")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp.StatusCode != http.StatusInternalServerError && resp.StatusCode/100 != 4 {
		t.Errorf("report of a failed scan: %d %s", resp.StatusCode, b)
	}
}

// muslVersion is the version of musl an SBOM lists ("" if none).
func muslVersion(t *testing.T, pkgs []struct {
	Name    string `json:"name"`
	Version string `json:"versionInfo"`
}) string {
	for _, p := range pkgs {
		if p.Name == "musl" {
			return p.Version
		}
	}
	t.Error("the SBOM lists no musl (Alpine's libc)")
	return ""
}

const userPassword = "Passw0rd-of-a-user"

// newUser creates a user of srv.
func newUser(t *testing.T, srv *harbortest.Server, name string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"username": name, "password": userPassword, "email": name + "@example.com", "realname": name})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v2.0/users", bytes.NewReader(b))
	req.SetBasicAuth("admin", harbortest.AdminPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create user %s: %d", name, resp.StatusCode)
	}
}

// TestExternalScanner registers a second lading serve as the external
// scanner of a registry the Harbor way (/scanners, through Harbor's own
// client): create, ping, metadata, default, per project, a scan whose
// report comes from the other scanner, update and delete.
func TestExternalScanner(t *testing.T) {
	const apiKey = "external-secret"
	ctx := context.Background()
	ext := start(t, corpusDB(t), harbortest.WithConfig(func(c *server.Config) {
		c.Scan.Adapter = server.ScanAdapterConfig{Auth: specAPIKey, Credential: apiKey}
	}))
	srv := start(t, "")
	api := srv.Admin()

	u := strfmt.URI(ext.URL)
	reg := &models.ScannerRegistrationReq{Name: ptr("other-lading"), URL: &u, Auth: specAPIKey, AccessCredential: apiKey, Description: "a second lading"}
	// Ping before registering: a wrong key is refused.
	bad := *reg
	bad.AccessCredential = "wrong"
	if _, err := api.Scanner.PingScanner(ctx, scanner.NewPingScannerParams().WithSettings(&models.ScannerRegistrationSettings{
		Name: bad.Name, URL: bad.URL, Auth: bad.Auth, AccessCredential: bad.AccessCredential})); err == nil {
		t.Error("ping with a wrong API key succeeded")
	}
	if _, err := api.Scanner.PingScanner(ctx, scanner.NewPingScannerParams().WithSettings(&models.ScannerRegistrationSettings{
		Name: reg.Name, URL: reg.URL, Auth: reg.Auth, AccessCredential: reg.AccessCredential})); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if _, err := api.Scanner.CreateScanner(ctx, scanner.NewCreateScannerParams().WithRegistration(reg)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Scanner.CreateScanner(ctx, scanner.NewCreateScannerParams().WithRegistration(reg)); statusOf(err) != 409 {
		t.Errorf("a second registration with the same name: %v, want 409", err)
	}
	list, err := api.Scanner.ListScanners(ctx, scanner.NewListScannersParams())
	if err != nil {
		t.Fatal(err)
	}
	var id, builtin string
	for _, r := range list.Payload {
		if r.IsDefault != nil && *r.IsDefault {
			builtin = r.UUID
		}
		if r.Name == "other-lading" {
			id = r.UUID
			if (r.IsDefault != nil && *r.IsDefault) || r.URL.String() != ext.URL {
				t.Errorf("registration: %+v", r)
			}
		}
	}
	if id == "" {
		t.Fatalf("the registration is not listed: %+v", list.Payload)
	}
	md, err := api.Scanner.GetScannerMetadata(ctx, scanner.NewGetScannerMetadataParams().WithRegistrationID(id))
	if err != nil || md.Payload.Scanner == nil || md.Payload.Scanner.Name != "lading" {
		t.Fatalf("metadata: %v %+v", err, md)
	}

	// The project's scanner, then the system default.
	newProject(t, srv, "team", map[string]string{"auto_scan": "false"})
	if _, err := api.Project.SetScannerOfProject(ctx, project.NewSetScannerOfProjectParams().WithProjectNameOrID("team").
		WithPayload(&models.ProjectScanner{UUID: &id})); err != nil {
		t.Fatal(err)
	}
	ps, err := api.Project.GetScannerOfProject(ctx, project.NewGetScannerOfProjectParams().WithProjectNameOrID("team"))
	if err != nil || ps.Payload.UUID != id {
		t.Fatalf("scanner of project: %v %+v", err, ps)
	}
	dgst := push(t, srv, corpusImage(t, "alpine-3.20-app.oci.tar"), "team/app:1")
	if _, err := api.Scan.ScanArtifact(ctx, scan.NewScanArtifactParams().WithProjectName("team").WithRepositoryName("app").WithReference(dgst)); err != nil {
		t.Fatal(err)
	}
	s := waitScan(t, srv, "team", "app", "1")
	if s.ScanStatus != "Success" || s.Scanner == nil || s.Scanner.Name != "lading" || s.Summary == nil || s.Summary.Total == 0 {
		t.Fatalf("overview of the external scan: %+v", s)
	}
	r := vulnerabilities(t, srv, "team", "app", dgst)
	found := map[string]bool{}
	for _, v := range r.Vulnerabilities {
		found[v.Package] = true
	}
	if !found["lodash"] || !found["github.com/gin-gonic/gin"] || len(r.Vulnerabilities) != int(s.Summary.Total) {
		t.Errorf("the external scanner's report: %d vulnerabilities, overview %d", len(r.Vulnerabilities), s.Summary.Total)
	}
	if log := scanLog(t, srv, "team", "app", dgst); !containsText(log, "other-lading") {
		t.Errorf("scan log: %s", log)
	}

	if _, err := api.Scanner.SetScannerAsDefault(ctx, scanner.NewSetScannerAsDefaultParams().WithRegistrationID(id).
		WithPayload(&models.IsDefault{IsDefault: true})); err != nil {
		t.Fatal(err)
	}
	got, err := api.Scanner.GetScanner(ctx, scanner.NewGetScannerParams().WithRegistrationID(id))
	if err != nil || got.Payload.IsDefault == nil || !*got.Payload.IsDefault {
		t.Fatalf("default: %v %+v", err, got)
	}
	reg.Description = "renamed"
	reg.Name = ptr("other-lading-2")
	if _, err := api.Scanner.UpdateScanner(ctx, scanner.NewUpdateScannerParams().WithRegistrationID(id).WithRegistration(reg)); err != nil {
		t.Fatal(err)
	}
	if got, err = api.Scanner.GetScanner(ctx, scanner.NewGetScannerParams().WithRegistrationID(id)); err != nil || got.Payload.Name != "other-lading-2" || got.Payload.Description != "renamed" {
		t.Fatalf("after update: %v %+v", err, got)
	}
	// Only a system administrator manages scanners.
	newUser(t, srv, "dev")
	if _, err := srv.API("dev", userPassword).Scanner.ListScanners(ctx, scanner.NewListScannersParams()); statusOf(err) != 403 {
		t.Errorf("a user lists scanners: %v, want 403", err)
	}
	// The default cannot be deleted; once the built-in scanner is the
	// default again, it can.
	if _, err := api.Scanner.DeleteScanner(ctx, scanner.NewDeleteScannerParams().WithRegistrationID(id)); err == nil {
		t.Error("the default scanner was deleted")
	}
	if _, err := api.Scanner.SetScannerAsDefault(ctx, scanner.NewSetScannerAsDefaultParams().WithRegistrationID(builtin).
		WithPayload(&models.IsDefault{IsDefault: true})); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Scanner.DeleteScanner(ctx, scanner.NewDeleteScannerParams().WithRegistrationID(id)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Scanner.GetScanner(ctx, scanner.NewGetScannerParams().WithRegistrationID(id)); statusOf(err) != 404 {
		t.Errorf("after delete: %v, want 404", err)
	}
}

// TestExternalScannerAuth registers a second lading serve as the external
// scanner with each auth type Harbor's scanner registration offers
// (Basic, Bearer, X-ScannerAdapter-API-Key), the adapter configured with
// the credential. The adapter refuses no credentials and wrong ones (the
// header a client written to the spec sends), the registry's ping with a
// wrong credential fails, and with the right one a scan through the
// registration succeeds.
func TestExternalScannerAuth(t *testing.T) {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		auth, credential, wrong string
		// header and value that carry the credential (and the wrong one).
		header     string
		value, bad string
	}{
		{"Basic", "harbor:Adapter-Passw0rd", "harbor:wrong", "Authorization", basic("harbor:Adapter-Passw0rd"), basic("harbor:wrong")},
		{"Bearer", "adapter-bearer-token", "wrong-token", "Authorization", "Bearer adapter-bearer-token", "Bearer wrong-token"},
		{specAPIKey, "adapter-api-key", "wrong-key", specAPIKey, "adapter-api-key", "wrong-key"},
	} {
		t.Run(tc.auth, func(t *testing.T) {
			ctx := context.Background()
			ext := start(t, corpusDB(t), harbortest.WithConfig(func(c *server.Config) {
				c.Scan.Adapter = server.ScanAdapterConfig{Auth: tc.auth, Credential: tc.credential}
			}))
			base := ext.URL + "/api/v1"
			for _, c := range []struct {
				name          string
				header, value string
				want          int
			}{
				{"no credentials", "", "", http.StatusUnauthorized},
				{"wrong credential", tc.header, tc.bad, http.StatusUnauthorized},
				{"another auth type's header", map[bool]string{true: specAPIKey, false: "Authorization"}[tc.header == "Authorization"], tc.credential, http.StatusUnauthorized},
				{"the credential", tc.header, tc.value, http.StatusOK},
			} {
				resp, b := specClient{base: base, header: c.header, value: c.value}.do(t, http.MethodGet, "/metadata", specMetadata, "", nil)
				if resp.StatusCode != c.want {
					t.Errorf("%s: metadata %d %s, want %d", c.name, resp.StatusCode, b, c.want)
				}
			}

			srv := start(t, "")
			api := srv.Admin()
			u := strfmt.URI(ext.URL)
			settings := func(cred string) *models.ScannerRegistrationSettings {
				return &models.ScannerRegistrationSettings{Name: ptr("ext"), URL: &u, Auth: tc.auth, AccessCredential: cred}
			}
			if _, err := api.Scanner.PingScanner(ctx, scanner.NewPingScannerParams().WithSettings(settings(tc.wrong))); err == nil {
				t.Error("ping with a wrong credential succeeded")
			}
			if _, err := api.Scanner.PingScanner(ctx, scanner.NewPingScannerParams().WithSettings(settings(tc.credential))); err != nil {
				t.Fatalf("ping: %v", err)
			}
			created, err := api.Scanner.CreateScanner(ctx, scanner.NewCreateScannerParams().WithRegistration(
				&models.ScannerRegistrationReq{Name: ptr("ext"), URL: &u, Auth: tc.auth, AccessCredential: tc.credential}))
			if err != nil {
				t.Fatal(err)
			}
			id := created.Location[strings.LastIndex(created.Location, "/")+1:]
			newProject(t, srv, "team", map[string]string{"auto_scan": "false"})
			if _, err := api.Project.SetScannerOfProject(ctx, project.NewSetScannerOfProjectParams().WithProjectNameOrID("team").
				WithPayload(&models.ProjectScanner{UUID: &id})); err != nil {
				t.Fatal(err)
			}
			dgst := push(t, srv, corpusImage(t, "alpine-3.20-app.oci.tar"), "team/app:1")
			if _, err := api.Scan.ScanArtifact(ctx, scan.NewScanArtifactParams().WithProjectName("team").WithRepositoryName("app").WithReference(dgst)); err != nil {
				t.Fatal(err)
			}
			if s := waitScan(t, srv, "team", "app", "1"); s.ScanStatus != "Success" || s.Summary == nil || s.Summary.Total == 0 {
				t.Errorf("scan through the %s registration: %+v\n%s", tc.auth, s, scanLog(t, srv, "team", "app", dgst))
			}
		})
	}
}
