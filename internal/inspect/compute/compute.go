// Package compute implements inspect.Analyzer by running lading's own
// analyzer over the blobs the registry stores (internal/analyze over a
// v1.Image built with image/content, every blob verified), and, when given
// a scanner, lading's vulnerability scanner over the result.
//
// It stands in until the registry stores scan results: analyses are
// computed on demand, at most Parallel at once (others wait), one per
// image however many ask together, and the last MaxCached are kept in
// memory (the per-layer cache, when given, keeps the expensive part on
// disk across restarts). A layer whose bytes do not match its digest
// fails the analysis with an error naming it, and a layer that cannot be
// read otherwise is a warning of an analysis that is then not remembered:
// either way the next view tries again.
package compute

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/cache"
	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/inspect"
	"github.com/lading-dev/lading/internal/report"
	"github.com/lading-dev/lading/internal/sbom"
	"github.com/lading-dev/lading/internal/scan"
)

// Option configures an Analyzer.
type Option func(*Analyzer)

// WithCache keeps per-layer results in c.
func WithCache(c *cache.Cache) Option { return func(a *Analyzer) { a.cache = c } }

// WithScanner also looks up vulnerabilities with s.
func WithScanner(s *scan.Scanner) Option { return func(a *Analyzer) { a.scanner = s } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(a *Analyzer) { a.log = l } }

// WithParallel sets how many analyses run at once (default 1).
func WithParallel(n int) Option {
	return func(a *Analyzer) { a.slots = make(chan struct{}, max(n, 1)) }
}

// MaxCached is how many analyses stay in memory.
const MaxCached = 64

// Analyzer computes analyses on demand.
type Analyzer struct {
	cache   *cache.Cache
	scanner *scan.Scanner
	log     *slog.Logger
	slots   chan struct{}

	mu      sync.Mutex
	done    map[string]*entry // by repository and digest
	order   []string          // least recently used first
	running map[string]*call
}

type entry struct {
	// partial is set when a whole layer could not be read: the analysis
	// is returned, with its warning, but not remembered (the next view
	// tries again).
	partial bool
	a       inspect.Analysis
	inv     *analyze.Inventory
	rep     *report.Report
	img     sbom.Image
}

type call struct {
	wait chan struct{}
	e    entry
	err  error
}

var _ inspect.Analyzer = (*Analyzer)(nil)

// New returns an Analyzer.
func New(opts ...Option) *Analyzer {
	a := &Analyzer{log: slog.New(slog.DiscardHandler), slots: make(chan struct{}, 1),
		done: map[string]*entry{}, running: map[string]*call{}}
	for _, o := range opts {
		o(a)
	}
	return a
}

// key names an analysis: blobs are per repository, the result per digest.
func key(repo, dgst string) string { return repo + "@" + dgst }

// Known implements inspect.Analyzer: the analyses in memory.
func (a *Analyzer) Known(_ context.Context, repo string, digests []string) (map[string]inspect.Summary, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]inspect.Summary{}
	for _, d := range digests {
		if e, ok := a.done[key(repo, d)]; ok {
			out[d] = inspect.SummaryOf(e.a)
		}
	}
	return out, nil
}

// Analyze implements inspect.Analyzer.
func (a *Analyzer) Analyze(ctx context.Context, t inspect.Target) (inspect.Analysis, error) {
	e, err := a.entry(ctx, t)
	return e.a, err
}

// SBOM implements inspect.Analyzer.
func (a *Analyzer) SBOM(ctx context.Context, t inspect.Target, format inspect.SBOMFormat, w io.Writer) error {
	e, err := a.entry(ctx, t)
	if err != nil {
		return err
	}
	switch format {
	case inspect.CycloneDX:
		return sbom.WriteCycloneDX(w, e.img, e.inv, e.rep, sbom.Options{})
	default:
		return sbom.WriteSPDX(w, e.img, e.inv, e.rep, sbom.Options{})
	}
}

