// Package ruby finds RubyGems: installed gems, from the gemspecs RubyGems
// writes in specifications/ (and specifications/default/ for Ruby's own
// default gems), grouped by gem directory; and locked ones, from the GEM
// section of a Gemfile.lock (gems from git or a path are not registry gems
// and are left out).
//
// Installed gemspecs are Ruby code; they are read with patterns for the
// assignments RubyGems writes (s.name = "rake".freeze), never evaluated.
package ruby

import (
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

// Analyzer finds gems.
type Analyzer struct{}

// New returns the analyzer.
func New() Analyzer { return Analyzer{} }

func (Analyzer) Name() string { return "ruby" }
func (Analyzer) Version() int { return 1 }

const maxSize = 16 << 20

// Declares: Gemfile.lock declares; specifications are installed gems.
func (Analyzer) Declares(p string) bool { return path.Base(p) == "Gemfile.lock" }

func (Analyzer) Wants(p string, _ fs.FileInfo) bool {
	if path.Base(p) == "Gemfile.lock" {
		return true
	}
	if !strings.HasSuffix(p, ".gemspec") {
		return false
	}
	dir := path.Dir(p)
	if path.Base(dir) == "default" {
		dir = path.Dir(dir)
	}
	return path.Base(dir) == "specifications"
}

func (Analyzer) Analyze(_ context.Context, f *analyzer.File) (*analyzer.Result, error) {
	b, err := f.ReadAll(maxSize)
	if err != nil {
		return nil, err
	}
	if path.Base(f.Path) == "Gemfile.lock" {
		pkgs := ParseGemfileLock(b)
		if len(pkgs) == 0 {
			return nil, nil
		}
		return &analyzer.Result{Type: "bundler", Packages: pkgs}, nil
	}
	p, ok := ParseGemspec(b)
	if !ok {
		return nil, nil
	}
	dir := path.Dir(f.Path)
	if path.Base(dir) == "default" {
		dir = path.Dir(dir)
	}
	return &analyzer.Result{Type: "gemspec", Target: path.Dir(dir), Packages: []pkg.Package{p}}, nil
}

var (
	nameRe     = regexp.MustCompile(`(?m)^\s*\w+\.name\s*=\s*["']([^"']+)["']`)
	versionRe  = regexp.MustCompile(`(?m)^\s*\w+\.version\s*=\s*(?:Gem::Version\.new\(\s*)?["']([^"']+)["']`)
	licensesRe = regexp.MustCompile(`(?m)^\s*\w+\.licenses?\s*=\s*(.+)$`)
	quotedRe   = regexp.MustCompile(`["']([^"']+)["']`)
)

// ParseGemspec reads the name, version and licenses of a gemspec.
func ParseGemspec(b []byte) (pkg.Package, bool) {
	p := pkg.Package{Ecosystem: pkg.RubyGems}
	if m := nameRe.FindSubmatch(b); m != nil {
		p.Name = string(m[1])
	}
	if m := versionRe.FindSubmatch(b); m != nil {
		p.Version = string(m[1])
	}
	if m := licensesRe.FindSubmatch(b); m != nil {
		for _, q := range quotedRe.FindAllSubmatch(m[1], -1) {
			p.AddLicense(string(q[1]))
		}
	}
	return p, p.Name != "" && p.Version != ""
}

// ParseGemfileLock reads the gems of a Gemfile.lock's GEM sections: the
// lines "    name (version)" under "  specs:", a platform suffix
// ("1.13.10-x86_64-linux") dropped.
func ParseGemfileLock(b []byte) []pkg.Package {
	var out []pkg.Package
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	section, inSpecs := "", false
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case line == "":
			section, inSpecs = "", false
		case line[0] != ' ':
			section, inSpecs = line, false
		case line == "  specs:":
			inSpecs = true
		case section == "GEM" && inSpecs && strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     "):
			name, rest, ok := strings.Cut(strings.TrimSpace(line), " (")
			if !ok || !strings.HasSuffix(rest, ")") {
				continue
			}
			v := strings.TrimSuffix(rest, ")")
			v, _, _ = strings.Cut(v, "-")
			if name != "" && v != "" {
				out = append(out, pkg.Package{Name: name, Version: v, Ecosystem: pkg.RubyGems})
			}
		}
	}
	return out
}
