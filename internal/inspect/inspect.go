// Package inspect tells what an artifact of the registry holds and what is
// inside it: its platform, configuration, history and layers (read from
// the stored manifest and config), the packages of an image with the layer
// that brought each, and its vulnerabilities with the same attribution.
// These are Harbor's artifact "additions" (build history, dependencies,
// vulnerabilities) and its SBOM; the web UI's artifact page shows them,
// and an API handler may serve them from the same functions.
//
// Like every service, it decides who may see what: the artifact itself
// needs read access to artifacts of its project (package artifact
// checks), its additions read access to artifact additions, the SBOM read
// access to SBOMs. Callers add no rule.
//
// What is inside an image comes from an Analyzer. Until the registry
// stores scan results, package inspect/compute implements it by running
// lading's own analyzer (and, given a vulnerability database, its
// scanner) over the stored blobs; the registry's scanning replaces it with
// stored results behind the same interface.
package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
)

// Content reads what the registry stores. Implementations verify what
// they return against its digest.
type Content interface {
	// Manifest returns the bytes of the manifest dgst of repo.
	Manifest(ctx context.Context, repo, dgst string) ([]byte, error)
	// Blob opens a blob linked into repo; the stream fails at EOF when
	// the bytes do not match dgst.
	Blob(ctx context.Context, repo, dgst string) (io.ReadCloser, error)
}

// Target is an image an Analyzer looks into.
type Target struct {
	// Repository is the repository's full name ("project/repo").
	Repository string
	// Digest is the image manifest's digest.
	Digest string
	// Manifest holds the manifest's bytes.
	Manifest []byte
	// Content reads its blobs.
	Content Content
}

// Analyzer tells what is inside images.
type Analyzer interface {
	// Analyze returns what is inside t, computing it when it is not
	// known yet (this may take seconds).
	Analyze(ctx context.Context, t Target) (Analysis, error)
	// Known returns, for each digest of repo whose analysis is at hand
	// without computing, its summary. Listings use it: they never wait
	// for an analysis.
	Known(ctx context.Context, repo string, digests []string) (map[string]Summary, error)
	// SBOM writes the image's SBOM in format (SPDX or CycloneDX JSON).
	SBOM(ctx context.Context, t Target, format SBOMFormat, w io.Writer) error
}

// SBOMFormat names an SBOM format.
type SBOMFormat string

// The SBOM formats.
const (
	SPDX      SBOMFormat = "spdx-json"
	CycloneDX SBOMFormat = "cyclonedx-json"
)

// Analysis is what is inside an image.
type Analysis struct {
	// OS is the operating system ("debian 12.15"), "" when none was
	// found.
	OS string
	// BaseLayers is how many bottom layers belong to the base image the
	// image was built FROM.
	BaseLayers int
	// Packages are every package of the merged filesystem.
	Packages []Package
	// Removed are packages a layer installed and a higher one removed.
	Removed []Package
	// Scanned is set when Vulnerabilities were looked up; the analysis
	// may hold packages without a scan.
	Scanned bool
	// ScannedAt and Database say when and against which data.
	ScannedAt time.Time
	Database  string
	// Vulnerabilities are the findings, highest severity first.
	Vulnerabilities []Vulnerability
	// Warnings are what could not be analyzed.
	Warnings []string
}

// Package is one package, with where it came from.
type Package struct {
	Name, Version string
	// Type is the package database or lockfile type (dpkg, apk, npm,
	// jar, gobinary, ...).
	Type string
	// Path is the file that declared the package.
	Path     string
	PURL     string
	Licenses []string
	// Layer is the index of the layer that brought the package, -1 when
	// unknown; ChangedIn, when not -1, the layer that last changed its
	// record.
	Layer, ChangedIn int
	// RemovedIn is, for a removed package, the layer that removed it.
	RemovedIn int
}

// Vulnerability is one vulnerability of one package.
type Vulnerability struct {
	ID       string
	Aliases  []string
	Severity string // UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL
	// Score is the highest CVSS score, 0 when none.
	Score            float64
	Package          string
	InstalledVersion string
	FixedVersion     string
	// Status is fixed, affected, will_not_fix, fix_deferred, end_of_life.
	Status      string
	Title       string
	Description string
	// URL is the advisory's primary link.
	URL  string
	Path string
	// Layer brought the package; -1 when unknown.
	Layer int
}