func (a *Analyzer) entry(ctx context.Context, t inspect.Target) (entry, error) {
	k := key(t.Repository, t.Digest)
	a.mu.Lock()
	if e, ok := a.done[k]; ok {
		a.touch(k)
		a.mu.Unlock()
		return *e, nil
	}
	c, ok := a.running[k]
	if !ok {
		c = &call{wait: make(chan struct{})}
		a.running[k] = c
		// The computation outlives an impatient caller: the next one
		// finds it done.
		go a.run(context.WithoutCancel(ctx), k, t, c)
	}
	a.mu.Unlock()
	select {
	case <-c.wait:
		return c.e, c.err
	case <-ctx.Done():
		return entry{}, ctx.Err()
	}
}

func (a *Analyzer) run(ctx context.Context, k string, t inspect.Target, c *call) {
	a.slots <- struct{}{}
	start := time.Now()
	c.e, c.err = a.compute(ctx, t)
	<-a.slots
	a.mu.Lock()
	delete(a.running, k)
	if c.err == nil && !c.e.partial {
		e := c.e
		a.done[k] = &e
		a.touch(k)
		for len(a.order) > MaxCached {
			delete(a.done, a.order[0])
			a.order = a.order[1:]
		}
	}
	a.mu.Unlock()
	close(c.wait)
	if c.err != nil {
		a.log.Warn("analyzing an image failed", "repository", t.Repository, "digest", t.Digest, "error", c.err)
	} else {
		a.log.Info("analyzed an image", "repository", t.Repository, "digest", t.Digest,
			"packages", len(c.e.a.Packages), "vulnerabilities", len(c.e.a.Vulnerabilities), "seconds", time.Since(start).Seconds())
	}
}

// touch marks k as used last; a.mu is held.
func (a *Analyzer) touch(k string) {
	if i := slices.Index(a.order, k); i >= 0 {
		a.order = slices.Delete(a.order, i, i+1)
	}
	a.order = append(a.order, k)
}

// source opens the registry's blobs for image/content.
type source struct {
	ctx  context.Context
	t    inspect.Target
	name string
}

func (s source) OpenBlob(d v1.Descriptor) (io.ReadCloser, error) {
	return s.t.Content.Blob(s.ctx, s.t.Repository, d.Digest.String())
}

func (s source) Name() string { return s.name }

// Image returns the target as a v1.Image over the registry's blobs.
func Image(ctx context.Context, t inspect.Target) (v1.Image, error) {
	h, err := v1.NewHash(t.Digest)
	if err != nil {
		return nil, err
	}
	src := source{ctx: ctx, t: t, name: t.Repository}
	return content.ImageFromManifest(src, v1.Descriptor{Digest: h, Size: int64(len(t.Manifest))}, t.Manifest)
}

func (a *Analyzer) compute(ctx context.Context, t inspect.Target) (entry, error) {
	img, err := Image(ctx, t)
	if err != nil {
		return entry{}, err
	}
	name := t.Repository + "@" + t.Digest
	e := entry{img: sbom.Image{Name: name, Digest: t.Digest}}
	cf, err := img.ConfigFile()
	if err != nil {
		return entry{}, err
	}
	e.img.Platform = cf.OS + "/" + cf.Architecture
	if cf.Variant != "" {
		e.img.Platform += "/" + cf.Variant
	}
	if id, err := img.ConfigName(); err == nil {
		e.img.ID = id.String()
	}
	opts := []analyze.Option{analyze.WithLogger(a.log), analyze.WithName(name)}
	if a.cache != nil {
		opts = append(opts, analyze.WithCache(a.cache))
	}
	if a.scanner != nil {
		e.rep, e.inv, err = a.scanner.Image(ctx, img, scan.ImageInfo{Name: name, Digest: t.Digest, ID: e.img.ID, Platform: e.img.Platform, BaseLayers: -1}, opts...)
		if err != nil {
			return entry{}, err
		}
		e.a, e.partial = FromReport(e.inv, e.rep), partial(e.inv)
		return e, nil
	}
	if e.inv, err = analyze.Image(ctx, img, opts...); err != nil {
		return entry{}, err
	}
	e.a, e.partial = fromInventory(e.inv), partial(e.inv)
	e.a.BaseLayers = scan.BaseLayers(cf.History)
	return e, nil
}

