package analyze

import (
	"cmp"
	"reflect"
	"slices"
	"strings"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/analyze/osrelease"
	"github.com/lading-dev/lading/internal/pkg"
)

// live is a result of one layer at one path, and the views it counts in.
type live struct {
	layer    int
	analyzer string
	r        *analyzer.Result
	// The result counts in views start..end-1: start is its layer, or for
	// a file reached through a symlink the first view that reaches it; end
	// is the first layer that hides r.Path (or no longer reaches it), or n.
	start, end int
}

// span is a package record and the views it is visible in.
type span struct {
	layer, start, end int
	p                 *pkg.Package
}

type merger struct {
	outs   []*layerOutcome
	o      *options
	n      int
	lives  []*live
	byPath map[string][]*live // analyzer + "\x00" + path → lives, lowest layer first
	spans  map[pkg.Key][]span
	links  *resolver
}

func merge(outs []*layerOutcome, o *options) *Inventory {
	m := &merger{outs: outs, o: o, n: len(outs), byPath: make(map[string][]*live), spans: make(map[pkg.Key][]span)}
	m.links = newResolver(m)
	inv := &Inventory{Targets: []Target{}, Layers: make([]LayerInfo, 0, len(outs)), Mode: o.mode}
	for i, out := range outs {
		inv.Layers = append(inv.Layers, out.info)
		inv.Warnings = append(inv.Warnings, out.warnings...)
		for _, a := range o.analyzers {
			p := out.parts[a.Name()]
			if p == nil {
				continue
			}
			for _, w := range p.Warnings {
				if m.keepWarning(a, w) {
					inv.Warnings = append(inv.Warnings, w)
				}
			}
			for _, l := range p.Links {
				m.link(i, a.Name(), l)
			}
			for _, r := range p.Results {
				m.add(i, a.Name(), r)
			}
		}
	}
	m.reach()
	inv.Warnings = append(inv.Warnings, m.anchorWarnings()...)
	for _, lv := range m.lives {
		m.addSpans(lv)
	}
	var final []*live
	for _, lv := range m.lives {
		for _, w := range lv.r.Warnings {
			inv.Warnings = append(inv.Warnings, Warning{Layer: lv.layer, Path: "/" + lv.r.Path, Analyzer: lv.analyzer, Message: w})
		}
		if lv.end == m.n {
			final = append(final, lv)
		}
	}
	inv.OS = m.os(final)
	inv.Targets = m.targets(final, inv.OS)
	inv.Removed = m.removed(inv.OS, inv.Targets)
	slices.SortStableFunc(inv.Warnings, func(a, b Warning) int {
		return cmp.Or(cmp.Compare(a.Layer, b.Layer), cmp.Compare(a.Path, b.Path))
	})
	return inv
}

// hiddenAt returns the first layer above layer i that hides path p, or n.
func (m *merger) hiddenAt(p string, i int) int {
	c := chainOf(p)
	for j := i + 1; j < m.n; j++ {
		if x := m.outs[j].index; x != nil && x.hides(c) {
			return j
		}
	}
	return m.n
}

// add adds a result of layer i, and a copy of it for each other name of
// the same file (hard links): each name is a file of its own in the merged
// tree, visible or hidden on its own.
func (m *merger) add(i int, a string, r *analyzer.Result) {
	m.addOne(i, a, r)
	for _, alias := range r.Aliases {
		m.addOne(i, a, retarget(r, r.Path, alias))
	}
}

func (m *merger) addOne(i int, a string, r *analyzer.Result) {
	lv := &live{layer: i, analyzer: a, r: r, start: i, end: m.hiddenAt(r.Path, i)}
	m.lives = append(m.lives, lv)
	key := a + "\x00" + r.Path
	m.byPath[key] = append(m.byPath[key], lv)
}

// addSpans records the package records of lv.
func (m *merger) addSpans(lv *live) {
	r := lv.r
	for k := range r.Packages {
		p := &r.Packages[k]
		if p.Location == "" {
			p.Location = "/" + r.Path
		}
		pk := p.Key()
		m.spans[pk] = append(m.spans[pk], span{layer: lv.layer, start: lv.start, end: lv.end, p: p})
	}
}

// link gives hard link l of layer i the result its target has in the view
// below layer i, as a result of layer i.
func (m *merger) link(i int, a string, l link) {
	cands := m.byPath[a+"\x00"+l.Target]
	for k := len(cands) - 1; k >= 0; k-- {
		if lv := cands[k]; lv.layer < i && lv.end >= i {
			m.addOne(i, a, retarget(lv.r, l.Target, l.Path))
			return
		}
	}
}

// retarget copies r as the result of the same content at path to.
func retarget(r *analyzer.Result, from, to string) *analyzer.Result {
	c := *r
	c.Path, c.Aliases = to, nil
	if c.Target == "" || c.Target == from || c.Target == r.Path {
		c.Target = to
	}
	c.Packages = slices.Clone(r.Packages)
	for k := range c.Packages {
		p := &c.Packages[k]
		p.Licenses = slices.Clone(p.Licenses)
		if p.Location == "" {
			continue // the default: the new path
		}
		if rest, ok := strings.CutPrefix(p.Location, "/"+from); ok && (rest == "" || rest[0] == '!') {
			p.Location = "/" + to + rest
		}
	}
	if r.OS != nil {
		os := *r.OS
		c.OS = &os
	}
	return &c
}

func (m *merger) os(final []*live) *pkg.OS {
	var ev []pkg.OS
	for _, lv := range final {
		if lv.r.OS != nil {
			e := *lv.r.OS
			e.Source = "/" + lv.r.Path
			ev = append(ev, e)
		}
	}
	return osrelease.Resolve(ev)
}

