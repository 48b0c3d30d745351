// Package osrelease tells an image's operating system from its release
// files: os-release (etc/os-release, usr/lib/os-release), lsb-release, and
// the distributions' own files (alpine-release, debian_version,
// redhat-release and its kin, system-release, SuSE-release,
// photon-release).
//
// The analyzer reports what each file says; [Resolve] decides from the
// files visible in the merged filesystem: os-release names the OS (etc/
// before usr/lib/), then lsb-release, then a distribution's own file; a
// distribution's own file then refines the release when it is more precise
// and agrees (Debian's debian_version "12.15" refines VERSION_ID "12",
// CentOS's "7.9.2009" refines "7"). Without any release file, a hint from a
// package database (Debian's base-files in a distroless status.d) is used.
package osrelease

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

// Analyzer reads release files.
type Analyzer struct{}

// New returns the analyzer.
func New() Analyzer { return Analyzer{} }

func (Analyzer) Name() string { return "os" }
func (Analyzer) Version() int { return 2 }

// files maps the release files to their rank: lower wins the OS ID.
var files = map[string]int{
	"etc/os-release":        0,
	"usr/lib/os-release":    1,
	"etc/lsb-release":       2,
	"etc/alpine-release":    3,
	"etc/redhat-release":    3,
	"etc/centos-release":    3,
	"etc/rocky-release":     3,
	"etc/almalinux-release": 3,
	"etc/oracle-release":    3,
	"etc/fedora-release":    3,
	"etc/system-release":    3,
	"etc/SuSE-release":      3,
	"etc/photon-release":    3,
	"etc/debian_version":    4,
}

// hintRank is the rank of evidence that does not come from a release file.
const hintRank = 9

func (Analyzer) Wants(path string, _ fs.FileInfo) bool {
	_, ok := files[path]
	return ok
}

// Anchors are the directories of the release files.
func (Analyzer) Anchors() []string { return []string{"etc", "usr/lib"} }

// WantsMoved takes files with the name of a release file, for an etc or
// usr/lib reached through a symlink.
func (Analyzer) WantsMoved(p string, _ fs.FileInfo) bool {
	_, ok := byBase[path.Base(p)]
	return ok
}

// byBase maps the base name of each release file to its path.
var byBase = func() map[string]string {
	m := map[string]string{}
	for p := range files {
		if q, ok := m[path.Base(p)]; !ok || p < q {
			m[path.Base(p)] = p
		}
	}
	return m
}()

// maxSize bounds what a release file may be.
const maxSize = 64 << 10

func (Analyzer) Analyze(_ context.Context, f *analyzer.File) (*analyzer.Result, error) {
	b, err := f.ReadAll(maxSize)
	if err != nil {
		return nil, err
	}
	p := f.Path
	if _, ok := files[p]; !ok {
		p = byBase[path.Base(p)] // reached through a symlink: read as that file
	}
	os := Parse(p, b)
	if os == nil {
		return nil, nil
	}
	return &analyzer.Result{OS: os}, nil
}

// Parse returns what the release file at path (relative to the root) says,
// or nil when it says nothing usable.
func Parse(path string, b []byte) *pkg.OS {
	var os *pkg.OS
	switch path {
	case "etc/os-release", "usr/lib/os-release":
		os = parseOSRelease(b)
	case "etc/lsb-release":
		os = parseLSB(b)
	case "etc/alpine-release":
		if v := firstLine(b); v != "" {
			os = &pkg.OS{ID: "alpine", VersionID: v}
		}
	case "etc/debian_version":
		v := firstLine(b)
		switch {
		case v == "":
		case v[0] >= '0' && v[0] <= '9':
			os = &pkg.OS{ID: "debian", VersionID: v}
		default:
			codename, _, _ := strings.Cut(v, "/") // "trixie/sid"
			os = &pkg.OS{ID: "debian", Codename: codename}
		}
	case "etc/SuSE-release":
		os = parseSuSE(b)
	case "etc/photon-release":
		if m := photonRe.FindStringSubmatch(firstLine(b)); m != nil {
			os = &pkg.OS{ID: "photon", VersionID: m[1], Name: firstLine(b)}
		}
	default:
		os = parseRedHat(firstLine(b))
	}
	if os == nil || os.ID == "" {
		return nil
	}
	os.Family = pkg.Family(os.ID)
	return os
}

