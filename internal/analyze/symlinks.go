package analyze

import (
	"fmt"
	"strings"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
)

// Symbolic links in the merged filesystem.
//
// Each layer records its symlinks (path and target, as stored) in its path
// index. The merge resolves paths through them view by view, as the kernel
// resolves a path in the merged overlay of layers 0..k with the root of the
// image as "/" (openat2's RESOLVE_IN_ROOT): an absolute target starts again
// at the image's root, ".." never leaves it, and more than 40 links on the
// way is an error (ELOOP). A symlink of layer j is one in view k while no
// layer j+1..k hides its path, by the same rules as a file.
//
// Analyzers whose files are at fixed paths (analyzer.Anchored) also read
// files that may be those files reached through symlinked directories; the
// merge keeps such a result in the views where one of the analyzer's
// anchors resolves to a directory above the file, as the file the anchor
// names, and drops it otherwise.

// maxLinks is how many symlinks a path may go through, Linux's limit.
const maxLinks = 40

// resolver resolves paths in the views of a merger.
type resolver struct {
	m     *merger
	links map[string][]*linkRec // path → symlinks of the layers, lowest layer first
	memo  map[anchorView]resolution
	loops map[string]error // paths that end in a loop in the final view
}

type linkRec struct {
	layer  int
	target string
	end    int // the first layer that hides the link; -1 until needed
}

type anchorView struct {
	path string
	view int
}

type resolution struct {
	path string
	err  error
}

func newResolver(m *merger) *resolver {
	r := &resolver{m: m, links: map[string][]*linkRec{}, memo: map[anchorView]resolution{}, loops: map[string]error{}}
	for i, out := range m.outs {
		if out.index == nil {
			continue
		}
		for _, l := range out.index.links {
			r.links[l.Path] = append(r.links[l.Path], &linkRec{layer: i, target: l.Target, end: -1})
		}
	}
	return r
}

// symlinkAt returns the target of the symlink at p in view k, if p is one.
// Only the highest link at p at or below k can be visible: it hides the
// lower ones.
func (r *resolver) symlinkAt(p string, k int) (string, bool) {
	recs := r.links[p]
	for i := len(recs) - 1; i >= 0; i-- {
		rec := recs[i]
		if rec.layer > k {
			continue
		}
		if rec.end < 0 {
			rec.end = r.m.hiddenAt(p, rec.layer)
		}
		return rec.target, k < rec.end
	}
	return "", false
}

// resolve returns the path p leads to in view k, every symlink on the way
// followed, the last element included; "" is the root.
func (r *resolver) resolve(p string, k int) (string, error) {
	if len(r.links) == 0 {
		return p, nil
	}
	var done []string
	rest := strings.Split(p, "/")
	hops := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := c
		if len(done) > 0 {
			cur = strings.Join(done, "/") + "/" + c
		}
		t, ok := r.symlinkAt(cur, k)
		if !ok {
			done = append(done, c)
			continue
		}
		if hops++; hops > maxLinks {
			return "", fmt.Errorf("too many levels of symbolic links (at /%s)", cur)
		}
		if strings.HasPrefix(t, "/") {
			done = done[:0]
		}
		rest = append(strings.Split(t, "/"), rest...)
	}
	return strings.Join(done, "/"), nil
}

// resolved is resolve, memoized: anchors are resolved in many views.
func (r *resolver) resolved(p string, k int) (string, error) {
	key := anchorView{p, k}
	if res, ok := r.memo[key]; ok {
		return res.path, res.err
	}
	s, err := r.resolve(p, k)
	r.memo[key] = resolution{s, err}
	return s, err
}

