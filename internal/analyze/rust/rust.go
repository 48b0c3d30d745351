// Package rust finds crates: locked ones, from Cargo.lock (every
// [[package]], workspace members included), and those compiled into
// binaries built with cargo-auditable, from the zlib-compressed JSON in the
// binary's .dep-v0 section (the binary's own crate and build-time
// dependencies left out).
package rust

import (
	"bytes"
	"compress/zlib"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/BurntSushi/toml"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

// Analyzer finds crates.
type Analyzer struct{}

// New returns the analyzer.
func New() Analyzer { return Analyzer{} }

func (Analyzer) Name() string { return "rust" }
func (Analyzer) Version() int { return 1 }

// Limits.
const (
	maxLockfile = 64 << 20
	MaxBinary   = 1 << 30
	maxDepInfo  = 16 << 20 // decompressed .dep-v0
	minBinary   = 1 << 10
)

// Declares: Cargo.lock declares; cargo-auditable binaries are built.
func (Analyzer) Declares(p string) bool { return path.Base(p) == "Cargo.lock" }

func (Analyzer) Wants(p string, info fs.FileInfo) bool {
	if path.Base(p) == "Cargo.lock" {
		return true
	}
	// A size of 0 is unknown: the info of a hard link to a lower layer.
	return info != nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 && (info.Size() >= minBinary || info.Size() == 0)
}

func (Analyzer) Analyze(_ context.Context, f *analyzer.File) (*analyzer.Result, error) {
	if path.Base(f.Path) == "Cargo.lock" {
		b, err := f.ReadAll(maxLockfile)
		if err != nil {
			return nil, err
		}
		pkgs, err := ParseCargoLock(b)
		if err != nil {
			return nil, err
		}
		return &analyzer.Result{Type: "cargo", Packages: pkgs}, nil
	}
	head, err := f.Peek(4)
	if err != nil || !bytes.Equal(head, []byte("\x7fELF")) {
		return nil, err
	}
	r, err := f.ReaderAt(MaxBinary)
	if err != nil {
		return nil, err
	}
	ef, err := elf.NewFile(r)
	if err != nil {
		return nil, nil // not an ELF file after all
	}
	s := ef.Section(".dep-v0")
	if s == nil {
		return nil, nil
	}
	pkgs, err := ParseDepInfo(s.Open())
	if err != nil {
		return nil, fmt.Errorf("cargo-auditable data: %w", err)
	}
	return &analyzer.Result{Type: "rustbinary", Packages: pkgs}, nil
}

// ParseCargoLock reads a Cargo.lock.
func ParseCargoLock(b []byte) ([]pkg.Package, error) {
	var lock struct {
		Package []struct {
			Name    string `toml:"name"`
			Version string `toml:"version"`
		} `toml:"package"`
	}
	if _, err := toml.Decode(string(b), &lock); err != nil {
		return nil, fmt.Errorf("Cargo.lock: %w", err)
	}
	var out []pkg.Package
	for _, p := range lock.Package {
		if p.Name != "" && p.Version != "" {
			out = append(out, pkg.Package{Name: p.Name, Version: p.Version, Ecosystem: pkg.Cargo})
		}
	}
	return out, nil
}

// ParseDepInfo reads cargo-auditable's compressed dependency list.
func ParseDepInfo(r io.Reader) ([]pkg.Package, error) {
	zr, err := zlib.NewReader(r)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	b, err := io.ReadAll(io.LimitReader(zr, maxDepInfo+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDepInfo {
		return nil, fmt.Errorf("over %s decompressed", analyzer.HumanSize(maxDepInfo))
	}
	var info struct {
		Packages []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Kind    string `json:"kind"`
			Root    bool   `json:"root"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, err
	}
	var out []pkg.Package
	for _, p := range info.Packages {
		if p.Root || p.Kind == "build" || p.Name == "" || p.Version == "" {
			continue
		}
		out = append(out, pkg.Package{Name: p.Name, Version: p.Version, Ecosystem: pkg.Cargo})
	}
	return out, nil
}
