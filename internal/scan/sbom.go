package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/pkg"
)

// maxSBOM bounds the size of an SBOM read whole.
const maxSBOM = 256 << 20

// FromSBOM reads a CycloneDX or SPDX JSON document (told apart by content)
// and returns the inventory it describes. Packages come from package URLs;
// the OS from an operating-system component (CycloneDX) or package (SPDX),
// else from the distro qualifier of OS package URLs. A package's source
// package, declaring file and layer come from properties when the document
// has them (lading's own SBOMs, Trivy's and syft's do); without a declaring
// file, packages are grouped by ecosystem.
func FromSBOM(r io.Reader, name string) (*analyze.Inventory, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSBOM+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxSBOM {
		return nil, errdefs.TooLarge(fmt.Errorf("%s: over %d bytes", name, maxSBOM))
	}
	var head struct {
		BOMFormat   string `json:"bomFormat"`
		SPDXVersion string `json:"spdxVersion"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: not a JSON SBOM: %w", name, err))
	}
	var c collector
	switch {
	case head.BOMFormat == "CycloneDX":
		err = c.cyclonedx(b)
	case strings.HasPrefix(head.SPDXVersion, "SPDX-"):
		err = c.spdx(b)
	default:
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: neither CycloneDX (bomFormat) nor SPDX (spdxVersion) JSON", name))
	}
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: %w", name, err))
	}
	return c.inventory(), nil
}

type collector struct {
	os   *pkg.OS
	pkgs []pkg.Package
}

func (c *collector) cyclonedx(b []byte) error {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return fmt.Errorf("CycloneDX: %w", err)
	}
	var walk func(cs []cdx.Component)
	walk = func(cs []cdx.Component) {
		for _, comp := range cs {
			props := map[string]string{}
			if comp.Properties != nil {
				for _, p := range *comp.Properties {
					props[strings.ToLower(p.Name)] = p.Value
				}
			}
			if comp.Type == cdx.ComponentTypeOS && c.os == nil {
				c.os = &pkg.OS{ID: strings.ToLower(comp.Name), VersionID: comp.Version}
			} else if comp.PackageURL != "" {
				c.add(comp.PackageURL, props)
			}
			if comp.Components != nil {
				walk(*comp.Components)
			}
		}
	}
	if bom.Metadata != nil && bom.Metadata.Component != nil && bom.Metadata.Component.Type == cdx.ComponentTypeOS {
		walk([]cdx.Component{*bom.Metadata.Component})
	}
	if bom.Components != nil {
		walk(*bom.Components)
	}
	return nil
}

func (c *collector) spdx(b []byte) error {
	doc, err := spdxjson.Read(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("SPDX: %w", err)
	}
	for _, p := range doc.Packages {
		if p.PrimaryPackagePurpose == "OPERATING-SYSTEM" && c.os == nil {
			c.os = &pkg.OS{ID: strings.ToLower(p.PackageName), VersionID: p.PackageVersion}
			continue
		}
		props := map[string]string{}
		if p.PackageSourceInfo != "" {
			props["sourceinfo"] = p.PackageSourceInfo
		}
		for _, a := range p.Annotations {
			// lading and Trivy write "key: value" annotations.
			if k, v, ok := strings.Cut(a.AnnotationComment, ":"); ok {
				props[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		for _, ref := range p.PackageExternalReferences {
			if ref.RefType == "purl" {
				c.add(ref.Locator, props)
			}
		}
	}
	return nil
}

// prop returns the first property whose name ends in one of the suffixes.
func prop(props map[string]string, suffixes ...string) string {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, s := range suffixes {
		for _, k := range keys {
			if strings.HasSuffix(k, s) && props[k] != "" {
				return props[k]
			}
		}
	}
	return ""
}

// add turns a package URL (and what properties say) into a package.
func (c *collector) add(purl string, props map[string]string) {
	u, err := packageurl.FromString(purl)
	if err != nil || u.Name == "" {
		return
	}
	q := u.Qualifiers.Map()
	p := pkg.Package{Name: u.Name, Version: u.Version, PURL: purl, Arch: q["arch"]}
	switch u.Type {
	case packageurl.TypeApk:
		p.Ecosystem = pkg.Apk
	case packageurl.TypeDebian:
		p.Ecosystem = pkg.Deb
	case packageurl.TypeRPM:
		p.Ecosystem = pkg.RPM
		if e := q["epoch"]; e != "" && e != "0" {
			p.Version = e + ":" + p.Version
		}
	case packageurl.TypeNPM:
		p.Ecosystem = pkg.Npm
		if u.Namespace != "" {
			p.Name = u.Namespace + "/" + u.Name
		}
	case packageurl.TypePyPi:
		p.Ecosystem = pkg.PyPI
	case packageurl.TypeGolang:
		p.Ecosystem = pkg.Go
		if u.Namespace != "" {
			p.Name = u.Namespace + "/" + u.Name
		}
	case packageurl.TypeMaven:
		p.Ecosystem = pkg.Maven
		if u.Namespace != "" {
			p.Name = u.Namespace + ":" + u.Name
		}
	case packageurl.TypeGem:
		p.Ecosystem = pkg.RubyGems
	case packageurl.TypeCargo:
		p.Ecosystem = pkg.Cargo
	case packageurl.TypeComposer:
		p.Ecosystem = pkg.Packagist
		if u.Namespace != "" {
			p.Name = u.Namespace + "/" + u.Name
		}
	case packageurl.TypeNuget:
		p.Ecosystem = pkg.NuGet
	default:
		return
	}
	src := pkg.Source{
		Name:    prop(props, "source:name", "srcname", "source-name"),
		Version: prop(props, "source:version", "srcversion", "source-version"),
	}
	if src.Name == "" {
		src.Name = q["upstream"]
		if p.Ecosystem == pkg.RPM && strings.HasSuffix(src.Name, ".src.rpm") {
			src.Name, src.Version = splitSRPM(src.Name)
		}
	}
	if src.Name != "" {
		p.Source = &src
	}
	p.Location = prop(props, "location", "filepath", "file:path")
	if p.Ecosystem.IsOS() && c.os == nil {
		if d := q["distro"]; d != "" {
			id, ver, _ := strings.Cut(d, "-")
			if ver == "" { // Trivy writes only the version
				id, ver = u.Namespace, d
			}
			c.os = &pkg.OS{ID: id, VersionID: ver}
		}
	}
	c.pkgs = append(c.pkgs, p)
}

// splitSRPM splits "util-linux-2.32.1-42.el8_8.src.rpm" into name and
// version-release.
func splitSRPM(s string) (string, string) {
	s = strings.TrimSuffix(s, ".src.rpm")
	i := strings.LastIndex(s, "-")
	if i <= 0 {
		return s, ""
	}
	j := strings.LastIndex(s[:i], "-")
	if j <= 0 {
		return s, ""
	}
	return s[:j], s[j+1:]
}

// inventory groups the packages into targets.
func (c *collector) inventory() *analyze.Inventory {
	inv := &analyze.Inventory{OS: c.os}
	if inv.OS != nil {
		inv.OS.Family = pkg.Family(inv.OS.ID)
	}
	idx := map[string]int{}
	for _, p := range c.pkgs {
		class := analyze.ClassLang
		if p.Ecosystem.IsOS() {
			class = analyze.ClassOS
		}
		key := p.Location
		if key == "" || class == analyze.ClassOS {
			key = string(p.Ecosystem)
		}
		i, ok := idx[key]
		if !ok {
			i = len(inv.Targets)
			idx[key] = i
			inv.Targets = append(inv.Targets, analyze.Target{Path: key, Type: string(p.Ecosystem), Class: class})
		}
		inv.Targets[i].Packages = append(inv.Targets[i].Packages, p)
	}
	slices.SortStableFunc(inv.Targets, func(a, b analyze.Target) int {
		if (a.Class == analyze.ClassOS) != (b.Class == analyze.ClassOS) {
			if a.Class == analyze.ClassOS {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	return inv
}