// Resolve decides the OS from the evidence visible in the merged
// filesystem; each piece's Source is the file it came from, an absolute
// path. It returns nil when there is none.
func Resolve(evidence []pkg.OS) *pkg.OS {
	var best *pkg.OS
	bestRank := hintRank + 1
	for i := range evidence {
		e := &evidence[i]
		if r := rank(e.Source); r < bestRank || r == bestRank && e.Source < best.Source {
			best, bestRank = e, r
		}
	}
	if best == nil {
		return nil
	}
	os := *best
	// Refine the release from a more precise file that agrees.
	for i := range evidence {
		e := &evidence[i]
		if r := rank(e.Source); r == bestRank || r == hintRank || e.VersionID == "" || !agrees(&os, e) {
			continue
		}
		if os.VersionID == "" || strings.HasPrefix(e.VersionID, os.VersionID+".") {
			os.VersionID = e.VersionID
		}
		if os.Codename == "" {
			os.Codename = e.Codename
		}
	}
	if os.Family == "" {
		os.Family = pkg.Family(os.ID)
	}
	return &os
}

// agrees reports whether e speaks of the same distribution as os (Ubuntu's
// debian_version does not).
func agrees(os, e *pkg.OS) bool { return e.ID == os.ID }

func rank(source string) int {
	if r, ok := files[strings.TrimPrefix(source, "/")]; ok {
		return r
	}
	return hintRank
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return strings.TrimSpace(string(line))
}

// keyValues parses KEY=VALUE lines with optional shell quoting, as
// os-release(5) and lsb-release have them.
func keyValues(b []byte) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), maxSize)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		kv[strings.TrimSpace(k)] = unquote(strings.TrimSpace(v))
	}
	return kv
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
		if v != "" && strings.ContainsRune(v, '\\') {
			var b strings.Builder
			for i := 0; i < len(v); i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				b.WriteByte(v[i])
			}
			v = b.String()
		}
	}
	return v
}

func parseOSRelease(b []byte) *pkg.OS {
	kv := keyValues(b)
	id := strings.ToLower(kv["ID"])
	if id == "" {
		return nil
	}
	name := kv["PRETTY_NAME"]
	if name == "" {
		name = kv["NAME"]
	}
	os := &pkg.OS{ID: id, VersionID: kv["VERSION_ID"], Codename: kv["VERSION_CODENAME"], Name: name}
	if os.Codename == "" && id == "ubuntu" {
		os.Codename = kv["UBUNTU_CODENAME"]
	}
	return os
}

func parseLSB(b []byte) *pkg.OS {
	kv := keyValues(b)
	id := strings.ToLower(strings.ReplaceAll(kv["DISTRIB_ID"], " ", ""))
	if id == "" {
		return nil
	}
	return &pkg.OS{ID: id, VersionID: kv["DISTRIB_RELEASE"], Codename: kv["DISTRIB_CODENAME"], Name: kv["DISTRIB_DESCRIPTION"]}
}

var (
	// "Red Hat Enterprise Linux release 8.1 (Ootpa)", "CentOS Linux release
	// 7.9.2009 (Core)", "Amazon Linux release 2 (Karoo)", "Amazon Linux AMI
	// release 2018.03", "Fedora release 39 (Thirty Nine)".
	releaseRe = regexp.MustCompile(`^(.+?)\s+release\s+([0-9][0-9A-Za-z.\-]*)`)
	photonRe  = regexp.MustCompile(`^VMware Photon(?: OS)?(?: Linux)?\s+([0-9][0-9.]*)`)
)

var redhatNames = []struct{ prefix, id string }{
	{"Red Hat Enterprise Linux", "rhel"},
	{"CentOS", "centos"},
	{"Rocky Linux", "rocky"},
	{"AlmaLinux", "almalinux"},
	{"Oracle Linux", "ol"},
	{"Fedora", "fedora"},
	{"Amazon Linux", "amzn"},
}

func parseRedHat(line string) *pkg.OS {
	m := releaseRe.FindStringSubmatch(line)
	if m == nil {
		return nil
	}
	for _, n := range redhatNames {
		if strings.HasPrefix(m[1], n.prefix) {
			return &pkg.OS{ID: n.id, VersionID: m[2], Name: line}
		}
	}
	return nil
}

func parseSuSE(b []byte) *pkg.OS {
	first := firstLine(b)
	kv := keyValues(b)
	v := kv["VERSION"]
	if p := kv["PATCHLEVEL"]; p != "" && p != "0" && v != "" {
		v += "." + p
	}
	id := "sles"
	if strings.HasPrefix(strings.ToLower(first), "opensuse") {
		id = "opensuse-leap"
	}
	if v == "" {
		return nil
	}
	return &pkg.OS{ID: id, VersionID: v, Name: first}
}
