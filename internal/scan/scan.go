// Package scan puts the image analysis, the vulnerability database and the
// matcher together: an image (or an SBOM's package list) in, a
// report.Report out. Filtering and output are the report package's.
//
// Every finding carries the layer that introduced its package (diffID,
// digest and the history's created_by) and, when a later layer changed the
// package's record, that layer too. Layers are marked as belonging to the
// base image or added on top (BaseLayers). Packages that a lower layer
// installed and a higher layer removed are matched too and reported apart,
// for information.
package scan

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/match"
	"github.com/lading-dev/lading/internal/pkg"
	"github.com/lading-dev/lading/internal/report"
	"github.com/lading-dev/lading/internal/vulndb"
)

// Scanner scans inventories against a vulnerability database.
type Scanner struct {
	db        *vulndb.DB
	dbPath    string
	matcher   *match.Matcher
	log       *slog.Logger
	now       func() time.Time
	untriaged bool
}

// Option configures a Scanner.
type Option func(*Scanner)

// WithUntriaged reports findings whose status is under investigation (the
// distribution has not evaluated them: Ubuntu's needs-triage). Without it
// they are left out, as Trivy leaves them out; with it they are listed and
// still count in no total (report.Finding.Counted).
func WithUntriaged(b bool) Option { return func(s *Scanner) { s.untriaged = b } }

