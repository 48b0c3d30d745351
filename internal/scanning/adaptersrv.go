package scanning

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/outbound"
	"github.com/lading-dev/lading/internal/scanning/adapter"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/sqldb"
)

// lading as a scanner: the Pluggable Scanner API served on the registry's
// own address (/api/v1), so that a Harbor (or another lading) registers
// lading as its scanner. A scan request names a registry and the
// Authorization to pull from it; the image is pulled through the
// outbound policy (layers already analyzed, by blob digest, are not read
// again), analyzed, and its reports are made when asked: vulnerabilities
// (Harbor's 1.0 and 1.1 formats, or lading's own JSON as the raw type) and
// SBOMs (SPDX, CycloneDX).
//
// Callers authenticate as for Harbor's API (a user or a robot with basic
// credentials) or with the credential configured for the adapter
// (scan.adapter: Basic, Bearer or X-ScannerAdapter-API-Key, as Harbor's
// registrations send them). A scan's reports are for the caller who asked
// for it (and system administrators): another caller gets 403.

type adapterBackend struct{ s *Service }

type callerKey struct{}

// caller is who calls the adapter API.
type caller struct {
	name  string
	admin bool
}

func callerOf(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

func (b *adapterBackend) Authenticate(r *http.Request) (context.Context, error) {
	o := b.s.opt
	ctx := r.Context()
	if o.AdapterAuth != "" {
		var got, want string
		switch o.AdapterAuth {
		case adapter.AuthAPIKey:
			got, want = r.Header.Get(adapter.AuthAPIKey), o.AdapterCredential
		case adapter.AuthBearer:
			got, want = r.Header.Get("Authorization"), "Bearer "+o.AdapterCredential
		case adapter.AuthBasic:
			got, want = r.Header.Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte(o.AdapterCredential))
		}
		if got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
			return context.WithValue(ctx, callerKey{}, caller{name: "adapter-client"}), nil
		}
	}
	if user, pass, ok := r.BasicAuth(); ok {
		who, err := b.s.d.Identity.Login(ctx, user, pass, r.RemoteAddr, false)
		if err != nil {
			return nil, err
		}
		return context.WithValue(ctx, callerKey{}, caller{name: who.Kind.String() + ":" + who.Name, admin: who.SysAdmin && who.Kind == access.KindUser}), nil
	}
	return nil, errdefs.Unauthorized(errors.New("the scanner adapter API needs credentials: a user or robot of this registry (basic), or the adapter's own (scan.adapter)"))
}

func (b *adapterBackend) Metadata(context.Context) (adapter.Metadata, error) {
	return b.s.builtinMetadata(), nil
}