// partial reports whether a whole layer could not be read.
func partial(inv *analyze.Inventory) bool {
	for _, w := range inv.Warnings {
		if w.Layer >= 0 && w.Path == "" {
			return true
		}
	}
	return false
}

// fromInventory turns an inventory into an analysis without findings.
func fromInventory(inv *analyze.Inventory) inspect.Analysis {
	var out inspect.Analysis
	if inv.OS != nil {
		out.OS = inv.OS.ID + " " + cmp.Or(inv.OS.VersionID, inv.OS.Codename)
	}
	for _, t := range inv.Targets {
		for _, p := range t.Packages {
			ip := inspect.Package{Name: p.Name, Version: p.Version, Type: t.Type, Path: p.Location, PURL: p.PURL,
				Licenses: p.Licenses, Layer: -1, ChangedIn: -1, RemovedIn: -1}
			if p.Layer != nil {
				ip.Layer = p.Layer.Introduced.Index
				if p.Layer.Changed.Index != p.Layer.Introduced.Index {
					ip.ChangedIn = p.Layer.Changed.Index
				}
			}
			out.Packages = append(out.Packages, ip)
		}
	}
	for _, r := range inv.Removed {
		ip := inspect.Package{Name: r.Name, Version: r.Version, Type: string(r.Ecosystem), Path: r.Location, PURL: r.PURL,
			Licenses: r.Licenses, Layer: -1, ChangedIn: -1, RemovedIn: r.RemovedIn.Index}
		if r.Layer != nil {
			ip.Layer = r.Layer.Introduced.Index
		}
		out.Removed = append(out.Removed, ip)
	}
	for _, w := range inv.Warnings {
		out.Warnings = append(out.Warnings, w.String())
	}
	return out
}

// FromReport turns an inventory and the scan report made from it into an
// analysis with findings, highest severity first.
func FromReport(inv *analyze.Inventory, r *report.Report) inspect.Analysis {
	out := fromInventory(inv)
	out.Scanned, out.ScannedAt = true, r.CreatedAt
	out.Database = fmt.Sprintf("built %s", r.Database.BuiltAt.UTC().Format(time.DateTime))
	for _, l := range r.Metadata.Layers {
		if l.Base {
			out.BaseLayers = max(out.BaseLayers, l.Index+1)
		}
	}
	for _, res := range r.Results {
		for _, f := range res.Vulnerabilities {
			v := inspect.Vulnerability{ID: f.VulnerabilityID, Aliases: f.Aliases, Severity: f.Severity, Package: f.PkgName,
				InstalledVersion: f.InstalledVersion, FixedVersion: f.FixedVersion, Status: f.Status, Title: f.Title,
				Description: f.Description, URL: f.PrimaryURL, Path: f.PkgPath, Layer: -1}
			if v.Path == "" && res.Class != "os-pkgs" {
				v.Path = res.Target
			}
			for _, c := range f.CVSS {
				v.Score = max(v.Score, c.Score)
			}
			if f.Layer != nil {
				v.Layer = f.Layer.Index
			}
			out.Vulnerabilities = append(out.Vulnerabilities, v)
		}
	}
	slices.SortStableFunc(out.Vulnerabilities, func(x, y inspect.Vulnerability) int {
		return cmp.Or(cmp.Compare(report.SeverityRank(y.Severity), report.SeverityRank(x.Severity)),
			cmp.Compare(y.Score, x.Score), cmp.Compare(x.ID, y.ID), cmp.Compare(x.Package, y.Package))
	})
	return out
}