func (m *merger) ref(i int) pkg.LayerRef {
	return pkg.LayerRef{Index: i, DiffID: m.outs[i].info.DiffID}
}

// recordAt returns the record of key visible in view k (the layers up to k
// stacked), or nil.
func (m *merger) recordAt(key pkg.Key, k int) *pkg.Package {
	var best *span
	for i, s := range m.spans[key] {
		if s.start <= k && k < s.end && (best == nil || s.layer > best.layer) {
			best = &m.spans[key][i]
		}
	}
	if best == nil {
		return nil
	}
	return best.p
}

// attribute says which layers introduced and last changed p, whose record
// is visible in view top.
func (m *merger) attribute(p *pkg.Package, top int) *pkg.Attribution {
	key := p.Key()
	changed := top
	for k := top - 1; k >= 0; k-- {
		r := m.recordAt(key, k)
		if r == nil || !sameRecord(r, p) {
			break
		}
		changed = k
	}
	introduced := changed
	for k := 0; k < changed; k++ {
		if r := m.recordAt(key, k); r != nil && r.Version == p.Version {
			introduced = k
			break
		}
	}
	return &pkg.Attribution{Introduced: m.ref(introduced), Changed: m.ref(changed)}
}

func sameRecord(a, b *pkg.Package) bool {
	x, y := *a, *b
	x.Layer, y.Layer, x.PURL, y.PURL = nil, nil, "", ""
	return reflect.DeepEqual(x, y)
}

func (m *merger) targets(final []*live, os *pkg.OS) []Target {
	// License facts of the final view, by analyzer and package name.
	facts := map[string]map[string][]string{}
	for _, lv := range final {
		for name, ls := range lv.r.Licenses {
			if facts[lv.analyzer] == nil {
				facts[lv.analyzer] = map[string][]string{}
			}
			facts[lv.analyzer][name] = ls
		}
	}
	type tkey struct{ typ, path string }
	groups := map[tkey]*Target{}
	var order []tkey
	for _, lv := range final {
		if len(lv.r.Packages) == 0 {
			continue
		}
		target := lv.r.Target
		if target == "" {
			target = lv.r.Path
		}
		k := tkey{lv.r.Type, "/" + target}
		t := groups[k]
		if t == nil {
			t = &Target{Path: k.path, Type: k.typ, Class: ClassLang}
			groups[k] = t
			order = append(order, k)
		}
		for _, src := range lv.r.Packages {
			p := src
			p.Licenses = slices.Clone(src.Licenses)
			p.Layer = m.attribute(&src, lv.layer)
			if len(p.Licenses) == 0 {
				f := facts[lv.analyzer]
				ls, ok := f[p.Name]
				if !ok && p.Source != nil {
					ls = f[p.Source.Name]
				}
				for _, l := range ls {
					p.AddLicense(l)
				}
			}
			p.PURL = pkg.PURL(&p, os)
			if p.Ecosystem.IsOS() {
				t.Class = ClassOS
			}
			t.Packages = append(t.Packages, p)
		}
	}
	out := make([]Target, 0, len(order))
	for _, k := range order {
		t := groups[k]
		slices.SortFunc(t.Packages, func(a, b pkg.Package) int { return pkg.Compare(&a, &b) })
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Target) int {
		return cmp.Or(
			cmp.Compare(classRank(a.Class), classRank(b.Class)),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Type, b.Type))
	})
	return out
}

func classRank(c Class) int {
	if c == ClassOS {
		return 0
	}
	return 1
}

// removed lists the packages that some view had and the final view has
// not, as last seen: not upgraded (no record of the same key is left), and
// not present in the final view from another file. For OS packages the
// place is the package database, wherever a symlink put it: one of the
// same name and architecture left anywhere means the package is still
// installed. For language packages, one of the same name and version left
// anywhere (Go's stdlib in another binary) means it is still there. A
// package removed from several places is listed once, with every place.
func (m *merger) removed(os *pkg.OS, targets []Target) []Removed {
	type id struct {
		eco                 pkg.Ecosystem
		name, version, arch string
	}
	identity := func(p *pkg.Package) id {
		if p.Ecosystem.IsOS() {
			return id{p.Ecosystem, p.Name, "", p.Arch}
		}
		return id{p.Ecosystem, p.Name, p.Version, ""}
	}
	present := map[id]bool{}
	for _, t := range targets {
		for i := range t.Packages {
			present[identity(&t.Packages[i])] = true
		}
	}
	var all []Removed
	for _, spans := range m.spans {
		var last *span
		for i, s := range spans {
			if s.end == m.n {
				last = nil
				break
			}
			if last == nil || s.end > last.end || s.end == last.end && s.layer > last.layer {
				last = &spans[i]
			}
		}
		if last == nil || present[identity(last.p)] {
			continue
		}
		p := *last.p
		p.Licenses = slices.Clone(p.Licenses)
		p.Layer = m.attribute(last.p, last.end-1)
		p.PURL = pkg.PURL(&p, os)
		all = append(all, Removed{Package: p, RemovedIn: m.ref(last.end)})
	}
	slices.SortFunc(all, func(a, b Removed) int {
		return cmp.Or(pkg.Compare(&a.Package, &b.Package), cmp.Compare(a.RemovedIn.Index, b.RemovedIn.Index))
	})
	var out []Removed
	at := map[id]int{}
	for _, r := range all {
		k := identity(&r.Package)
		k.version, k.arch = r.Version, r.Arch
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, r)
			continue
		}
		if len(out[i].Locations) == 0 {
			out[i].Locations = []string{out[i].Location}
		}
		if !slices.Contains(out[i].Locations, r.Location) {
			out[i].Locations = append(out[i].Locations, r.Location)
		}
	}
	return out
}