func (b *adapterBackend) Accept(ctx context.Context, req adapter.ScanRequest) (string, error) {
	s := b.s
	if req.Artifact.MimeType != "" && !scannable(adapter.Canonical(req.Artifact.MimeType), "", "") {
		return "", errdefs.Unsupported(fmt.Errorf("artifact type %s: lading scans image manifests (%s, %s)", req.Artifact.MimeType, adapter.MimeOCIManifest, adapter.MimeDockerManifest))
	}
	if _, err := s.d.Outbound.CheckURL(req.Registry.URL); err != nil {
		return "", err
	}
	if _, err := name.NewRepository(req.Artifact.Repository); err != nil {
		return "", errdefs.InvalidArgument(fmt.Errorf("artifact.repository: %v", err))
	}
	if _, err := name.NewDigest("example.com/x@" + req.Artifact.Digest); err != nil {
		return "", errdefs.InvalidArgument(fmt.Errorf("artifact.digest: %v", err))
	}
	auth := req.Registry.Authorization
	req.Registry.Authorization = ""
	body, _ := json.Marshal(req)
	id := newUUID()
	now := sqldb.Nanos(s.d.DB.Now())
	err := s.d.DB.Tx(ctx, "adapter scan", func(tx *sqldb.Tx) error {
		job, _, err := s.d.Jobs.EnqueueTx(ctx, tx, jobs.Request{Kind: KindAdapter, Args: adapterArgs{ID: id}, Key: "adapter:" + id})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO adapter_scans (id, caller, request, registry_auth, status, error, job_id, created, updated) VALUES (?, ?, ?, ?, ?, '', ?, ?, ?)`,
			id, callerOf(ctx).name, string(body), auth, scanapi.StatusPending, job, now, now)
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

type adapterScan struct {
	id, caller, auth, status, reason string
	job                              int64
	req                              adapter.ScanRequest
	created, updated                 time.Time
}

func (s *Service) adapterScan(ctx context.Context, id string) (adapterScan, error) {
	var a adapterScan
	var body string
	var created, updated int64
	err := s.d.DB.QueryRow(ctx, `SELECT id, caller, request, registry_auth, status, error, job_id, created, updated FROM adapter_scans WHERE id = ?`, id).
		Scan(&a.id, &a.caller, &body, &a.auth, &a.status, &a.reason, &a.job, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return a, errdefs.NotFound(fmt.Errorf("scan request %s not found", id))
	}
	if err != nil {
		return a, s.d.DB.Wrap("scan request", err)
	}
	json.Unmarshal([]byte(body), &a.req)
	a.created, a.updated = sqldb.Time(created), sqldb.Time(updated)
	return a, nil
}

func (b *adapterBackend) Report(ctx context.Context, id, mime, sbomType string) ([]byte, error) {
	s := b.s
	a, err := s.adapterScan(ctx, id)
	if err != nil {
		return nil, err
	}
	if c := callerOf(ctx); c.name != a.caller && !c.admin {
		return nil, errdefs.Denied(fmt.Errorf("scan request %s was made by another caller", id))
	}
	switch a.status {
	case scanapi.StatusPending, scanapi.StatusRunning:
		if i, err := s.d.Jobs.Get(ctx, a.job); err == nil && jobs.Finished(i.State) && i.State != jobs.Success {
			return nil, &adapter.Failed{Reason: i.Error}
		}
		return nil, &adapter.NotReady{RetryAfter: 2 * time.Second}
	case scanapi.StatusError:
		return nil, &adapter.Failed{Reason: a.reason}
	}
	b2, err := s.adapterInventoryBytes(ctx, id)
	if err != nil {
		return nil, err
	}
	var inv analyze.Inventory
	if err := unpack(b2, &inv); err != nil {
		return nil, err
	}
	art := a.req.Artifact
	switch mime {
	case adapter.MimeSBOMReport:
		doc, err := s.writeSBOM(&inv, art.Repository+"@"+art.Digest, art.Digest, sbomType, a.updated)
		if err != nil {
			return nil, err
		}
		return json.Marshal(adapter.SBOMReport{GeneratedAt: a.updated.UTC(), Artifact: art, Scanner: s.scanner(), MediaType: sbomType, SBOM: doc})
	}
	h, err := s.keeper.acquire()
	if err != nil {
		return nil, err
	}
	defer h.release()
	rep, err := scanReportOf(ctx, s, h, &inv, art)
	if err != nil {
		return nil, err
	}
	if mime == adapter.MimeVulnReportRaw {
		return json.Marshal(rep)
	}
	out := adapter.VulnerabilityReport{GeneratedAt: a.updated.UTC(), Artifact: art, Scanner: s.scanner(), Vulnerabilities: harborItems(rep, mime)}
	if out.Vulnerabilities == nil {
		out.Vulnerabilities = []adapter.VulnerabilityItem{}
	}
	sev := 0
	for _, it := range out.Vulnerabilities {
		sev = max(sev, adapter.SeverityRank(it.Severity))
	}
	out.Severity = rankName(sev)
	return json.Marshal(out)
}

func (s *Service) adapterInventoryBytes(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := s.d.DB.QueryRow(ctx, `SELECT inventory FROM adapter_scans WHERE id = ?`, id).Scan(&b)
	return b, s.d.DB.Wrap("scan request", err)
}

type adapterArgs struct {
	ID string `json:"id"`
}

// runAdapterScan pulls and analyzes the image a scan request names.
func (s *Service) runAdapterScan(ctx context.Context, j *jobs.Job, args adapterArgs) error {
	a, err := s.adapterScan(ctx, args.ID)
	if err != nil {
		return jobs.Permanent(err)
	}
	if a.status != scanapi.StatusPending && a.status != scanapi.StatusRunning {
		return nil
	}
	s.d.DB.Exec(ctx, `UPDATE adapter_scans SET status = ?, updated = ? WHERE id = ?`, scanapi.StatusRunning, sqldb.Nanos(s.d.DB.Now()), a.id)
	inv, err := s.pullAndAnalyze(ctx, j, a)
	ctx = context.WithoutCancel(ctx)
	now := sqldb.Nanos(s.d.DB.Now())
	if err != nil {
		if errdefs.IsUnavailable(err) && j.Attempt < j.MaxAttempts {
			j.Log.Warn("scan failed; it will be tried again", "error", err)
			return err
		}
		j.Log.Error("scan failed", "error", err)
		s.d.DB.Exec(ctx, `UPDATE adapter_scans SET status = ?, error = ?, registry_auth = '', updated = ? WHERE id = ?`, scanapi.StatusError, err.Error(), now, a.id)
		return jobs.Permanent(err)
	}
	b, err := pack(inv)
	if err != nil {
		return err
	}
	_, err = s.d.DB.Exec(ctx, `UPDATE adapter_scans SET status = ?, inventory = ?, registry_auth = '', updated = ? WHERE id = ?`, scanapi.StatusSuccess, b, now, a.id)
	return s.d.DB.Wrap("scan request", err)
}

// pullAndAnalyze reads the image from the registry the request names.
func (s *Service) pullAndAnalyze(ctx context.Context, j *jobs.Job, a adapterScan) (*analyze.Inventory, error) {
	u, err := url.Parse(a.req.Registry.URL)
	if err != nil {
		return nil, errdefs.InvalidArgument(err)
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, opts...)
	if err != nil {
		return nil, errdefs.InvalidArgument(err)
	}
	ref := reg.Repo(a.req.Artifact.Repository).Digest(a.req.Artifact.Digest)
	auth := authn.Anonymous
	if scheme, cred, ok := strings.Cut(a.auth, " "); ok {
		switch strings.ToLower(scheme) {
		case "basic":
			raw, err := base64.StdEncoding.DecodeString(cred)
			user, pass, ok := strings.Cut(string(raw), ":")
			if err != nil || !ok {
				return nil, errdefs.InvalidArgument(errors.New("registry.authorization: malformed basic credentials"))
			}
			auth = &authn.Basic{Username: user, Password: pass}
		case "bearer":
			auth = authn.FromConfig(authn.AuthConfig{RegistryToken: cred})
		}
	}
	client := s.d.Outbound.Client(outbound.ClientOptions{Timeout: s.opt.Timeout})
	j.Log.Info("pulling " + ref.String())
	img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(client.Transport))
	if err != nil {
		return nil, classifyRemote(err)
	}
	inv, writes, err := s.analyzeImage(ctx, img, ref.String(), j.Log)
	if err != nil {
		return nil, err
	}
	writes.flush(ctx, j.Log)
	return inv, nil
}

// classifyRemote classes a registry client's error.
func classifyRemote(err error) error {
	var te *transport.Error
	var ne net.Error
	switch {
	case errors.Is(err, errdefs.ErrDenied):
		return err
	case errors.As(err, &te):
		switch {
		case te.StatusCode == http.StatusUnauthorized:
			return errdefs.Unauthorized(err)
		case te.StatusCode == http.StatusForbidden:
			return errdefs.Denied(err)
		case te.StatusCode == http.StatusNotFound:
			return errdefs.NotFound(err)
		case te.StatusCode >= 500 || te.StatusCode == http.StatusTooManyRequests:
			return errdefs.Unavailable(err)
		}
	case errors.As(err, &ne):
		return errdefs.Unavailable(err)
	}
	return err
}
