package sbom

import (
	"fmt"
	"io"
	"net/url"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/pkg"
)

const noAssertion = "NOASSERTION"

// SPDX writes inv as an SPDX 2.3 JSON document: the document describes the
// image (a package of purpose CONTAINER), which CONTAINS the OS (purpose
// OPERATING-SYSTEM) and every package (purpose LIBRARY).
func SPDX(w io.Writer, img Image, inv *analyze.Inventory, o Options) error {
	doc, err := SPDXDocument(img, inv, o)
	if err != nil {
		return err
	}
	return EncodeSPDX(w, doc)
}

// EncodeSPDX writes doc as SPDX 2.3 JSON.
func EncodeSPDX(w io.Writer, doc *spdx.Document) error {
	return spdxjson.Write(doc, w, spdxjson.Indent("  "), spdxjson.EscapeHTML(false))
}

// SPDXDocument builds the document SPDX writes. Package elements have the
// identifiers "Package-1", "Package-2"... in inventory order.
func SPDXDocument(img Image, inv *analyze.Inventory, o Options) (*spdx.Document, error) {
	o = o.normalize()
	name := img.Name
	if name == "" {
		name = "image"
	}
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      name,
		DocumentNamespace: "https://lading.dev/spdx/" + url.PathEscape(name) + "-" + o.Serial,
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: o.ToolName + "-" + o.ToolVersion}},
			Created:  o.Time.Format("2006-01-02T15:04:05Z"),
		},
	}
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
	doc.Packages = append(doc.Packages, imgPkg)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", "Image"), Relationship: common.TypeRelationshipDescribe,
	})
	contain := func(id common.ElementID) {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", "Image"), RefB: common.MakeDocElementID("", string(id)), Relationship: common.TypeRelationshipContains,
		})
	}
	if inv.OS != nil {
		p := &spdx.Package{
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
		}
		doc.Packages = append(doc.Packages, p)
		contain(p.PackageSPDXIdentifier)
	}
	n := 0
	for _, t := range inv.Targets {
		for i := range t.Packages {
			p := &t.Packages[i]
			n++
			sp := &spdx.Package{
				PackageName:             p.Name,
				PackageSPDXIdentifier:   common.ElementID(fmt.Sprintf("Package-%d", n)),
				PackageVersion:          p.Version,
				PackageDownloadLocation: noAssertion,
				PackageLicenseConcluded: noAssertion,
				PackageLicenseDeclared:  spdxDeclared(doc, refs, p.Licenses),
				PackageCopyrightText:    noAssertion,
				PrimaryPackagePurpose:   "LIBRARY",
				PackageSourceInfo:       sourceInfo(p, t),
			}
			if p.PURL != "" {
				sp.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: p.PURL}}
			}
			if len(p.Licenses) > 0 {
				sp.PackageLicenseComments = "as declared: " + strings.Join(p.Licenses, "; ")
			}
			doc.Packages = append(doc.Packages, sp)
			contain(sp.PackageSPDXIdentifier)
		}
	}
	return doc, nil
}

func sourceInfo(p *pkg.Package, t analyze.Target) string {
	s := fmt.Sprintf("%s package from %s (target %s, %s)", p.Ecosystem, p.Location, t.Path, t.Type)
	if p.Source != nil {
		s += fmt.Sprintf("; source package %s %s", p.Source.Name, p.Source.Version)
	}
	if p.Layer != nil {
		s += fmt.Sprintf("; introduced by layer %d (%s), last changed by layer %d (%s)",
			p.Layer.Introduced.Index, p.Layer.Introduced.DiffID, p.Layer.Changed.Index, p.Layer.Changed.DiffID)
	}
	return s
}

// spdxDeclared returns the declared license expression of licenses: each
// an SPDX expression or a LicenseRef whose extracted text is the name,
// joined with AND.
func spdxDeclared(doc *spdx.Document, refs *licenseRefs, licenses []string) string {
	if len(licenses) == 0 {
		return noAssertion
	}
	var parts []string
	for _, raw := range licenses {
		l := classify(raw)
		expr := l.expr
		if expr == "" {
			expr = refFor(doc, refs, raw)
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
}

func refFor(doc *spdx.Document, refs *licenseRefs, name string) string {
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
	doc.OtherLicenses = append(doc.OtherLicenses, &spdx.OtherLicense{
		LicenseIdentifier: r, ExtractedText: name, LicenseName: name,
	})
	return r
}
