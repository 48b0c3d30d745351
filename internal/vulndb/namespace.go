package vulndb

import (
	"regexp"
	"strings"
)

// Namespaces: a language ecosystem keeps its OSV name ("Go", "npm", "PyPI",
// "Maven", "crates.io", "RubyGems", "Packagist", "NuGet", ...); a
// distribution release is "distro:release" in lower case, with the release as
// the distribution numbers its images' os-release VERSION_ID, cut to what its
// security feed distinguishes: "alpine:3.10", "debian:12", "ubuntu:18.04",
// "almalinux:8", "rocky:9". Rolling distributions have no release ("wolfi").

// languages maps lower-case ecosystem names and purl types to the OSV name.
var languages = map[string]string{
	"go": "Go", "golang": "Go",
	"npm":  "npm",
	"pypi": "PyPI", "python": "PyPI",
	"maven":     "Maven",
	"crates.io": "crates.io", "cargo": "crates.io",
	"rubygems": "RubyGems", "gem": "RubyGems",
	"packagist": "Packagist", "composer": "Packagist",
	"nuget":    "NuGet",
	"hex":      "Hex",
	"pub":      "Pub",
	"swifturl": "SwiftURL", "swift": "SwiftURL",
	"hackage":        "Hackage",
	"cran":           "CRAN",
	"bioconductor":   "Bioconductor",
	"conancenter":    "ConanCenter",
	"github actions": "GitHub Actions",
	"bitnami":        "Bitnami",
	"julia":          "Julia",
	"opam":           "opam",
	"vscode":         "VSCode",
	"linux":          "Linux",
	"android":        "Android",
	"oss-fuzz":       "OSS-Fuzz",
}

// distros maps lower-case OSV distribution ecosystem names and os-release
// IDs to lading's distribution names.
var distros = map[string]string{
	"alpine": "alpine", "debian": "debian", "ubuntu": "ubuntu",
	"almalinux": "almalinux", "rocky linux": "rocky", "rocky": "rocky",
	"red hat": "redhat", "redhat": "redhat", "rhel": "redhat",
	"photon os": "photon", "photon": "photon",
	"azure linux": "azurelinux", "azurelinux": "azurelinux",
	"mariner": "mariner", "cbl-mariner": "mariner",
	"wolfi": "wolfi", "chainguard": "chainguard",
	"mageia": "mageia", "opensuse": "opensuse", "suse": "suse", "sles": "suse",
	"openeuler": "openeuler", "amazon": "amazon", "amzn": "amazon",
	"oracle": "oracle", "ol": "oracle", "centos": "centos", "fedora": "fedora",
	"alpaquita": "alpaquita", "minimos": "minimos", "echo": "echo",
}

// Codenames of Debian and Ubuntu releases, as their trackers name them.
var (
	debianCodenames = map[string]string{
		"buzz": "1.1", "rex": "1.2", "bo": "1.3", "hamm": "2.0", "slink": "2.1", "potato": "2.2",
		"woody": "3.0", "sarge": "3.1", "etch": "4", "lenny": "5", "squeeze": "6", "wheezy": "7",
		"jessie": "8", "stretch": "9", "buster": "10", "bullseye": "11", "bookworm": "12",
		"trixie": "13", "forky": "14", "duke": "15",
	}
	ubuntuCodenames = map[string]string{
		"warty": "4.10", "hoary": "5.04", "breezy": "5.10", "dapper": "6.06", "edgy": "6.10",
		"feisty": "7.04", "gutsy": "7.10", "hardy": "8.04", "intrepid": "8.10", "jaunty": "9.04",
		"karmic": "9.10", "lucid": "10.04", "maverick": "10.10", "natty": "11.04", "oneiric": "11.10",
		"precise": "12.04", "quantal": "12.10", "raring": "13.04", "saucy": "13.10", "trusty": "14.04",
		"utopic": "14.10", "vivid": "15.04", "wily": "15.10", "xenial": "16.04", "yakkety": "16.10",
		"zesty": "17.04", "artful": "17.10", "bionic": "18.04", "cosmic": "18.10", "disco": "19.04",
		"eoan": "19.10", "focal": "20.04", "groovy": "20.10", "hirsute": "21.04", "impish": "21.10",
		"jammy": "22.04", "kinetic": "22.10", "lunar": "23.04", "mantic": "23.10", "noble": "24.04",
		"oracular": "24.10", "plucky": "25.04", "questing": "25.10", "resolute": "26.04",
	}
)

// DebianRelease returns the release number of a Debian codename ("bookworm"
// → "12").
func DebianRelease(codename string) (string, bool) {
	r, ok := debianCodenames[strings.ToLower(codename)]
	return r, ok
}

