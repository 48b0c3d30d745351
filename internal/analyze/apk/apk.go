// Package apk reads Alpine's package database (lib/apk/db/installed, as
// apk-tools writes it, also used by Wolfi and Chainguard): one stanza per
// installed package, one "X:value" line per field.
//
// For each package it reports the name (P), version (V), architecture (A),
// origin (o, the aports package it was built from, as the source package),
// license (L). The files each package installed (F and R lines) are not
// kept: they are as many as the image's files, and nothing uses them.
package apk

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

// Analyzer reads apk databases.
type Analyzer struct{}

// New returns the analyzer.
func New() Analyzer { return Analyzer{} }

func (Analyzer) Name() string { return "apk" }
func (Analyzer) Version() int { return 2 }

func (Analyzer) Wants(path string, _ fs.FileInfo) bool {
	return path == "lib/apk/db/installed" || path == "usr/lib/apk/db/installed"
}

// Anchors are where apk keeps its database (usrmerge moves it to usr/lib).
func (Analyzer) Anchors() []string { return []string{"lib/apk/db", "usr/lib/apk/db"} }

// WantsMoved takes any file named installed: the database reached through
// a symlinked directory.
func (Analyzer) WantsMoved(p string, _ fs.FileInfo) bool { return path.Base(p) == "installed" }

// MaxSize bounds the database; real ones are a few megabytes.
const MaxSize = 256 << 20

// maxLine bounds one line (a long description or dependency list).
const maxLine = 1 << 20

func (Analyzer) Analyze(ctx context.Context, f *analyzer.File) (*analyzer.Result, error) {
	if f.Size() > MaxSize {
		return nil, fmt.Errorf("database of %s, over the limit of %s", analyzer.HumanSize(f.Size()), analyzer.HumanSize(MaxSize))
	}
	pkgs, warnings, err := Parse(ctx, f)
	if err != nil {
		return nil, err
	}
	return &analyzer.Result{Packages: pkgs, Warnings: warnings}, nil
}

// Parse reads an installed database. A stanza without a name or version is
// left out with a warning; err is for a stream that cannot be read.
func Parse(ctx context.Context, r io.Reader) (pkgs []pkg.Package, warnings []string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var (
		cur     pkg.Package
		started bool
		line    int
		start   int
	)
	flush := func() {
		if !started {
			return
		}
		switch {
		case cur.Name == "" || cur.Version == "":
			warnings = append(warnings, fmt.Sprintf("line %d: package without a name or version (P:%q V:%q)", start, cur.Name, cur.Version))
		default:
			cur.Ecosystem = pkg.Apk
			pkgs = append(pkgs, cur)
		}
		cur, started = pkg.Package{}, false
	}
	for sc.Scan() {
		line++
		if line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
		}
		b := sc.Bytes()
		if len(b) == 0 {
			flush()
			continue
		}
		if len(b) < 2 || b[1] != ':' {
			continue
		}
		if !started {
			started, start = true, line
		}
		if !strings.ContainsRune("PVAoL", rune(b[0])) {
			continue // files (F, R) and the rest: not kept, a database lists every file
		}
		v := string(b[2:])
		switch b[0] {
		case 'P':
			cur.Name = v
		case 'V':
			cur.Version = v
		case 'A':
			cur.Arch = v
		case 'o':
			cur.Source = &pkg.Source{Name: v}
		case 'L':
			cur.AddLicense(v)
		}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return pkgs, append(warnings, fmt.Sprintf("line %d: longer than %d bytes; the rest of the database is not read", line+1, maxLine)), nil
		}
		return nil, nil, err
	}
	flush()
	for i := range pkgs {
		if s := pkgs[i].Source; s != nil {
			s.Version = pkgs[i].Version // an origin has its subpackages' pkgver
		}
	}
	return pkgs, warnings, nil
}
