// Package php finds Composer packages: locked ones, from composer.lock
// ("packages" and, as development dependencies, "packages-dev"), and
// installed ones, from vendor/composer/installed.json (Composer 1's array
// or Composer 2's object, whose dev-package-names mark development
// dependencies).
package php

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

// Analyzer finds Composer packages.
type Analyzer struct{}

// New returns the analyzer.
func New() Analyzer { return Analyzer{} }

func (Analyzer) Name() string { return "php" }
func (Analyzer) Version() int { return 1 }

const maxSize = 64 << 20

// Declares: composer.lock declares; vendor/composer/installed.json is
// what Composer installed.
func (Analyzer) Declares(p string) bool { return path.Base(p) == "composer.lock" }

func (Analyzer) Wants(p string, _ fs.FileInfo) bool {
	if path.Base(p) == "composer.lock" {
		return !strings.Contains("/"+p, "/vendor/")
	}
	return p == "vendor/composer/installed.json" || strings.HasSuffix(p, "/vendor/composer/installed.json")
}

type entry struct {
	Name    string          `json:"name"`
	Version string          `json:"version"`
	License json.RawMessage `json:"license"`
}

func (e entry) pkg(dev bool) (pkg.Package, bool) {
	if e.Name == "" || e.Version == "" {
		return pkg.Package{}, false
	}
	p := pkg.Package{Name: e.Name, Version: e.Version, Ecosystem: pkg.Packagist, Dev: dev}
	var ls []string
	var l string
	if json.Unmarshal(e.License, &ls) == nil {
		for _, x := range ls {
			p.AddLicense(x)
		}
	} else if json.Unmarshal(e.License, &l) == nil {
		p.AddLicense(l)
	}
	return p, true
}

func (Analyzer) Analyze(_ context.Context, f *analyzer.File) (*analyzer.Result, error) {
	b, err := f.ReadAll(maxSize)
	if err != nil {
		return nil, err
	}
	var pkgs []pkg.Package
	typ := "composer"
	if path.Base(f.Path) == "composer.lock" {
		pkgs, err = ParseLock(b)
	} else {
		typ = "composer-vendor"
		pkgs, err = ParseInstalled(b)
	}
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, nil
	}
	return &analyzer.Result{Type: typ, Packages: pkgs}, nil
}

// ParseLock reads a composer.lock.
func ParseLock(b []byte) ([]pkg.Package, error) {
	var lock struct {
		Packages    []entry `json:"packages"`
		PackagesDev []entry `json:"packages-dev"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("composer.lock: %w", err)
	}
	var out []pkg.Package
	for i, es := range [][]entry{lock.Packages, lock.PackagesDev} {
		for _, e := range es {
			if p, ok := e.pkg(i == 1); ok {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// ParseInstalled reads a vendor/composer/installed.json.
func ParseInstalled(b []byte) ([]pkg.Package, error) {
	var v2 struct {
		Packages []entry  `json:"packages"`
		DevNames []string `json:"dev-package-names"`
	}
	var entries []entry
	if err := json.Unmarshal(b, &v2); err == nil {
		entries = v2.Packages
	} else if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("installed.json: %w", err)
	}
	dev := map[string]bool{}
	for _, n := range v2.DevNames {
		dev[n] = true
	}
	var out []pkg.Package
	for _, e := range entries {
		if p, ok := e.pkg(dev[e.Name]); ok {
			out = append(out, p)
		}
	}
	return out, nil
}