// UbuntuRelease returns the release number of an Ubuntu codename ("bionic"
// → "18.04").
func UbuntuRelease(codename string) (string, bool) {
	r, ok := ubuntuCodenames[strings.ToLower(codename)]
	return r, ok
}

var (
	majorMinor = regexp.MustCompile(`^v?(\d+)\.(\d+)`)
	major      = regexp.MustCompile(`^(\d+)`)
)

// DistroNamespace returns the namespace of a distribution release from its
// os-release ID and VERSION_ID (or a codename): ("alpine", "3.10.4") →
// "alpine:3.10", ("debian", "12") → "debian:12", ("ubuntu", "bionic") →
// "ubuntu:18.04", ("rocky", "9.3") → "rocky:9".
func DistroNamespace(id, release string) string {
	d, ok := distros[strings.ToLower(strings.TrimSpace(id))]
	if !ok {
		d = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(id)), " ", "-")
	}
	r := strings.ToLower(strings.TrimSpace(release))
	switch d {
	case "alpine":
		if m := majorMinor.FindStringSubmatch(r); m != nil {
			r = m[1] + "." + m[2]
		}
	case "debian":
		if c, ok := debianCodenames[r]; ok {
			r = c
		} else if m := majorMinor.FindStringSubmatch(r); m != nil && (m[1] == "1" || m[1] == "2" || m[1] == "3") {
			r = m[1] + "." + m[2]
		} else if m := major.FindStringSubmatch(r); m != nil {
			r = m[1]
		}
	case "ubuntu":
		if c, ok := ubuntuCodenames[r]; ok {
			r = c
		} else if m := majorMinor.FindStringSubmatch(r); m != nil {
			r = m[1] + "." + m[2]
		}
	case "almalinux", "rocky", "redhat", "centos", "oracle", "amazon", "fedora":
		if m := major.FindStringSubmatch(r); m != nil {
			r = m[1]
		}
	}
	if r == "" {
		return d
	}
	return d + ":" + strings.ReplaceAll(r, " ", "-")
}

// Namespace returns the namespace of an OSV ecosystem ("Alpine:v3.16" →
// "alpine:3.16", "Ubuntu:22.04:LTS" → "ubuntu:22.04", "Rocky Linux:9" →
// "rocky:9", "PyPI" → "PyPI", "Maven:https://maven.google.com/" → "Maven")
// or normalizes a namespace lading already uses ("pypi" → "PyPI",
// "alpine:3.10.4" → "alpine:3.10"). Ubuntu Pro (ESM) releases get their
// own namespace, "ubuntu-pro:18.04", since their fixes need a subscription.
func Namespace(ecosystem string) string {
	eco := strings.TrimSpace(ecosystem)
	base, rest, hasRest := strings.Cut(eco, ":")
	lb := strings.ToLower(base)
	if l, ok := languages[lb]; ok {
		return l
	}
	d, ok := distros[lb]
	if !ok {
		if !hasRest {
			return eco
		}
		d = strings.ReplaceAll(lb, " ", "-")
	}
	if d == "ubuntu" {
		// "Ubuntu:22.04:LTS", "Ubuntu:Pro:18.04:LTS", "Ubuntu:24.10".
		pro, release := false, ""
		for _, p := range strings.Split(rest, ":") {
			switch strings.ToLower(p) {
			case "lts", "":
			case "pro":
				pro = true
			default:
				release = p
			}
		}
		ns := DistroNamespace("ubuntu", release)
		if pro {
			return "ubuntu-pro" + strings.TrimPrefix(ns, "ubuntu")
		}
		return ns
	}
	return DistroNamespace(d, rest)
}

// IsDistro reports whether a namespace is a distribution's (its packages are
// OS packages and its own severity ratings come first).
func IsDistro(namespace string) bool {
	base, _, _ := strings.Cut(namespace, ":")
	if base == "ubuntu-pro" {
		return true
	}
	_, ok := distros[strings.ToLower(base)]
	return ok
}

// Distro returns a namespace's distribution ("alpine:3.10" → "alpine"), or
// "" for a language ecosystem.
func Distro(namespace string) string {
	if !IsDistro(namespace) {
		return ""
	}
	base, _, _ := strings.Cut(namespace, ":")
	if d, ok := distros[strings.ToLower(base)]; ok {
		return d
	}
	return base // ubuntu-pro
}

// NormalizeName returns a package name as the namespace's registry compares
// names: PyPI names per PEP 503 (lower case, runs of "-", "_" and "."
// as one "-"), NuGet and Packagist names in lower case; others unchanged.
func NormalizeName(namespace, name string) string {
	name = strings.TrimSpace(name)
	switch namespace {
	case "PyPI":
		return pep503(name)
	case "NuGet", "Packagist":
		return strings.ToLower(name)
	}
	return name
}

func pep503(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	sep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}
