package analyze

import (
	"fmt"

	"github.com/lading-dev/lading/internal/pkg"
)

// Inventory is what an image holds: its OS, its packages grouped by target,
// the packages that a layer installed and a higher layer removed, and its
// layers. Every slice is sorted, so that two analyses of one image give the
// same Inventory.
type Inventory struct {
	// Mode is what the analysis reports: "image" (what is installed) or
	// "fs" (a source tree: declarations too).
	Mode Mode `json:"mode,omitempty"`
	// OS is the image's operating system; nil when no file tells.
	OS *pkg.OS `json:"os,omitempty"`
	// Targets hold the packages of the merged filesystem: OS package
	// databases first, then each lockfile, package directory, binary or
	// archive, by path.
	Targets []Target `json:"targets"`
	// Removed are packages that a layer installed and a higher layer
	// removed (not upgraded: no package of that name is left at that
	// place). Layer.Introduced says where each was installed.
	Removed []Removed `json:"removed,omitempty"`
	// Layers are the image's layers, base first.
	Layers []LayerInfo `json:"layers"`
	// Warnings are what could not be analyzed: a file or a layer that is
	// malformed, too large or unreadable. The rest was analyzed.
	Warnings []Warning `json:"warnings,omitempty"`
}

// Class says whether a target holds OS packages or language packages.
type Class string

// The classes of targets.
const (
	ClassOS   Class = "os-pkgs"
	ClassLang Class = "lang-pkgs"
)

// Target is a group of packages declared in one place: an OS package
// database, a lockfile, a package directory, a binary, an archive.
type Target struct {
	// Path is where the target is in the image, an absolute path:
	// "/lib/apk/db/installed", "/app/package-lock.json", "/app/node_modules".
	Path string `json:"path"`
	// Type says what the target is: "apk", "dpkg", "rpm", "npm",
	// "node_modules", "python-packages", "gobinary", "jar", ...
	Type string `json:"type"`
	// Class is ClassOS for OS package databases, ClassLang otherwise.
	Class Class `json:"class"`
	// Packages are the target's packages, sorted by name, version and
	// location.
	Packages []pkg.Package `json:"packages"`
}

// Removed is a package that a layer installed and a higher layer removed.
type Removed struct {
	// Package is the package as it was last seen.
	pkg.Package
	// RemovedIn is the layer that removed it.
	RemovedIn pkg.LayerRef `json:"removed_in"`
	// Locations are every file the package was declared in, when it was
	// removed from several (two binaries with the same module); Location
	// is the first.
	Locations []string `json:"locations,omitempty"`
}

// LayerInfo describes one layer of the image.
type LayerInfo struct {
	Index  int    `json:"index"`
	DiffID string `json:"diff_id,omitempty"`
	// Digest is the digest of the layer blob, as the manifest names it.
	Digest string `json:"digest,omitempty"`
	// CreatedBy is the command that made the layer, from the image
	// config's history.
	CreatedBy string `json:"created_by,omitempty"`
	// Cached is set when every result for the layer came from the cache.
	Cached bool `json:"cached,omitempty"`
}

// Warning is something that could not be analyzed.
type Warning struct {
	// Layer is the index of the layer, -1 when the warning is not about one.
	Layer int `json:"layer"`
	// Path is the file, an absolute path in the image; "" when the warning
	// is about the layer as a whole.
	Path string `json:"path,omitempty"`
	// Analyzer is the analyzer that gave up, if one did.
	Analyzer string `json:"analyzer,omitempty"`
	Message  string `json:"message"`
}

func (w Warning) String() string {
	s := ""
	if w.Layer >= 0 {
		s = fmt.Sprintf("layer %d: ", w.Layer)
	}
	if w.Path != "" {
		s += w.Path + ": "
	}
	if w.Analyzer != "" {
		s += w.Analyzer + ": "
	}
	return s + w.Message
}

// Packages returns every package of every target, in target order.
func (inv *Inventory) Packages() []pkg.Package {
	var out []pkg.Package
	for _, t := range inv.Targets {
		out = append(out, t.Packages...)
	}
	return out
}
