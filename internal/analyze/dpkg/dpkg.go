// Package dpkg reads Debian's package database: var/lib/dpkg/status, the
// one-file-per-package var/lib/dpkg/status.d/ of distroless images (each
// file a package's control stanza, without a Status field), and the license
// names in usr/share/doc/PACKAGE/copyright files.
//
// A package counts as installed when its files are on disk: its Status is
// "installed", "half-configured", "unpacked", "half-installed",
// "triggers-awaiting" or "triggers-pending", or it has no Status (status.d).
// Packages that are "config-files" (removed, configuration kept) or
// "not-installed" are left out, as dpkg-query -W would list the former.
//
// Each package carries its Source name and version (the binary's own
// version when the Source field gives none). Licenses come from the
// package's copyright file: the License fields of a machine-readable
// (DEP-5) file, else the /usr/share/common-licenses files it refers to.
package dpkg

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

// Analyzer reads dpkg databases and copyright files.
type Analyzer struct{}

// New returns the analyzer.
func New() Analyzer { return Analyzer{} }

func (Analyzer) Name() string { return "dpkg" }
func (Analyzer) Version() int { return 2 }

const (
	statusFile = "var/lib/dpkg/status"
	statusDir  = "var/lib/dpkg/status.d/"
	docDir     = "usr/share/doc/"
)

func (Analyzer) Wants(path string, _ fs.FileInfo) bool {
	switch {
	case path == statusFile:
		return true
	case strings.HasPrefix(path, statusDir):
		name := path[len(statusDir):]
		return name != "" && !strings.Contains(name, "/") && !strings.HasSuffix(name, ".md5sums") && name[0] != '.'
	case strings.HasPrefix(path, docDir) && strings.HasSuffix(path, "/copyright"):
		return strings.Count(path[len(docDir):], "/") == 1
	}
	return false
}

// Anchors are the directories of the database and of the copyright files.
func (Analyzer) Anchors() []string { return []string{"var/lib/dpkg", "usr/share/doc"} }

// WantsMoved takes the files that keep their names when a directory above
// them is a symlink: status, status.d entries, copyright files.
func (Analyzer) WantsMoved(p string, _ fs.FileInfo) bool {
	dir, name := path.Split(p)
	switch {
	case name == "status", name == "copyright":
		return true
	case path.Base(dir) == "status.d":
		return name != "" && !strings.HasSuffix(name, ".md5sums") && name[0] != '.'
	}
	return false
}

// kind says what a file the analyzer reads is, by its base name and
// directory, so that it reads the same wherever a symlink puts it.
func kind(p string) (copyright, distroless bool) {
	dir, name := path.Split(p)
	switch {
	case strings.HasPrefix(p, statusDir):
		return false, true
	case p == statusFile, strings.HasPrefix(p, "var/lib/dpkg/"):
		return false, false
	case name == "copyright":
		return true, false
	}
	return false, path.Base(dir) == "status.d"
}

// Size limits.
const (
	MaxSize          = 256 << 20 // a status file
	maxCopyrightSize = 4 << 20
	maxLine          = 1 << 20
)

func (Analyzer) Analyze(ctx context.Context, f *analyzer.File) (*analyzer.Result, error) {
	copyright, distroless := kind(f.Path)
	if copyright {
		b, err := f.ReadAll(maxCopyrightSize)
		if err != nil {
			return nil, err
		}
		ls := Licenses(b)
		if len(ls) == 0 {
			return nil, nil
		}
		name := path.Base(path.Dir(f.Path))
		return &analyzer.Result{Licenses: map[string][]string{name: ls}}, nil
	}
	if f.Size() > MaxSize {
		return nil, fmt.Errorf("database of %s, over the limit of %s", analyzer.HumanSize(f.Size()), analyzer.HumanSize(MaxSize))
	}
	pkgs, warnings, err := Parse(ctx, f, distroless)
	if err != nil {
		return nil, err
	}
	r := &analyzer.Result{Packages: pkgs, Warnings: warnings}
	if distroless {
		r.Target = strings.TrimSuffix(statusDir, "/")
		r.OS = distrolessHint(pkgs)
	}
	return r, nil
}

