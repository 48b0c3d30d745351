// Package pkg is lading's package model: what an analyzer reports about an
// installed package or a locked dependency, and what the operating system of
// an image is.
//
// A [Package] is identified by its [Ecosystem], Name and Version, spelled
// the way its ecosystem spells them, so that they compare with the
// ecosystem's own version rules:
//
//   - apk: the package name and pkgver ("musl", "1.2.5-r0");
//   - deb: the binary package name and the version from the status file,
//     epoch included ("1:2.20.1-2+deb10u3");
//   - rpm: the name and EVR, "EPOCH:VERSION-RELEASE" with the epoch only
//     when the header has one ("1:1.1.1k-7.el8"), as rpm's %{EVR} prints it;
//   - npm, PyPI, Go, Maven, RubyGems, crates.io, Packagist, NuGet: the names
//     OSV uses for the ecosystems; a Go module's version keeps its "v", a
//     Maven package is named "group:artifact".
//
// Location is the file inside the image that declared the package (a
// package database, a lockfile, a package.json, a jar), as an absolute path;
// a file inside an archive is "outer.jar!inner/path". Layer attribution is
// filled in when layer results are merged.
package pkg

import (
	"cmp"
	"slices"
	"strings"
)

// Ecosystem is where a package comes from and whose version rules apply.
type Ecosystem string

// The ecosystems lading's analyzers report. OS ecosystems are the package
// formats (the distribution is in the inventory's [OS]); language
// ecosystems have the names OSV gives them.
const (
	Apk       Ecosystem = "apk"
	Deb       Ecosystem = "deb"
	RPM       Ecosystem = "rpm"
	Npm       Ecosystem = "npm"
	PyPI      Ecosystem = "PyPI"
	Go        Ecosystem = "Go"
	Maven     Ecosystem = "Maven"
	RubyGems  Ecosystem = "RubyGems"
	Cargo     Ecosystem = "crates.io"
	Packagist Ecosystem = "Packagist"
	NuGet     Ecosystem = "NuGet"
)

// IsOS reports whether e is an operating system package format.
func (e Ecosystem) IsOS() bool { return e == Apk || e == Deb || e == RPM }

// Package is one installed package or locked dependency.
type Package struct {
	Name      string    `json:"name"`
	Version   string    `json:"version"`
	Ecosystem Ecosystem `json:"ecosystem"`
	// PURL is the package URL (https://github.com/package-url/purl-spec).
	// Analyzers leave it empty; the merge fills it in with [PURL], which
	// needs the image's OS for OS packages.
	PURL string `json:"purl,omitempty"`
	// Arch is the architecture an OS package was built for ("x86_64",
	// "amd64", "noarch", "all").
	Arch string `json:"arch,omitempty"`
	// Source is the package it was built from: Debian's source package
	// (the package itself when its stanza names none), Alpine's origin, the
	// source RPM. Nil for ecosystems without source packages.
	Source *Source `json:"source,omitempty"`
	// Licenses are license names or SPDX expressions as the package
	// declares them, in the order found, without duplicates.
	Licenses []string `json:"licenses,omitempty"`
	// Location is the file that declared the package, an absolute path in
	// the image ("/var/lib/dpkg/status"); "A!B" is entry B of archive A.
	Location string `json:"location"`
	// Dev marks a development-only dependency of a lockfile.
	Dev bool `json:"dev,omitempty"`
	// Modularity is an RPM's modularity label ("nodejs:18:8090020231019:a75119d5").
	Modularity string `json:"modularity,omitempty"`
	// Layer tells which layers put the package there; nil until merged.
	Layer *Attribution `json:"layer,omitempty"`
}

// Source is the source package a binary package was built from.
type Source struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// Attribution is where in an image's layer stack a package comes from.
type Attribution struct {
	// Introduced is the lowest layer that has a record of the package with
	// the same name and version at the same place.
	Introduced LayerRef `json:"introduced"`
	// Changed is the layer that last changed the package's record: the
	// lowest layer from which on the record stays the same.
	Changed LayerRef `json:"changed"`
}

// LayerRef names a layer of an image: its position (0 is the base layer)
// and its diffID.
type LayerRef struct {
	Index  int    `json:"index"`
	DiffID string `json:"diff_id,omitempty"`
}

// Key is what makes a package record the same record across layers: the
// ecosystem, name, architecture and declaring file. Two records with the
// same key in different layers describe one package as it changed.
type Key struct {
	Ecosystem Ecosystem
	Name      string
	Arch      string
	Location  string
}

// Key returns p's key.
func (p *Package) Key() Key {
	return Key{Ecosystem: p.Ecosystem, Name: p.Name, Arch: p.Arch, Location: p.Location}
}

// AddLicense appends l to p.Licenses unless it is empty or there already.
func (p *Package) AddLicense(l string) {
	l = strings.TrimSpace(l)
	if l == "" || slices.Contains(p.Licenses, l) {
		return
	}
	p.Licenses = append(p.Licenses, l)
}

// Compare orders packages by ecosystem, name, version, location and arch.
func Compare(a, b *Package) int {
	return cmp.Or(
		cmp.Compare(a.Ecosystem, b.Ecosystem),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Version, b.Version),
		cmp.Compare(a.Location, b.Location),
		cmp.Compare(a.Arch, b.Arch),
	)
}

// OS is the operating system of an image, as its release files say.
type OS struct {
	// ID is the os-release ID: "alpine", "debian", "ubuntu", "rhel",
	// "centos", "rocky", "almalinux", "ol", "amzn", "fedora", "sles",
	// "opensuse-leap", "opensuse-tumbleweed", "photon", "wolfi",
	// "chainguard", "mariner", "azurelinux".
	ID string `json:"id"`
	// VersionID is the most precise release the image's files give:
	// "3.20.3" (alpine-release), "12.15" (debian_version), "18.04", "8.1".
	// Empty for rolling releases that have none.
	VersionID string `json:"version_id,omitempty"`
	// Codename is the release's code name ("bookworm", "bionic").
	Codename string `json:"codename,omitempty"`
	// Name is the human-readable name (os-release PRETTY_NAME).
	Name string `json:"name,omitempty"`
	// Family groups related distributions: "alpine" (with Wolfi and
	// Chainguard), "debian" (with Ubuntu), "redhat" (RHEL, its rebuilds,
	// Oracle, Amazon, Fedora), "suse", or else the ID itself.
	Family string `json:"family"`
	// Distroless is set when no release file names the OS and it was
	// inferred from a distroless package database.
	Distroless bool `json:"distroless,omitempty"`
	// Source is the file the ID came from ("/etc/os-release").
	Source string `json:"source,omitempty"`
}

// Family returns the family of an os-release ID.
func Family(id string) string {
	switch id {
	case "alpine", "wolfi", "chainguard":
		return "alpine"
	case "debian", "ubuntu":
		return "debian"
	case "rhel", "centos", "rocky", "almalinux", "ol", "amzn", "fedora":
		return "redhat"
	case "sles", "sled", "opensuse", "opensuse-leap", "opensuse-tumbleweed", "sle-micro", "opensuse-microos":
		return "suse"
	}
	return id
}
