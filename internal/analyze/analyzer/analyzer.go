// Package analyzer defines what an analyzer is: the interface the layer
// driver (package analyze) calls, the [File] it hands over and the [Result]
// it gets back. Each analyzer lives in its own package under
// internal/analyze and imports only this package and the package model,
// internal/pkg.
//
// The contract:
//
//   - The driver reads every layer once. For each regular file it asks every
//     analyzer whether it [Analyzer.Wants] the file, by path and file info
//     only, and calls [Analyzer.Analyze] with the file for those that do.
//     Files nobody wants are never copied anywhere.
//   - Analyze sees one file of one layer, never the merged filesystem. It
//     returns what that file says: packages, OS facts, license facts. The
//     driver merges the results of all layers by overlay rules: a result
//     counts only while its file is not removed, replaced or hidden by a
//     higher layer.
//   - A result may be cached and reused for any image with the same layer,
//     so it must depend on the file's path and content only, and
//     [Analyzer.Version] must change whenever the output for the same input
//     could change.
//   - Analyze must stay within the limits it gives the File (ReadAll,
//     ReaderAt), never panic on malformed input, and return an error that
//     says what is wrong with the file; the driver turns it into a warning
//     naming the file and the layer and carries on.
//   - Analyzers are used by several layers at once: they keep no state
//     between calls.
package analyzer

import (
	"context"
	"io/fs"

	"github.com/lading-dev/lading/internal/pkg"
)

// Analyzer finds packages, or facts about the OS, in files of a layer.
type Analyzer interface {
	// Name is the analyzer's stable, short, lower-case name ("dpkg"); it
	// keys cached results and names the analyzer in messages.
	Name() string
	// Version is the version of the analyzer's output. Bump it whenever the
	// results for the same file could differ from before; cached results of
	// other versions are then recomputed, those of other analyzers kept.
	Version() int
	// Wants reports whether the analyzer reads the regular file at path
	// (normalized, relative to the root, without a leading slash:
	// "var/lib/dpkg/status"), described by info. It is called for every
	// file of every layer, so it must be cheap, and it must depend on path
	// and info only.
	Wants(path string, info fs.FileInfo) bool
	// Analyze reads f and returns what it holds, or nil when it holds
	// nothing of interest.
	Analyze(ctx context.Context, f *File) (*Result, error)
}

// Anchored is implemented by analyzers whose files are at fixed paths of
// the root filesystem: a package database, a release file. A directory on
// the way there may be a symbolic link in the merged filesystem (Fedora's
// var/lib/rpm -> ../../usr/lib/sysimage/rpm, usrmerge's lib -> usr/lib, a
// database moved elsewhere with a link left behind), so the file may be
// stored at another path of its layer, and the link may come from another
// layer than the file.
//
// The driver also analyzes the files WantsMoved accepts, and the merge keeps
// such a result only in the views of the merged filesystem in which one of
// the Anchors resolves (symlinks followed, within the root) to a directory
// above the file and the file's path below the anchor is one Wants accepts;
// the result then counts as the file at that path. So WantsMoved is loose
// (by base name, say), and Analyze reads a file by its content and base
// name, not by the directories above it.
type Anchored interface {
	// Anchors are the directories the analyzer's files are in, relative to
	// the root ("var/lib/dpkg"), in order of preference.
	Anchors() []string
	// WantsMoved reports whether a file the analyzer does not want at path
	// could be one it wants, reached through symlinked directories. Like
	// Wants, it depends on path and info only.
	WantsMoved(path string, info fs.FileInfo) bool
}

// Declarer is implemented by analyzers that read, besides what is
// installed, what a source tree declares: lockfiles and manifests
// (package-lock.json, go.mod, requirements.txt). Image scans leave
// declarations out, as Trivy and Syft do for images; filesystem scans of a
// source tree keep them.
type Declarer interface {
	// Declares reports whether the file at path, which the analyzer wants,
	// is a declaration rather than an installed package.
	Declares(path string) bool
}

// Wanted reports whether a reads the file at path: it wants it there, or,
// for an Anchored analyzer, could want it reached through a symlink.
func Wanted(a Analyzer, path string, info fs.FileInfo) bool {
	if a.Wants(path, info) {
		return true
	}
	an, ok := a.(Anchored)
	return ok && an.WantsMoved(path, info)
}

// PostAnalyzer is implemented by analyzers that have to see several files
// of a layer together. After a layer has been read, PostAnalyze receives the
// results Analyze returned for that layer, in archive order, and returns the
// results to keep for the layer.
type PostAnalyzer interface {
	PostAnalyze(ctx context.Context, results []*Result) ([]*Result, error)
}

// Result is what one file of a layer says.
type Result struct {
	// Path is the file the result comes from, relative to the root
	// ("var/lib/dpkg/status"). The driver sets it; an analyzer that returns
	// results for other paths (a PostAnalyzer) sets it itself.
	Path string `json:"path"`
	// Type says what kind of target the packages belong to: "apk", "dpkg",
	// "rpm", "npm" (a package-lock.json), "node_modules", "jar", ... It
	// defaults to the analyzer's name.
	Type string `json:"type,omitempty"`
	// Target is the path of what the packages are grouped under in an
	// inventory, relative to the root: a package database, a lockfile, a
	// package directory ("app/node_modules"), a binary. Default: Path.
	Target string `json:"target,omitempty"`
	// OS is what the file says about the operating system, if anything.
	OS *pkg.OS `json:"os,omitempty"`
	// Packages are the packages the file declares. Location defaults to
	// "/" + Path; Layer is left nil.
	Packages []pkg.Package `json:"packages,omitempty"`
	// Licenses are license facts for packages of the analyzer's ecosystem
	// that the file states but does not declare (Debian copyright files):
	// package name → licenses. They apply to packages of that name without
	// licenses of their own.
	Licenses map[string][]string `json:"licenses,omitempty"`
	// Warnings say what in the file could not be read, when the rest could.
	Warnings []string `json:"warnings,omitempty"`
	// Aliases are other paths of the same file in the same layer (hard
	// links); the driver sets them. Each name counts as a file of its own
	// in the merged filesystem, with the packages' locations moved to it.
	Aliases []string `json:"aliases,omitempty"`
}
