// Package version compares package versions the way each ecosystem's own
// tools compare them.
//
// There is one Comparator per versioning scheme. Each one is a thin wrapper
// around an established implementation of that scheme (dpkg, apk, rpm,
// semver, npm, PEP 440, Maven, RubyGems, Go modules), so that lading orders
// versions exactly as dpkg, apk, rpm, pip, npm, mvn, gem and go do; the tests
// check them against those tools where they are installed.
//
// Ranges (introduced, fixed, last affected) are evaluated by the caller, which
// only needs Compare. Constraint expressions as npm writes them (">=1.2.3
// <2 || 3.x") are evaluated by NPMSatisfies.
package version

import (
	"cmp"
	"fmt"
	"strings"

	deb "github.com/knqyf263/go-deb-version"
	rpm "github.com/knqyf263/go-rpm-version"

	"github.com/Masterminds/semver/v3"
	gover "github.com/aquasecurity/go-version/pkg/version"

	gem "github.com/aquasecurity/go-gem-version"
	npm "github.com/aquasecurity/go-npm-version/pkg"
	pep440 "github.com/aquasecurity/go-pep440-version"
	mvn "github.com/masahiro331/go-mvn-version"
	modsemver "golang.org/x/mod/semver"

	"github.com/lading-dev/lading/internal/errdefs"
)

// A Comparator orders the versions of one scheme.
type Comparator interface {
	// Compare returns -1 when a sorts before b, 0 when they are equal and
	// +1 when a sorts after b. The error, of class
	// errdefs.ErrInvalidArgument, names the version that the scheme cannot
	// parse.
	Compare(a, b string) (int, error)
	// Scheme names the scheme ("dpkg", "npm", ...).
	Scheme() Scheme
}

// Scheme names a versioning scheme.
type Scheme string

// The schemes.
const (
	Dpkg     Scheme = "dpkg"     // Debian, Ubuntu
	APK      Scheme = "apk"      // Alpine, Wolfi, Chainguard
	RPM      Scheme = "rpm"      // RHEL family, SUSE, Mageia, Photon, Azure Linux
	SemVer   Scheme = "semver"   // Semantic Versioning 2.0 (OSV ranges of type SEMVER, crates.io, ...)
	NPM      Scheme = "npm"      // node-semver
	PEP440   Scheme = "pep440"   // PyPI
	Maven    Scheme = "maven"    // Maven's ComparableVersion
	RubyGems Scheme = "rubygems" // Gem::Version
	Go       Scheme = "go"       // Go modules (semver with a v, +incompatible, pseudo-versions) and Go releases (go1.21.3)
	Generic  Scheme = "generic"  // dotted numbers with pre-release tags, for ecosystems without a scheme of their own
)

// Schemes lists every scheme.
var Schemes = []Scheme{Dpkg, APK, RPM, SemVer, NPM, PEP440, Maven, RubyGems, Go, Generic}

// For returns the comparator of a scheme. An unknown scheme gets Generic.
func For(s Scheme) Comparator {
	switch s {
	case Dpkg:
		return dpkgCmp
	case APK:
		return apkCmp
	case RPM:
		return rpmCmp
	case SemVer:
		return semverCmp
	case NPM:
		return npmCmp
	case PEP440:
		return pep440Cmp
	case Maven:
		return mavenCmp
	case RubyGems:
		return gemCmp
	case Go:
		return goCmp
	}
	return genericCmp
}

// SchemeOf returns the scheme an ecosystem uses. eco is an OSV ecosystem
// name ("PyPI", "Debian:12", "Rocky Linux:9") or a lading namespace
// ("pypi", "debian:12", "alpine:3.20"); only the part before the first colon
// matters and case is ignored. Ecosystems without a known scheme get Generic.
func SchemeOf(eco string) Scheme {
	if i := strings.IndexByte(eco, ':'); i >= 0 {
		eco = eco[:i]
	}
	switch strings.ToLower(strings.TrimSpace(eco)) {
	case "go", "golang":
		return Go
	case "npm":
		return NPM
	case "pypi":
		return PEP440
	case "maven":
		return Maven
	case "rubygems":
		return RubyGems
	case "crates.io", "cargo", "hex", "pub", "swifturl", "github actions", "bitnami":
		return SemVer
	case "debian", "ubuntu":
		return Dpkg
	case "alpine", "wolfi", "chainguard":
		return APK
	case "almalinux", "rocky linux", "rocky", "red hat", "redhat", "rhel", "centos", "fedora",
		"opensuse", "suse", "sles", "mageia", "photon os", "photon", "azure linux", "azurelinux",
		"mariner", "cbl-mariner", "amazon", "amzn", "oracle", "ol", "openeuler":
		return RPM
	}
	return Generic
}

func invalid(s Scheme, v string, err error) error {
	if err == nil {
		return errdefs.InvalidArgument(fmt.Errorf("%s version %q: not valid", s, v))
	}
	return errdefs.InvalidArgument(fmt.Errorf("%s version %q: %v", s, v, err))
}

// scheme is a Comparator made of a parser and a comparison of parsed
// versions.
type scheme[V any] struct {
	name    Scheme
	parse   func(string) (V, error)
	compare func(V, V) int
}

func (s scheme[V]) Scheme() Scheme { return s.name }

