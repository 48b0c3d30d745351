// Package rpm reads the RPM database in all three of rpm's formats, in
// pure Go: Berkeley DB (Packages: RHEL and CentOS up to 8, Amazon Linux 2),
// NDB (Packages.db: SUSE) and SQLite (rpmdb.sqlite: Fedora 33+, RHEL 9,
// CBL-Mariner, Azure Linux), in var/lib/rpm or usr/lib/sysimage/rpm. Each
// format is read straight from its file structure, with every offset and
// length checked, so a damaged database gives a warning, never a panic or a
// loop.
//
// Each package carries its name, EVR ("EPOCH:VERSION-RELEASE", the epoch
// only when the header has one, like rpm's %{EVR}), architecture, license,
// modularity label, and source RPM (name and version-release). The
// gpg-pubkey entries rpm keeps for imported signing keys are not packages
// and are left out.
package rpm

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

// Analyzer reads rpm databases.
type Analyzer struct{}

// New returns the analyzer.
func New() Analyzer { return Analyzer{} }

func (Analyzer) Name() string { return "rpm" }
func (Analyzer) Version() int { return 2 }

// Anchors are the directories rpm keeps its database in.
func (Analyzer) Anchors() []string { return []string{"var/lib/rpm", "usr/lib/sysimage/rpm"} }

// WantsMoved takes the database files wherever they are, for a database
// directory reached through a symlink.
func (Analyzer) WantsMoved(p string, _ fs.FileInfo) bool {
	_, file, ok := cutLast(p)
	if !ok {
		file = p
	}
	return file == "Packages" || file == "Packages.db" || file == "rpmdb.sqlite"
}

func (Analyzer) Wants(path string, _ fs.FileInfo) bool {
	dir, file, ok := cutLast(path)
	if !ok || (dir != "var/lib/rpm" && dir != "usr/lib/sysimage/rpm") {
		return false
	}
	return file == "Packages" || file == "Packages.db" || file == "rpmdb.sqlite"
}

func cutLast(p string) (dir, file string, ok bool) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", "", false
	}
	return p[:i], p[i+1:], true
}

// MaxSize bounds the database file.
const MaxSize = 2 << 30

func (a Analyzer) Analyze(ctx context.Context, f *analyzer.File) (*analyzer.Result, error) {
	if !a.Wants(f.Path, f.Info) {
		// A file of a database's name elsewhere: not buffered unless it
		// looks like one.
		head, err := f.Peek(512)
		if err != nil {
			return nil, err
		}
		if !isSQLite(head) && !isNDB(head) && !isBDB(head) {
			return nil, nil
		}
	}
	r, err := f.ReaderAt(MaxSize)
	if err != nil {
		return nil, err
	}
	pkgs, warnings, err := Read(ctx, r, f.Size())
	if err != nil {
		return nil, err
	}
	return &analyzer.Result{Packages: pkgs, Warnings: warnings}, nil
}

// Read reads a database of size bytes in any of the three formats.
func Read(ctx context.Context, r io.ReaderAt, size int64) (pkgs []pkg.Package, warnings []string, err error) {
	head := make([]byte, 512)
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	var read func(io.ReaderAt, int64, func([]byte)) ([]string, error)
	switch {
	case isSQLite(head):
		read = readSQLite
	case isNDB(head):
		read = readNDB
	case isBDB(head):
		read = readBDB
	default:
		return nil, nil, fmt.Errorf("not an rpm database in a known format (Berkeley DB hash, NDB, SQLite)")
	}
	bad := 0
	ws, err := read(r, size, func(b []byte) {
		if ctx.Err() != nil {
			return
		}
		p, ok, err := ParseHeader(b)
		switch {
		case err != nil:
			bad++
			if bad <= 10 {
				warnings = append(warnings, fmt.Sprintf("package record: %v", err))
			}
		case ok:
			pkgs = append(pkgs, p)
		}
	})
	if bad > 10 {
		warnings = append(warnings, fmt.Sprintf("%d more unreadable package records", bad-10))
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	warnings = append(ws, warnings...)
	if err != nil {
		if len(pkgs) == 0 {
			return nil, nil, err
		}
		warnings = append(warnings, err.Error()+"; the packages before it are reported")
	}
	return pkgs, warnings, nil
}