// distrolessHint tells Debian's release from base-files, for distroless
// images that have no release file.
func distrolessHint(pkgs []pkg.Package) *pkg.OS {
	for _, p := range pkgs {
		if p.Name != "base-files" || strings.Contains(p.Version, "ubuntu") {
			continue
		}
		if m := majorRe.FindStringSubmatch(p.Version); m != nil {
			return &pkg.OS{ID: "debian", VersionID: m[1], Family: "debian", Distroless: true}
		}
	}
	return nil
}

var majorRe = regexp.MustCompile(`^([0-9]+)(?:\.|$|\+)`)

// Parse reads a status file, or with noStatus a status.d file, whose
// stanzas have no Status field and are all installed.
func Parse(ctx context.Context, r io.Reader, noStatus bool) (pkgs []pkg.Package, warnings []string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var (
		fields  = map[string]string{}
		last    string
		line    int
		start   int
		started bool
	)
	flush := func() {
		if !started {
			return
		}
		p, ok, w := stanza(fields, noStatus)
		if w != "" {
			warnings = append(warnings, fmt.Sprintf("line %d: %s", start, w))
		}
		if ok {
			pkgs = append(pkgs, p)
		}
		clear(fields)
		last, started = "", false
	}
	for sc.Scan() {
		line++
		if line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
		}
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			flush()
			continue
		}
		if b[0] == ' ' || b[0] == '\t' {
			continue // continuation of a multi-line field we do not need
		}
		k, v, ok := bytes.Cut(b, []byte(":"))
		if !ok {
			continue
		}
		if !started {
			started, start = true, line
		}
		last = string(k)
		switch last {
		case "Package", "Status", "Version", "Architecture", "Source":
			fields[last] = string(bytes.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return pkgs, append(warnings, fmt.Sprintf("line %d: longer than %d bytes; the rest of the database is not read", line+1, maxLine)), nil
		}
		return nil, nil, err
	}
	flush()
	return pkgs, warnings, nil
}

// stanza makes a package of one stanza's fields; ok is false for packages
// that are not installed, w says what is wrong with a malformed stanza.
func stanza(f map[string]string, noStatus bool) (p pkg.Package, ok bool, w string) {
	name, ver := f["Package"], f["Version"]
	if !noStatus || f["Status"] != "" {
		st := strings.Fields(f["Status"])
		if len(st) != 3 {
			if name == "" {
				return p, false, "" // not a package stanza
			}
			return p, false, fmt.Sprintf("package %q: malformed Status %q", name, f["Status"])
		}
		switch st[2] {
		case "installed", "half-configured", "unpacked", "half-installed", "triggers-awaiting", "triggers-pending":
		default:
			return p, false, ""
		}
	}
	if name == "" || ver == "" {
		return p, false, fmt.Sprintf("package without a name or version (Package %q, Version %q)", name, ver)
	}
	p = pkg.Package{Name: name, Version: ver, Ecosystem: pkg.Deb, Arch: f["Architecture"]}
	src := &pkg.Source{Name: name, Version: ver}
	if s := f["Source"]; s != "" {
		n, v, hasVer := strings.Cut(s, " ")
		src.Name = n
		if hasVer {
			v = strings.TrimSpace(v)
			if strings.HasPrefix(v, "(") && strings.HasSuffix(v, ")") {
				src.Version = strings.TrimSpace(v[1 : len(v)-1])
			}
		}
	}
	p.Source = src
	return p, true, ""
}

var commonLicenseRe = regexp.MustCompile(`/usr/share/common-licenses/([A-Za-z0-9][A-Za-z0-9.+_-]*[A-Za-z0-9+])`)

// Licenses returns the license names a copyright file gives: the License
// fields of a DEP-5 file (the first line of each, in order), or else the
// common-licenses files it names.
func Licenses(b []byte) []string {
	var out []string
	add := func(l string) {
		l = strings.TrimSpace(l)
		if l == "" {
			return
		}
		for _, x := range out {
			if x == l {
				return
			}
		}
		out = append(out, l)
	}
	dep5 := bytes.HasPrefix(b, []byte("Format:")) || bytes.Contains(b[:min(len(b), 512)], []byte("\nFormat:"))
	if dep5 {
		for _, line := range bytes.Split(b, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("License:")); ok {
				add(string(v))
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	for _, m := range commonLicenseRe.FindAllSubmatch(b, -1) {
		add(string(m[1]))
	}
	return out
}
