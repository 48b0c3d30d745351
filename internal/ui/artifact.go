package ui

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/inspect"
	"github.com/lading-dev/lading/internal/query"
)

// severities, highest first, as the UI orders and colours them.
var severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}

func sevRank(s string) int {
	if i := slices.Index(severities, s); i >= 0 {
		return i
	}
	return len(severities)
}

func (s *Server) artifactPage(c *call, t target) error {
	if s.svc.Inspect == nil {
		return errdefs.Unsupported(errors.New("artifact details are not available on this server"))
	}
	switch t.Panel {
	case "", "packages", "vulnerabilities":
	case "sbom":
		return s.sbom(c, t)
	default:
		return notFound("no panel " + t.Panel)
	}
	d, err := s.svc.Inspect.Artifact(c.ctx, c.who, t.ref(), t.Repo, t.Artifact)
	if err != nil {
		return err
	}
	tags, tagTotal, err := s.svc.Artifacts.Tags(c.ctx, c.who, t.ref(), t.Repo, d.Digest, query.Query{}, c.pageOf())
	if err != nil && !errors.Is(err, errdefs.ErrDenied) {
		return err
	}
	data := map[string]any{
		"T": t, "A": d, "Tags": tags, "TagPager": newPager(c.r.URL, c.pageOf(), tagTotal),
		"Perms": c.projectPerms(d.ProjectID), "Host": c.r.Host, "Panel": t.Panel,
		"Analyzer": s.svc.Inspect.CanAnalyze() && d.Image != nil,
	}
	if err := s.artifactExtras(c, t, d.Digest, d.ProjectID, data); err != nil {
		return err
	}
	if t.Panel != "" && d.Image != nil {
		an, err := s.svc.Inspect.Analyze(c.ctx, c.who, t.ref(), t.Repo, d.Digest)
		switch {
		case errors.Is(err, errdefs.ErrCorrupt):
			// The stored content is damaged: the page says which layer,
			// in the panel, and the rest of the page stays.
			data["AnalysisError"] = err.Error()
		case err != nil && !errors.Is(err, errdefs.ErrUnsupported):
			return err
		default:
			if !an.Scanned {
				if err := s.registryFindings(c, t, d.Digest, &an); err != nil {
					return err
				}
			}
			data["Analysis"] = analysisView(an, d.Image, c.r.URL.Query(), t.Panel)
		}
	}
	title := t.Project + "/" + t.Repo + "@" + shortDigest(d.Digest)
	return c.render(http.StatusOK, "artifact", title, data)
}

// artifactExtras adds to an artifact page its accessories, labels and
// scan.
func (s *Server) artifactExtras(c *call, t target, dgst string, projectID int64, data map[string]any) error {
	a, err := s.svc.Artifacts.Artifact(c.ctx, c.who, t.ref(), t.Repo, dgst, artifact.WithAccessories)
	if err != nil {
		return err
	}
	data["Accessories"], data["Signed"] = a.Accessories, signed(a)
	on, offered, err := s.artifactLabels(c, projectID, a.ID)
	if err != nil {
		return err
	}
	data["Labels"], data["LabelsOffered"], data["LabelsOn"] = on, offered, s.svc.Labels != nil
	scans, err := s.scanViews(c, []artifact.Artifact{a})
	if err != nil {
		return err
	}
	data["ScanOn"] = s.scans != nil
	if v, ok := scans[a.Digest]; ok {
		data["Scan"] = &v
	}
	return nil
}

// layerView is a layer as the analysis panels show it.
type layerView struct {
	inspect.Layer
	Base     bool
	Packages int
	Vulns    map[string]int
}

// analysis is the packages or vulnerabilities panel.
type analysis struct {
	inspect.Analysis
	Layers []layerView
	// Shown are the filtered, sorted rows of the open panel.
	Packages []inspect.Package
	Vulns    []inspect.Vulnerability
	// Counts by severity, for the bar; Filter is what the form holds.
	Counts map[string]int
	Filter map[string]string
	// Limited is set when the rows were cut at maxRows.
	Limited bool
}

// maxRows bounds the rows a panel renders; filters narrow the rest.
const maxRows = 2000