// Summary is what a listing shows of an analysis.
type Summary struct {
	Packages int
	Scanned  bool
	// Severities counts findings by severity.
	Severities map[string]int
}

// SummaryOf summarizes an analysis.
func SummaryOf(a Analysis) Summary {
	s := Summary{Packages: len(a.Packages), Scanned: a.Scanned}
	if a.Scanned {
		s.Severities = map[string]int{}
		for _, v := range a.Vulnerabilities {
			s.Severities[v.Severity]++
		}
	}
	return s
}

// Service answers for artifacts.
type Service struct {
	artifacts *artifact.Service
	projects  *project.Service
	content   Content
	analyzer  Analyzer
}

// New returns the service. analyzer may be nil: images then show no
// packages and no vulnerabilities.
func New(artifacts *artifact.Service, projects *project.Service, content Content, analyzer Analyzer) *Service {
	return &Service{artifacts: artifacts, projects: projects, content: content, analyzer: analyzer}
}

// CanAnalyze reports whether an analyzer is configured.
func (s *Service) CanAnalyze() bool { return s.analyzer != nil }

// Details is what an artifact holds, as its manifest and config say.
type Details struct {
	artifact.Artifact
	// Index is set for an image index; Children are its manifests.
	Index    bool
	Children []artifact.Reference
	// Image is set for an image manifest whose config could be read.
	Image *Image
}

// Image is an image's manifest and config.
type Image struct {
	Platform string // "linux/amd64", "linux/arm64/v8"
	Created  time.Time
	Author   string
	Config   v1.Config
	// History is the config's history, one entry per build step.
	History []Step
	// Layers are the manifest's layers, base first.
	Layers []Layer
}

// Step is one history entry.
type Step struct {
	Created   time.Time
	CreatedBy string
	Comment   string
	// Layer is the index of the layer the step added, -1 for a step
	// that added none.
	Layer int
}

// Layer is one layer of an image.
type Layer struct {
	Index     int
	Digest    string
	DiffID    string
	MediaType string
	Size      int64
	// CreatedBy is the history's command that made the layer.
	CreatedBy string
}

// Artifact returns what an artifact holds. reference is a digest or a
// tag. Reading needs read access to the artifact and to its additions.
func (s *Service) Artifact(ctx context.Context, who access.Subject, ref project.Ref, repo, reference string) (Details, error) {
	a, err := s.authorized(ctx, who, ref, repo, reference, access.ArtifactAddition)
	if err != nil {
		return Details{}, err
	}
	d := Details{Artifact: a}
	raw, err := s.content.Manifest(ctx, a.RepositoryName, a.Digest)
	if err != nil {
		return d, err
	}
	var m struct {
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return d, errdefs.Corrupt(fmt.Errorf("manifest %s: %v", a.Digest, err))
	}
	if len(m.Manifests) > 0 || strings.Contains(a.ManifestMediaType, "index") || strings.Contains(a.ManifestMediaType, "manifest.list") {
		d.Index, d.Children = true, a.References
		return d, nil
	}
	if a.Type != "IMAGE" {
		return d, nil
	}
	img, err := s.image(ctx, a.RepositoryName, raw)
	if err != nil {
		return d, err
	}
	d.Image = img
	return d, nil
}

// authorized looks the artifact up as who, then checks the extra resource.
func (s *Service) authorized(ctx context.Context, who access.Subject, ref project.Ref, repo, reference string, r access.Resource) (artifact.Artifact, error) {
	a, err := s.artifacts.Artifact(ctx, who, ref, repo, reference)
	if err != nil {
		return a, err
	}
	if _, err := s.projects.Authorize(ctx, who, ref, access.Read, r); err != nil {
		return a, err
	}
	return a, nil
}

// maxConfig bounds a config read whole.
const maxConfig = 64 << 20