// New returns a scanner reading db (whose file is path, for the report).
func New(db *vulndb.DB, path string, log *slog.Logger, opts ...Option) *Scanner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scanner{db: db, dbPath: path, matcher: match.New(db, log), log: log, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ImageInfo is what the report says about the scanned image.
type ImageInfo struct {
	Name     string // as the user named it
	ID       string // config digest
	Digest   string // manifest digest
	RepoTags []string
	Platform string
	// BaseLayers is how many of the bottom layers are the base image's;
	// -1 to infer it from the history (see BaseLayers).
	BaseLayers int
}

// Image analyzes img (analyze options pass through) and scans it. It
// returns the inventory too, for outputs that list every package (SBOMs).
func (s *Scanner) Image(ctx context.Context, img v1.Image, info ImageInfo, opts ...analyze.Option) (*report.Report, *analyze.Inventory, error) {
	inv, err := analyze.Image(ctx, img, opts...)
	if err != nil {
		return nil, nil, err
	}
	if info.BaseLayers < 0 {
		if cf, err := img.ConfigFile(); err == nil {
			info.BaseLayers = BaseLayers(cf.History)
		} else {
			info.BaseLayers = 0
		}
	}
	if info.ID == "" {
		if id, err := img.ConfigName(); err == nil {
			info.ID = id.String()
		}
	}
	if info.Digest == "" {
		if d, err := img.Digest(); err == nil {
			info.Digest = d.String()
		}
	}
	typ := "container_image"
	if inv.Mode == analyze.ModeFS {
		typ = "filesystem"
	}
	r, err := s.Inventory(ctx, inv, typ, info)
	return r, inv, err
}

// Inventory scans an inventory that has already been made (from an image
// or read from an SBOM).
func (s *Scanner) Inventory(ctx context.Context, inv *analyze.Inventory, artifactType string, info ImageInfo) (*report.Report, error) {
	meta := s.db.Metadata()
	r := &report.Report{
		SchemaVersion: report.SchemaVersion,
		CreatedAt:     s.now().UTC().Truncate(time.Second),
		ArtifactName:  info.Name,
		ArtifactType:  artifactType,
		Metadata: report.Metadata{
			ImageID:  info.ID,
			Digest:   info.Digest,
			RepoTags: info.RepoTags,
			Platform: info.Platform,
		},
		Database: report.Database{Path: s.dbPath, BuiltAt: meta.BuiltAt},
		Results:  []report.Result{},
	}
	for _, src := range meta.Sources {
		r.Database.Sources = append(r.Database.Sources, src.Name)
	}
	for _, w := range inv.Warnings {
		r.Warnings = append(r.Warnings, w.String())
	}
	layers := make([]report.Layer, len(inv.Layers))
	for i, l := range inv.Layers {
		layers[i] = report.Layer{Index: l.Index, DiffID: l.DiffID, Digest: l.Digest, CreatedBy: l.CreatedBy, Base: i < info.BaseLayers}
		r.Metadata.DiffIDs = append(r.Metadata.DiffIDs, l.DiffID)
	}
	r.Metadata.Layers = layers
	ns := ""
	if inv.OS != nil {
		r.Metadata.OS = &report.OS{Family: inv.OS.ID, Name: inv.OS.VersionID}
		ns = vulndb.DistroNamespace(inv.OS.ID, cmp.Or(inv.OS.VersionID, inv.OS.Codename))
		if hasOSPackages(inv) {
			r.Metadata.OS.Unscanned = unscanned(meta, ns, strings.TrimSpace(inv.OS.ID+" "+cmp.Or(inv.OS.VersionID, inv.OS.Codename)))
		}
	}
	for _, t := range inv.Targets {
		r.Metadata.PackageSize += len(t.Packages)
		res, err := s.target(ctx, t.Path, t.Type, string(t.Class), t.Packages, inv.OS, ns, layers)
		if err != nil {
			return nil, err
		}
		if t.Class == analyze.ClassOS && r.Metadata.OS != nil {
			res.Unscanned = r.Metadata.OS.Unscanned
		}
		r.Results = append(r.Results, res)
	}
	// Removed packages: matched too, for information.
	for _, rm := range inv.Removed {
		p := rm.Package
		rp := report.RemovedPackage{PkgName: p.Name, Version: p.Version, Ecosystem: string(p.Ecosystem),
			PkgPURL: p.PURL, PkgPath: p.Location, RemovedIn: layerRef(rm.RemovedIn, layers), Vulnerabilities: []report.Finding{}}
		if p.Layer != nil {
			rp.InstalledIn = layerRef(p.Layer.Introduced, layers)
		}
		fs, err := s.findings(ctx, &p, ns, layers)
		if err != nil {
			return nil, err
		}
		rp.Vulnerabilities = append(rp.Vulnerabilities, fs...)
		r.Removed = append(r.Removed, rp)
	}
	r.Sort()
	return r, nil
}

// target matches the packages of one target.
func (s *Scanner) target(ctx context.Context, path, typ, class string, pkgs []pkg.Package, os *pkg.OS, distroNS string, layers []report.Layer) (report.Result, error) {
	res := report.Result{Target: path, Class: class, Type: typ, Packages: len(pkgs), Vulnerabilities: []report.Finding{}}
	if class == string(analyze.ClassOS) && os != nil {
		res.Target = osTarget(os)
		res.Type = os.ID
	}
	for i := range pkgs {
		fs, err := s.findings(ctx, &pkgs[i], distroNS, layers)
		if err != nil {
			return res, err
		}
		res.Vulnerabilities = append(res.Vulnerabilities, fs...)
	}
	return res, nil
}

// findings matches one package.
func (s *Scanner) findings(ctx context.Context, p *pkg.Package, distroNS string, layers []report.Layer) ([]report.Finding, error) {
	mp, ok := toMatch(p, distroNS)
	if !ok {
		return nil, nil
	}
	ms, err := s.matcher.Match(ctx, mp)
	if err != nil {
		return nil, fmt.Errorf("match %s %s: %w", p.Name, p.Version, err)
	}
	out := make([]report.Finding, 0, len(ms))
	for _, m := range ms {
		if m.Status == vulndb.StatusUnderInvestigation && !s.untriaged {
			continue
		}
		out = append(out, finding(p, m, layers))
	}
	return out, nil
}

// hasOSPackages reports whether the inventory has an OS package database.
func hasOSPackages(inv *analyze.Inventory) bool {
	for _, t := range inv.Targets {
		if t.Class == analyze.ClassOS {
			return true
		}
	}
	return false
}

// unscanned says, when the database has no advisories for the OS release
// ns, which releases of that distribution it covers; nil when it has some.
func unscanned(meta vulndb.Metadata, ns, target string) *report.Unscanned {
	if ns == "" || meta.Namespaces[ns] > 0 {
		return nil
	}
	distro, _, _ := strings.Cut(ns, ":")
	var covered []string
	for n := range meta.Namespaces {
		if d, _, _ := strings.Cut(n, ":"); d == distro && meta.Namespaces[n] > 0 {
			covered = append(covered, n)
		}
	}
	slices.SortFunc(covered, compareReleases)
	u := &report.Unscanned{Namespace: ns, Covered: covered}
	if len(covered) == 0 {
		u.Covered = []string{}
		u.Message = fmt.Sprintf("The vulnerability database has no advisories for %s (the image is %s); it covers no %s release. The OS packages were not checked.", ns, target, distro)
	} else {
		u.Message = fmt.Sprintf("The vulnerability database has no advisories for %s (the image is %s); it covers %s. The OS packages were not checked.", ns, target, strings.Join(covered, ", "))
	}
	return u
}

// compareReleases orders "alpine:3.9" before "alpine:3.10".
func compareReleases(a, b string) int {
	pa := strings.FieldsFunc(a, func(r rune) bool { return r == ':' || r == '.' })
	pb := strings.FieldsFunc(b, func(r rune) bool { return r == ':' || r == '.' })
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
			continue
		}
		if c := strings.Compare(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(pa), len(pb))
}

// osTarget is the header of the OS packages: "alpine 3.10.4 (alpine)".
func osTarget(os *pkg.OS) string {
	name := cmp.Or(os.VersionID, os.Codename)
	return strings.TrimSpace(os.ID+" "+name) + " (" + os.ID + ")"
}

// toMatch maps a package to what the matcher looks up: OS packages in the
// distribution release's namespace, language packages in their ecosystem.
func toMatch(p *pkg.Package, distroNS string) (match.Package, bool) {
	mp := match.Package{Name: p.Name, Version: p.Version}
	if p.Source != nil {
		mp.SourceName, mp.SourceVersion = p.Source.Name, p.Source.Version
	}
	if p.Ecosystem.IsOS() {
		if distroNS == "" {
			return mp, false // no OS, no feed to look in
		}
		mp.Namespace = distroNS
		return mp, true
	}
	mp.Namespace = vulndb.Namespace(string(p.Ecosystem))
	return mp, mp.Namespace != ""
}