func analysisView(an inspect.Analysis, img *inspect.Image, v map[string][]string, panel string) *analysis {
	get := func(k string) string {
		if x := v[k]; len(x) > 0 {
			return strings.TrimSpace(x[0])
		}
		return ""
	}
	av := &analysis{Analysis: an, Counts: map[string]int{}, Filter: map[string]string{
		"q": get("q"), "severity": get("severity"), "layer": get("layer"), "sort": get("sort"), "fixed": get("fixed")}}
	for _, l := range img.Layers {
		av.Layers = append(av.Layers, layerView{Layer: l, Base: l.Index < an.BaseLayers, Vulns: map[string]int{}})
	}
	inLayer := func(i int) *layerView {
		if i >= 0 && i < len(av.Layers) {
			return &av.Layers[i]
		}
		return nil
	}
	for _, p := range an.Packages {
		if l := inLayer(p.Layer); l != nil {
			l.Packages++
		}
	}
	for _, f := range an.Vulnerabilities {
		av.Counts[f.Severity]++
		if l := inLayer(f.Layer); l != nil {
			l.Vulns[f.Severity]++
		}
	}
	text := strings.ToLower(av.Filter["q"])
	layer, layerErr := strconv.Atoi(av.Filter["layer"])
	match := func(l int, fields ...string) bool {
		if layerErr == nil && l != layer {
			return false
		}
		if av.Filter["layer"] == "base" && (l < 0 || l >= an.BaseLayers) || av.Filter["layer"] == "own" && l < an.BaseLayers {
			return false
		}
		if text == "" {
			return true
		}
		for _, f := range fields {
			if strings.Contains(strings.ToLower(f), text) {
				return true
			}
		}
		return false
	}
	switch panel {
	case "packages":
		for _, p := range an.Packages {
			if match(p.Layer, p.Name, p.Version, p.Type, p.Path) {
				av.Packages = append(av.Packages, p)
			}
		}
		sortPackages(av.Packages, av.Filter["sort"])
		if len(av.Packages) > maxRows {
			av.Packages, av.Limited = av.Packages[:maxRows], true
		}
	case "vulnerabilities":
		sev := strings.ToUpper(av.Filter["severity"])
		for _, f := range an.Vulnerabilities {
			if sev != "" && f.Severity != sev || av.Filter["fixed"] == "yes" && f.FixedVersion == "" {
				continue
			}
			if match(f.Layer, f.ID, f.Package, f.Title, f.InstalledVersion) {
				av.Vulns = append(av.Vulns, f)
			}
		}
		sortVulns(av.Vulns, av.Filter["sort"])
		if len(av.Vulns) > maxRows {
			av.Vulns, av.Limited = av.Vulns[:maxRows], true
		}
	}
	return av
}

func sortPackages(ps []inspect.Package, by string) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		switch by {
		case "layer":
			if a.Layer != b.Layer {
				return a.Layer < b.Layer
			}
		case "type":
			if a.Type != b.Type {
				return a.Type < b.Type
			}
		}
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version)) < 0
	})
}

func sortVulns(vs []inspect.Vulnerability, by string) {
	slices.SortStableFunc(vs, func(a, b inspect.Vulnerability) int {
		switch by {
		case "package":
			return cmp.Or(cmp.Compare(a.Package, b.Package), cmp.Compare(sevRank(a.Severity), sevRank(b.Severity)))
		case "id":
			return cmp.Compare(a.ID, b.ID)
		case "layer":
			return cmp.Or(cmp.Compare(a.Layer, b.Layer), cmp.Compare(sevRank(a.Severity), sevRank(b.Severity)))
		}
		return cmp.Or(cmp.Compare(sevRank(a.Severity), sevRank(b.Severity)), cmp.Compare(b.Score, a.Score), cmp.Compare(a.ID, b.ID))
	})
}

// sbom sends the image's SBOM as a download.
func (s *Server) sbom(c *call, t target) error {
	format := inspect.SBOMFormat(c.r.URL.Query().Get("format"))
	if format == "" {
		format = inspect.SPDX
	}
	var buf strings.Builder
	a, err := s.svc.Inspect.SBOM(c.ctx, c.who, t.ref(), t.Repo, t.Artifact, format, &buf)
	if err != nil {
		return err
	}
	name := strings.ReplaceAll(a.RepositoryName, "/", "_") + "_" + strings.ReplaceAll(shortDigest(a.Digest), ":", "-") + "." + string(format) + ".json"
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	_, err = c.w.Write([]byte(buf.String()))
	return err
}
