// Package golang finds Go modules: those compiled into Go binaries, read
// with debug/buildinfo (the main module when it has a version, every
// dependency, replacements applied, and the toolchain as the module
// "stdlib"), and those a go.mod requires (replacements applied; go.mod files
// of the module cache and of vendor directories are left out).
//
// Binaries are looked for among executable files: a file whose first bytes
// are not an ELF, Mach-O or PE header is passed over without being buffered.
package golang

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"io/fs"
	"path"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

// Analyzer finds Go modules.
type Analyzer struct{}

// New returns the analyzer.
func New() Analyzer { return Analyzer{} }

func (Analyzer) Name() string { return "golang" }
func (Analyzer) Version() int { return 1 }

// Size limits.
const (
	MaxBinary = 1 << 30
	maxGoMod  = 4 << 20
	minBinary = 1 << 10
)

// Declares: go.mod declares requirements; a binary's build information is
// what was built in.
func (Analyzer) Declares(p string) bool { return path.Base(p) == "go.mod" }

func (Analyzer) Wants(p string, info fs.FileInfo) bool {
	if path.Base(p) == "go.mod" {
		s := "/" + p
		return !strings.Contains(s, "/pkg/mod/") && !strings.Contains(s, "/vendor/")
	}
	return IsExecutable(info)
}

// IsExecutable reports whether a file may be a binary: a regular file with
// an execute bit, and not tiny (a size of 0 is taken as unknown: the info of
// a hard link to a file of a lower layer).
func IsExecutable(info fs.FileInfo) bool {
	return info != nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 && (info.Size() >= minBinary || info.Size() == 0)
}

// IsBinary reports whether head starts like an ELF, Mach-O or PE file.
func IsBinary(head []byte) bool {
	switch {
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		return true
	case bytes.HasPrefix(head, []byte("MZ")):
		return true
	case len(head) >= 4:
		switch string(head[:4]) {
		case "\xfe\xed\xfa\xce", "\xfe\xed\xfa\xcf", "\xce\xfa\xed\xfe", "\xcf\xfa\xed\xfe", "\xca\xfe\xba\xbe":
			return true
		}
	}
	return false
}

func (Analyzer) Analyze(_ context.Context, f *analyzer.File) (*analyzer.Result, error) {
	if path.Base(f.Path) == "go.mod" {
		b, err := f.ReadAll(maxGoMod)
		if err != nil {
			return nil, err
		}
		pkgs, err := ParseGoMod(f.Path, b)
		if err != nil {
			return nil, err
		}
		return &analyzer.Result{Type: "gomod", Packages: pkgs}, nil
	}
	head, err := f.Peek(4)
	if err != nil || !IsBinary(head) {
		return nil, err
	}
	r, err := f.ReaderAt(MaxBinary)
	if err != nil {
		return nil, err
	}
	bi, err := buildinfo.Read(r)
	if err != nil {
		return nil, nil // not a Go binary, or one without build information
	}
	return &analyzer.Result{Type: "gobinary", Packages: FromBuildInfo(bi)}, nil
}

// FromBuildInfo returns the modules of a binary's build information.
func FromBuildInfo(bi *buildinfo.BuildInfo) []pkg.Package {
	var out []pkg.Package
	if v := bi.Main.Version; bi.Main.Path != "" && v != "" && v != "(devel)" {
		out = append(out, pkg.Package{Name: bi.Main.Path, Version: v, Ecosystem: pkg.Go})
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		if d.Path == "" || d.Version == "" || d.Version == "(devel)" {
			continue // a replacement by a local directory has no version
		}
		out = append(out, pkg.Package{Name: d.Path, Version: d.Version, Ecosystem: pkg.Go})
	}
	if v, ok := strings.CutPrefix(bi.GoVersion, "go"); ok && v != "" {
		// "go1.26.8", "go1.22.0 X:boringcrypto": the release.
		v, _, _ = strings.Cut(v, " ")
		out = append(out, pkg.Package{Name: "stdlib", Version: "v" + v, Ecosystem: pkg.Go})
	}
	return out
}

// ParseGoMod returns the modules a go.mod requires, replacements applied.
func ParseGoMod(name string, b []byte) ([]pkg.Package, error) {
	mf, err := modfile.Parse(name, b, nil)
	if err != nil {
		// Directives newer than this parser: read the requirements alone.
		if mf, err = modfile.ParseLax(name, b, nil); err != nil {
			return nil, err
		}
	}
	repl := map[string]modfile.Replace{}
	for _, r := range mf.Replace {
		repl[r.Old.Path+"@"+r.Old.Version] = *r
	}
	var out []pkg.Package
	for _, r := range mf.Require {
		m := r.Mod
		rp, ok := repl[m.Path+"@"+m.Version]
		if !ok {
			rp, ok = repl[m.Path+"@"]
		}
		if ok {
			if rp.New.Version == "" {
				continue // replaced by a local directory
			}
			m = rp.New
		}
		out = append(out, pkg.Package{Name: m.Path, Version: m.Version, Ecosystem: pkg.Go})
	}
	return out, nil
}