func (s *Service) image(ctx context.Context, repo string, raw []byte) (*Image, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, errdefs.Corrupt(fmt.Errorf("manifest: %v", err))
	}
	if m.Config.Size > maxConfig {
		return nil, errdefs.TooLarge(fmt.Errorf("config %s: %d bytes", m.Config.Digest, m.Config.Size))
	}
	rc, err := s.content.Blob(ctx, repo, m.Config.Digest.String())
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	cb, err := io.ReadAll(io.LimitReader(rc, maxConfig+1))
	if err != nil {
		return nil, err
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(cb))
	if err != nil {
		return nil, errdefs.Corrupt(fmt.Errorf("config %s: %v", m.Config.Digest, err))
	}
	img := &Image{Created: cf.Created.Time, Author: cf.Author, Config: cf.Config, Platform: platform(cf)}
	layer := 0
	createdBy := map[int]string{}
	for _, h := range cf.History {
		st := Step{Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment, Layer: -1}
		if !h.EmptyLayer {
			st.Layer = layer
			createdBy[layer] = h.CreatedBy
			layer++
		}
		img.History = append(img.History, st)
	}
	for i, l := range m.Layers {
		li := Layer{Index: i, Digest: l.Digest.String(), MediaType: string(l.MediaType), Size: l.Size, CreatedBy: createdBy[i]}
		if i < len(cf.RootFS.DiffIDs) {
			li.DiffID = cf.RootFS.DiffIDs[i].String()
		}
		img.Layers = append(img.Layers, li)
	}
	return img, nil
}

func platform(cf *v1.ConfigFile) string {
	p := cf.OS + "/" + cf.Architecture
	if cf.Variant != "" {
		p += "/" + cf.Variant
	}
	return p
}

// ErrNoAnalyzer is returned by Analyze when no analyzer is configured.
var ErrNoAnalyzer = errdefs.Unsupported(errors.New("this registry has no analyzer: packages and vulnerabilities are not available"))

// Analyze returns what is inside an image artifact: its packages and, when
// the analyzer scans, its vulnerabilities. Reading needs read access to
// the artifact's additions.
func (s *Service) Analyze(ctx context.Context, who access.Subject, ref project.Ref, repo, reference string) (Analysis, error) {
	a, err := s.authorized(ctx, who, ref, repo, reference, access.ArtifactAddition)
	if err != nil {
		return Analysis{}, err
	}
	t, err := s.target(ctx, a)
	if err != nil {
		return Analysis{}, err
	}
	return s.analyzer.Analyze(ctx, t)
}

// Summaries returns the summaries at hand for a page of artifacts the
// caller has listed (with artifact.Service.Artifacts, which checked the
// listing); those whose additions the caller may not read are left out.
func (s *Service) Summaries(ctx context.Context, who access.Subject, ref project.Ref, arts []artifact.Artifact) (map[string]Summary, error) {
	if s.analyzer == nil || len(arts) == 0 {
		return nil, nil
	}
	if _, err := s.projects.Authorize(ctx, who, ref, access.Read, access.ArtifactAddition); err != nil {
		if errdefs.IsUnauthorized(err) || errors.Is(err, errdefs.ErrDenied) {
			return nil, nil
		}
		return nil, err
	}
	digests := make([]string, len(arts))
	for i, a := range arts {
		digests[i] = a.Digest
	}
	return s.analyzer.Known(ctx, arts[0].RepositoryName, digests)
}

// SBOM writes the SBOM of an image artifact in format to w; reading needs
// read access to SBOMs. It returns the artifact, for the file's name.
func (s *Service) SBOM(ctx context.Context, who access.Subject, ref project.Ref, repo, reference string, format SBOMFormat, w io.Writer) (artifact.Artifact, error) {
	a, err := s.authorized(ctx, who, ref, repo, reference, access.SBOM)
	if err != nil {
		return a, err
	}
	if format != SPDX && format != CycloneDX {
		return a, errdefs.InvalidArgument(fmt.Errorf("SBOM format %.40q: want %s or %s", format, SPDX, CycloneDX))
	}
	t, err := s.target(ctx, a)
	if err != nil {
		return a, err
	}
	return a, s.analyzer.SBOM(ctx, t, format, w)
}

// target reads what an analyzer needs of an image artifact.
func (s *Service) target(ctx context.Context, a artifact.Artifact) (Target, error) {
	if s.analyzer == nil {
		return Target{}, ErrNoAnalyzer
	}
	if a.Type != "IMAGE" || len(a.References) > 0 {
		return Target{}, errdefs.InvalidArgument(fmt.Errorf("%s@%s is not an image manifest: open one of its platforms", a.RepositoryName, a.Digest))
	}
	raw, err := s.content.Manifest(ctx, a.RepositoryName, a.Digest)
	if err != nil {
		return Target{}, err
	}
	return Target{Repository: a.RepositoryName, Digest: a.Digest, Manifest: raw, Content: s.content}, nil
}