func (s scheme[V]) Compare(a, b string) (int, error) {
	va, err := s.parse(a)
	if err != nil {
		return 0, invalid(s.name, a, err)
	}
	vb, err := s.parse(b)
	if err != nil {
		return 0, invalid(s.name, b, err)
	}
	return cmp.Compare(s.compare(va, vb), 0), nil
}

func (s scheme[V]) cached() Comparator {
	return &cachedScheme[V]{scheme: s, memo: map[string]parsed[V]{}}
}

type parsed[V any] struct {
	v   V
	err error
}

// cachedScheme remembers parsed versions.
type cachedScheme[V any] struct {
	scheme[V]
	memo map[string]parsed[V]
}

func (c *cachedScheme[V]) get(s string) (V, error) {
	p, ok := c.memo[s]
	if !ok {
		if len(c.memo) >= 1<<16 {
			clear(c.memo)
		}
		v, err := c.parse(s)
		if err != nil {
			err = invalid(c.name, s, err)
		}
		p = parsed[V]{v, err}
		c.memo[s] = p
	}
	return p.v, p.err
}

func (c *cachedScheme[V]) Compare(a, b string) (int, error) {
	va, err := c.get(a)
	if err != nil {
		return 0, err
	}
	vb, err := c.get(b)
	if err != nil {
		return 0, err
	}
	return cmp.Compare(c.compare(va, vb), 0), nil
}

// Cached returns a comparator that parses each version once, for many
// comparisons of the same versions (building a database, matching an
// image's packages). It is not safe for concurrent use.
func Cached(c Comparator) Comparator {
	if s, ok := c.(interface{ cached() Comparator }); ok {
		return s.cached()
	}
	return c
}

var (
	dpkgCmp = scheme[deb.Version]{Dpkg, deb.NewVersion, func(x, y deb.Version) int { return x.Compare(y) }}
	apkCmp  = scheme[[]apkToken]{APK, apkParse, apkCompare}
	rpmCmp  = scheme[rpm.Version]{RPM, func(v string) (rpm.Version, error) {
		// rpm accepts any string; only an empty one says nothing.
		if strings.TrimSpace(v) == "" {
			return rpm.Version{}, fmt.Errorf("empty")
		}
		return rpm.NewVersion(v), nil
	}, func(x, y rpm.Version) int { return x.Compare(y) }}
	semverCmp  = scheme[*semver.Version]{SemVer, semver.NewVersion, func(x, y *semver.Version) int { return x.Compare(y) }}
	npmCmp     = scheme[npm.Version]{NPM, npm.NewVersion, func(x, y npm.Version) int { return x.Compare(y) }}
	pep440Cmp  = scheme[pep440.Version]{PEP440, pep440.Parse, func(x, y pep440.Version) int { return x.Compare(y) }}
	mavenCmp   = scheme[mvn.Version]{Maven, mvn.NewVersion, func(x, y mvn.Version) int { return x.Compare(y) }}
	gemCmp     = scheme[gem.Version]{RubyGems, gem.NewVersion, func(x, y gem.Version) int { return x.Compare(y) }}
	genericCmp = scheme[gover.Version]{Generic, gover.Parse, func(x, y gover.Version) int { return x.Compare(y) }}
	goCmp      = scheme[string]{Go, CanonicalGo, modsemver.Compare}
)

// CanonicalGo returns v as a Go module version with its leading "v": module
// versions with or without the "v" ("1.2.3", "v2.0.0+incompatible",
// "v0.0.0-20211112202133-69e39bad7dc2") and Go release names ("go1.21.3",
// "go1.21", "go1.21rc2", as the OSV "stdlib" and "toolchain" packages are
// matched) are accepted. Build metadata such as +incompatible is kept and,
// as the go command does, ignored when comparing.
func CanonicalGo(v string) (string, error) {
	s := strings.TrimSpace(v)
	if strings.HasPrefix(s, "go1") {
		s = goRelease(s[2:])
	} else if !strings.HasPrefix(s, "v") {
		s = "v" + s
	}
	if !modsemver.IsValid(s) {
		return "", fmt.Errorf("not a Go module version")
	}
	return s, nil
}

// goRelease turns a Go release name without its "go" ("1.21", "1.21.3",
// "1.21rc2", "1.9beta1") into a semantic version ("v1.21.0", "v1.21.3",
// "v1.21.0-rc.2", "v1.9.0-beta.1").
func goRelease(s string) string {
	pre := ""
	for _, tag := range []string{"rc", "beta", "alpha"} {
		if i := strings.Index(s, tag); i > 0 {
			pre = "-" + tag + "." + s[i+len(tag):]
			s = s[:i]
			break
		}
	}
	if strings.Count(s, ".") == 1 {
		s += ".0"
	}
	return "v" + s + pre
}

// NPMSatisfies reports whether version v satisfies the npm range expression
// constraint (">=1.2.3 <2.0.0 || ^3.1", "<=1.0.0", "*"), with node-semver's
// rules: a pre-release only satisfies a comparator set that names a
// pre-release of the same major.minor.patch.
func NPMSatisfies(constraint, v string) (bool, error) {
	c, err := npm.NewConstraints(strings.TrimSpace(constraint))
	if err != nil {
		return false, errdefs.InvalidArgument(fmt.Errorf("npm range %q: %v", constraint, err))
	}
	ver, err := npm.NewVersion(v)
	if err != nil {
		return false, invalid(NPM, v, err)
	}
	return c.Check(ver), nil
}
