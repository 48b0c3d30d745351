package sbom

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/report"
)

const noAssertion = "NOASSERTION"

// SPDX writes inv as an SPDX 2.3 JSON document: the document describes the
// image (a package of purpose CONTAINER), which CONTAINS the OS (purpose
// OPERATING-SYSTEM) and every package (purpose LIBRARY). A package found in
// several places is one SPDX package whose source information lists every
// place. Package elements have the identifiers "Package-1", "Package-2"...
// in inventory order.
//
// The document is written as it is made, package by package: memory does
// not grow with the size of the output.
func SPDX(w io.Writer, img Image, inv *analyze.Inventory, o Options) error {
	return WriteSPDX(w, img, inv, nil, o)
}

// WriteSPDX is SPDX with, when rep is not nil, a SECURITY external
// reference of type advisory on each package for each of its findings in
// the scan report made from the same inventory.
func WriteSPDX(w io.Writer, img Image, inv *analyze.Inventory, rep *report.Report, o Options) error {
	o = o.normalize()
	name := img.Name
	if name == "" {
		name = "image"
	}
	s := newStream(w)
	s.field("spdxVersion", spdx.Version)
	s.field("dataLicense", spdx.DataLicense)
	s.field("SPDXID", common.ElementID("DOCUMENT"))
	s.field("name", name)
	s.field("documentNamespace", "https://lading.dev/spdx/"+url.PathEscape(name)+"-"+o.Serial)
	s.field("creationInfo", &spdx.CreationInfo{
		Creators: []common.Creator{{CreatorType: "Tool", Creator: o.ToolName + "-" + o.ToolVersion}},
		Created:  o.Time.Format("2006-01-02T15:04:05Z"),
	})
	refs := &licenseRefs{byName: map[string]string{}, taken: map[string]bool{}}
	imgPkg := &spdx.Package{
		PackageName:             name,
		PackageSPDXIdentifier:   "Image",
		PackageVersion:          img.Digest,
		PackageDownloadLocation: noAssertion,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
		PackageCopyrightText:    noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
	}
	if img.ID != "" {
		imgPkg.PackageComment = "image ID " + img.ID
		if img.Platform != "" {
			imgPkg.PackageComment += ", platform " + img.Platform
		}
	}
	s.beginArray("packages")
	s.elem(imgPkg)
	if inv.OS != nil {
		s.elem(&spdx.Package{
			PackageName:             inv.OS.ID,
			PackageSPDXIdentifier:   "OperatingSystem",
			PackageVersion:          inv.OS.VersionID,
			PackageDownloadLocation: noAssertion,
			PackageLicenseConcluded: noAssertion,
			PackageLicenseDeclared:  noAssertion,
			PackageCopyrightText:    noAssertion,
			PrimaryPackagePurpose:   "OPERATING-SYSTEM",
			PackageDescription:      inv.OS.Name,
			PackageSourceInfo:       "release file " + inv.OS.Source,
		})
	}
	comps := components(inv)
	var advisories map[int][]*spdx.PackageExternalReference
	if rep != nil {
		advisories = spdxAdvisories(componentRefs(comps), rep)
	}
	for _, c := range comps {
		s.elem(spdxPackage(c, refs, advisories[c.n]))
	}
	s.end("]")
	if len(refs.others) > 0 {
		s.beginArray("hasExtractedLicensingInfos")
		for _, l := range refs.others {
			s.elem(l)
		}
		s.end("]")
	}
	s.beginArray("relationships")
	rel := func(a, b, typ string) {
		s.elem(&spdx.Relationship{RefA: common.MakeDocElementID("", a), RefB: common.MakeDocElementID("", b), Relationship: typ})
	}
	rel("DOCUMENT", "Image", common.TypeRelationshipDescribe)
	if inv.OS != nil {
		rel("Image", "OperatingSystem", common.TypeRelationshipContains)
	}
	for _, c := range comps {
		rel("Image", spdxID(c), common.TypeRelationshipContains)
	}
	s.end("]")
	return s.close()
}

func spdxID(c *component) string { return "Package-" + strconv.Itoa(c.n) }

func spdxPackage(c *component, refs *licenseRefs, advisories []*spdx.PackageExternalReference) *spdx.Package {
	p := c.p
	sp := &spdx.Package{
		PackageName:             p.Name,
		PackageSPDXIdentifier:   common.ElementID(spdxID(c)),
		PackageVersion:          p.Version,
		PackageDownloadLocation: noAssertion,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  spdxDeclared(refs, p.Licenses),
		PackageCopyrightText:    noAssertion,
		PrimaryPackagePurpose:   "LIBRARY",
		PackageSourceInfo:       sourceInfo(c),
	}
	if p.PURL != "" {
		sp.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: p.PURL}}
	}
	sp.PackageExternalReferences = append(sp.PackageExternalReferences, advisories...)
	if len(p.Licenses) > 0 {
		sp.PackageLicenseComments = "as declared: " + strings.Join(p.Licenses, "; ")
	}
	return sp
}

// sourceInfo says where the package was found: each place, its target and
// layers; and its source package.
func sourceInfo(c *component) string {
	p := c.p
	var places []string
	for _, pl := range c.places {
		places = append(places, pl.p.Location+" ("+placeContext(pl)+")")
	}
	s := fmt.Sprintf("%s package from %s", p.Ecosystem, strings.Join(places, ", "))
	if p.Source != nil {
		s += fmt.Sprintf("; source package %s %s", p.Source.Name, p.Source.Version)
	}
	return s
}

// spdxDeclared returns the declared license expression of licenses: each
// an SPDX expression or a LicenseRef whose extracted text is the name,
// joined with AND.
func spdxDeclared(refs *licenseRefs, licenses []string) string {
	if len(licenses) == 0 {
		return noAssertion
	}
	var parts []string
	for _, raw := range licenses {
		l := classify(raw)
		expr := l.expr
		if expr == "" {
			expr = refs.refFor(raw)
		}
		if len(licenses) > 1 && strings.Contains(expr, " ") {
			expr = "(" + expr + ")"
		}
		parts = append(parts, expr)
	}
	return strings.Join(parts, " AND ")
}

// licenseRefs are the LicenseRefs of a document, by license name.
type licenseRefs struct {
	byName map[string]string
	taken  map[string]bool
	others []*spdx.OtherLicense
}

func (refs *licenseRefs) refFor(name string) string {
	if r, ok := refs.byName[name]; ok {
		return r
	}
	base := licenseRef(name)
	if base == "LicenseRef" {
		base = "LicenseRef-unnamed"
	}
	r := base
	for i := 2; refs.taken[r]; i++ {
		r = fmt.Sprintf("%s-%d", base, i)
	}
	refs.byName[name], refs.taken[r] = r, true
	refs.others = append(refs.others, &spdx.OtherLicense{
		LicenseIdentifier: r, ExtractedText: name, LicenseName: name,
	})
	return r
}
