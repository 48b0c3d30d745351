package pkg

import (
	"slices"
	"strings"

	"github.com/package-url/packageurl-go"
)

// PURL returns the package URL of p. OS packages need the image's OS (for
// the namespace and the distro qualifier); os may be nil for language
// packages. It returns "" when p has no name.
//
//	pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3
//	pkg:deb/debian/libssl3@3.0.17-1~deb12u2?arch=amd64&distro=debian-12.15&upstream=openssl
//	pkg:rpm/redhat/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=rhel-8.1&upstream=util-linux-2.32.1-42.el8_8.src.rpm
//	pkg:npm/%40types/node@20.1.0
//	pkg:golang/github.com/gin-gonic/gin@v1.8.1
//	pkg:maven/com.fasterxml.jackson.core/jackson-core@2.14.1
func PURL(p *Package, os *OS) string {
	if p.Name == "" {
		return ""
	}
	var (
		typ, ns, name = "", "", p.Name
		version       = p.Version
		q             packageurl.Qualifiers
	)
	distro := func() {
		if os != nil && os.ID != "" {
			d := os.ID
			if os.VersionID != "" {
				d += "-" + os.VersionID
			}
			q = append(q, packageurl.Qualifier{Key: "distro", Value: d})
		}
	}
	arch := func() {
		if p.Arch != "" {
			q = append(q, packageurl.Qualifier{Key: "arch", Value: p.Arch})
		}
	}
	switch p.Ecosystem {
	case Apk:
		typ, ns = packageurl.TypeApk, osNamespace(os, "alpine")
		arch()
		distro()
	case Deb:
		typ, ns = packageurl.TypeDebian, osNamespace(os, "debian")
		arch()
		distro()
		if p.Source != nil && p.Source.Name != "" && p.Source.Name != p.Name {
			q = append(q, packageurl.Qualifier{Key: "upstream", Value: p.Source.Name})
		}
	case RPM:
		typ, ns = packageurl.TypeRPM, osNamespace(os, "")
		if e, rest, ok := strings.Cut(version, ":"); ok && isDigits(e) {
			version = rest
			q = append(q, packageurl.Qualifier{Key: "epoch", Value: e})
		}
		arch()
		distro()
		if p.Source != nil && p.Source.Name != "" {
			src := p.Source.Name
			if p.Source.Version != "" {
				src += "-" + p.Source.Version
			}
			q = append(q, packageurl.Qualifier{Key: "upstream", Value: src + ".src.rpm"})
		}
	case Npm:
		typ = packageurl.TypeNPM
		if strings.HasPrefix(name, "@") {
			ns, name, _ = strings.Cut(name, "/")
		}
	case PyPI:
		typ, name = packageurl.TypePyPi, NormalizePython(name)
	case Go:
		typ = packageurl.TypeGolang
		if i := strings.LastIndexByte(name, '/'); i > 0 {
			ns, name = name[:i], name[i+1:]
		}
	case Maven:
		typ = packageurl.TypeMaven
		if g, a, ok := strings.Cut(name, ":"); ok {
			ns, name = g, a
		}
	case RubyGems:
		typ = packageurl.TypeGem
	case Cargo:
		typ = packageurl.TypeCargo
	case Packagist:
		typ = packageurl.TypeComposer
		if v, n, ok := strings.Cut(name, "/"); ok {
			ns, name = v, n
		}
	case NuGet:
		typ = packageurl.TypeNuget
	default:
		typ = strings.ToLower(string(p.Ecosystem))
		if typ == "" {
			return ""
		}
	}
	slices.SortFunc(q, func(a, b packageurl.Qualifier) int { return strings.Compare(a.Key, b.Key) })
	return packageurl.NewPackageURL(typ, ns, name, version, q, "").ToString()
}

// osNamespace is the purl namespace of an OS's packages: its vendor.
func osNamespace(os *OS, def string) string {
	if os == nil || os.ID == "" {
		return def
	}
	switch os.ID {
	case "rhel":
		return "redhat"
	case "ol":
		return "oracle"
	case "amzn":
		return "amazon"
	case "sles", "sled", "sle-micro":
		return "suse"
	case "opensuse-leap", "opensuse-tumbleweed", "opensuse-microos":
		return "opensuse"
	}
	return os.ID
}

// NormalizePython returns a Python project name in its normalized form
// (PEP 503): lower case, runs of "-", "_" and "." as one "-".
func NormalizePython(name string) string {
	var b strings.Builder
	sep := false
	for _, r := range strings.ToLower(name) {
		if r == '-' || r == '_' || r == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteRune(r)
	}
	return b.String()
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