// reachedAs returns the path under which a's anchors reach the file at p in
// view k, one that a wants, or "". The names tried are each anchor joined
// with each tail of p ("installed", "db/installed", ...): the symlinks on
// the way may be the anchor, a directory above or below it, or the file's
// own name, as long as the file keeps the name the analyzer wants.
func (m *merger) reachedAs(a analyzer.Analyzer, an analyzer.Anchored, p string, k int) string {
	for _, d := range an.Anchors() {
		for i := len(p); i > 0; {
			i = strings.LastIndexByte(p[:i], '/')
			name := d + "/" + p[i+1:]
			if name == p || !a.Wants(name, analyzer.FileInfo(name, 0, 0o644)) {
				continue
			}
			r, err := m.links.resolved(name, k)
			if err != nil && k == m.n-1 {
				m.links.loops[name] = err
			}
			if err == nil && r == p {
				return name
			}
		}
	}
	return ""
}

// reach replaces the results of files that an anchored analyzer does not
// want where they are by the results of the same files under the names its
// anchors reach them by, for the views that do; and leaves out the
// declarations (lockfiles, manifests) of an image scan.
func (m *merger) reach() {
	byName := map[string]analyzer.Analyzer{}
	for _, a := range m.o.analyzers {
		byName[a.Name()] = a
	}
	out := make([]*live, 0, len(m.lives))
	for _, lv := range m.lives {
		a := byName[lv.analyzer]
		if m.declaration(a, lv.r.Path) {
			continue
		}
		an, ok := a.(analyzer.Anchored)
		if !ok || a.Wants(lv.r.Path, analyzer.FileInfo(lv.r.Path, 0, 0o644)) {
			out = append(out, lv)
			continue
		}
		var cur *live
		for k := lv.start; k < lv.end; k++ {
			name := m.reachedAs(a, an, lv.r.Path, k)
			switch {
			case name == "":
			case cur != nil && cur.end == k && cur.r.Path == name:
				cur.end = k + 1
			default:
				cur = &live{layer: lv.layer, analyzer: lv.analyzer, r: retarget(lv.r, lv.r.Path, name), start: k, end: k + 1}
				out = append(out, cur)
			}
		}
	}
	m.lives = out
}

// declaration reports whether the file at p is a declaration that the
// merge leaves out: an image scan's lockfile or manifest.
func (m *merger) declaration(a analyzer.Analyzer, p string) bool {
	d, ok := a.(analyzer.Declarer)
	return ok && m.o.mode != ModeFS && d.Declares(p)
}

// keepWarning reports whether a warning of analyzer a is about a file the
// inventory uses: not about a declaration an image scan leaves out, nor
// about a file an anchored analyzer read in case a symlink reached it and
// none does in the final view.
func (m *merger) keepWarning(a analyzer.Analyzer, w Warning) bool {
	p, ok := strings.CutPrefix(w.Path, "/")
	if !ok {
		return true
	}
	if m.declaration(a, p) {
		return false
	}
	an, ok := a.(analyzer.Anchored)
	if !ok || m.n == 0 || a.Wants(p, analyzer.FileInfo(p, 0, 0o644)) {
		return true
	}
	return m.reachedAs(a, an, p, m.n-1) != ""
}

// anchorWarnings reports the anchors, and the paths below them tried for
// files, that cannot be resolved in the final view: symlink loops.
func (m *merger) anchorWarnings() []Warning {
	if m.n == 0 {
		return nil
	}
	var out []Warning
	seen := map[string]bool{}
	for _, a := range m.o.analyzers {
		an, ok := a.(analyzer.Anchored)
		if !ok {
			continue
		}
		for _, d := range an.Anchors() {
			if seen[d] {
				continue
			}
			seen[d] = true
			if _, err := m.links.resolved(d, m.n-1); err != nil {
				out = append(out, Warning{Layer: -1, Path: "/" + d, Analyzer: a.Name(), Message: err.Error()})
				continue
			}
			for name, err := range m.links.loops {
				if strings.HasPrefix(name, d+"/") && !seen[name] {
					seen[name] = true
					out = append(out, Warning{Layer: -1, Path: "/" + name, Analyzer: a.Name(), Message: err.Error()})
				}
			}
		}
	}
	return out
}