// finding turns a match into a report finding with its layers.
func finding(p *pkg.Package, m match.Match, layers []report.Layer) report.Finding {
	f := report.Finding{
		VulnerabilityID:  m.VulnerabilityID,
		Aliases:          m.Aliases,
		PkgName:          p.Name,
		PkgPURL:          p.PURL,
		PkgPath:          p.Location,
		InstalledVersion: p.Version,
		FixedVersion:     strings.Join(m.FixedVersions, ", "),
		Status:           strings.ReplaceAll(m.Status.String(), " ", "_"),
		Severity:         severity(m.Severity.Rating),
		SeveritySource:   m.Severity.Source,
		SeverityFrom:     m.SeverityFrom,
		Title:            m.Title,
		Description:      m.Description,
		References:       m.References,
		PrimaryURL:       primaryURL(m),
		DataSource:       m.DataSource,
		SourceID:         m.SourceID,
		PublishedDate:    m.Published,
	}
	if p.Source != nil {
		f.SrcName, f.SrcVersion = p.Source.Name, p.Source.Version
	}
	if c := cvss(m.Severity); c != nil {
		f.CVSS = []report.CVSS{*c}
	}
	if p.Layer != nil {
		f.Layer = layerRef(p.Layer.Introduced, layers)
		if p.Layer.Changed.Index != p.Layer.Introduced.Index {
			f.ChangedIn = layerRef(p.Layer.Changed, layers)
		}
	}
	return f
}

func layerRef(l pkg.LayerRef, layers []report.Layer) *report.Layer {
	if l.Index >= 0 && l.Index < len(layers) {
		c := layers[l.Index]
		return &c
	}
	return &report.Layer{Index: l.Index, DiffID: l.DiffID}
}

// severity maps a database rating to the report's five levels.
func severity(r vulndb.Rating) string {
	switch r {
	case vulndb.RatingNegligible, vulndb.RatingLow:
		return report.Low
	case vulndb.RatingMedium:
		return report.Medium
	case vulndb.RatingHigh:
		return report.High
	case vulndb.RatingCritical:
		return report.Critical
	}
	return report.Unknown
}

func cvss(s vulndb.Severity) *report.CVSS {
	var v string
	switch s.Type {
	case vulndb.SeverityCVSSv2:
		v = "2.0"
	case vulndb.SeverityCVSSv3:
		v = "3.x"
		if strings.HasPrefix(s.Vector, "CVSS:3.0") {
			v = "3.0"
		} else if strings.HasPrefix(s.Vector, "CVSS:3.1") {
			v = "3.1"
		}
	case vulndb.SeverityCVSSv4:
		v = "4.0"
	default:
		return nil
	}
	return &report.CVSS{Source: s.Source, Version: v, Vector: s.Vector, Score: s.Score}
}

// primaryURL is the page people read about a vulnerability: NVD for CVEs,
// the ecosystems' databases for their own IDs, else its first reference.
func primaryURL(m match.Match) string {
	id := m.VulnerabilityID
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return "https://nvd.nist.gov/vuln/detail/" + id
	case strings.HasPrefix(id, "GHSA-"):
		return "https://github.com/advisories/" + id
	case strings.HasPrefix(id, "GO-"):
		return "https://pkg.go.dev/vuln/" + id
	case strings.HasPrefix(id, "RUSTSEC-"):
		return "https://rustsec.org/advisories/" + id
	case strings.HasPrefix(id, "PYSEC-"), strings.HasPrefix(id, "OSV-"):
		return "https://osv.dev/vulnerability/" + id
	}
	if len(m.References) > 0 {
		return m.References[0]
	}
	return ""
}

// BaseLayers infers how many bottom layers belong to the base image an
// image was built FROM, from its history: a base image's history ends with
// its CMD or ENTRYPOINT (an entry that adds no layer), so the last such
// entry before the image's own last entry marks where the base ends. It
// returns 0 when the history shows no such mark (an image built from
// scratch, or one without history).
func BaseLayers(history []v1.History) int {
	mark := -1
	for i, h := range history {
		if i == len(history)-1 {
			break // the image's own CMD does not end a base image
		}
		if h.EmptyLayer && isCmdOrEntrypoint(h.CreatedBy) {
			mark = i
		}
	}
	if mark < 0 {
		return 0
	}
	n := 0
	for _, h := range history[:mark] {
		if !h.EmptyLayer {
			n++
		}
	}
	return n
}

func isCmdOrEntrypoint(createdBy string) bool {
	s := strings.TrimSpace(createdBy)
	s = strings.TrimPrefix(s, "/bin/sh -c ")
	s = strings.TrimSpace(strings.TrimPrefix(s, "#(nop)"))
	return strings.HasPrefix(s, "CMD") || strings.HasPrefix(s, "ENTRYPOINT")
}
