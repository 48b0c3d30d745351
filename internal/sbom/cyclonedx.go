package sbom

import (
	"fmt"
	"io"
	"strconv"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/pkg"
)

// CycloneDX writes inv as a CycloneDX 1.6 JSON BOM: the image as the
// metadata component (a container), the OS as an operating-system
// component, every package as a library component, and a dependency graph
// in which the image contains them all.
func CycloneDX(w io.Writer, img Image, inv *analyze.Inventory, o Options) error {
	return EncodeCycloneDX(w, CycloneDXBOM(img, inv, o))
}

// EncodeCycloneDX writes bom as CycloneDX 1.6 JSON.
func EncodeCycloneDX(w io.Writer, bom *cdx.BOM) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	enc.SetEscapeHTML(false)
	return enc.EncodeVersion(bom, cdx.SpecVersion1_6)
}

// CycloneDXBOM builds the BOM CycloneDX writes. Package components have
// the bom-refs "pkg-1", "pkg-2"... in inventory order.
func CycloneDXBOM(img Image, inv *analyze.Inventory, o Options) *cdx.BOM {
	o = o.normalize()
	bom := cdx.NewBOM()
	bom.SpecVersion = cdx.SpecVersion1_6
	bom.SerialNumber = "urn:uuid:" + o.Serial
	root := cdx.Component{
		BOMRef:  "image",
		Type:    cdx.ComponentTypeContainer,
		Name:    img.Name,
		Version: img.Digest,
	}
	var rootProps []cdx.Property
	addProp(&rootProps, "lading:image:id", img.ID)
	addProp(&rootProps, "lading:image:platform", img.Platform)
	for _, l := range inv.Layers {
		addProp(&rootProps, "lading:layer:"+strconv.Itoa(l.Index)+":diff_id", l.DiffID)
	}
	setProps(&root, rootProps)
	bom.Metadata = &cdx.Metadata{
		Timestamp: o.Time.Format("2006-01-02T15:04:05Z"),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: o.ToolName, Version: o.ToolVersion,
		}}},
		Component: &root,
	}
	var comps []cdx.Component
	var refs []string
	if inv.OS != nil {
		c := cdx.Component{BOMRef: "os", Type: cdx.ComponentTypeOS, Name: inv.OS.ID, Version: inv.OS.VersionID, Description: inv.OS.Name}
		var props []cdx.Property
		addProp(&props, "lading:os:family", inv.OS.Family)
		addProp(&props, "lading:os:codename", inv.OS.Codename)
		addProp(&props, "lading:os:source", inv.OS.Source)
		if inv.OS.Distroless {
			addProp(&props, "lading:os:distroless", "true")
		}
		setProps(&c, props)
		comps = append(comps, c)
		refs = append(refs, c.BOMRef)
	}
	n := 0
	for _, t := range inv.Targets {
		for _, p := range t.Packages {
			n++
			c := component(&p, t, fmt.Sprintf("pkg-%d", n))
			comps = append(comps, c)
			refs = append(refs, c.BOMRef)
		}
	}
	bom.Components = &comps
	bom.Dependencies = &[]cdx.Dependency{{Ref: root.BOMRef, Dependencies: &refs}}
	return bom
}

func component(p *pkg.Package, t analyze.Target, ref string) cdx.Component {
	c := cdx.Component{
		BOMRef:     ref,
		Type:       cdx.ComponentTypeLibrary,
		Name:       p.Name,
		Version:    p.Version,
		PackageURL: p.PURL,
	}
	if ls := cdxLicenses(p.Licenses); ls != nil {
		c.Licenses = ls
	}
	var props []cdx.Property
	addProp(&props, "lading:ecosystem", string(p.Ecosystem))
	addProp(&props, "lading:target", t.Path)
	addProp(&props, "lading:target:type", t.Type)
	addProp(&props, "lading:location", p.Location)
	addProp(&props, "lading:arch", p.Arch)
	if p.Source != nil {
		addProp(&props, "lading:source:name", p.Source.Name)
		addProp(&props, "lading:source:version", p.Source.Version)
	}
	addProp(&props, "lading:modularity", p.Modularity)
	if p.Dev {
		addProp(&props, "lading:dev", "true")
	}
	if p.Layer != nil {
		addProp(&props, "lading:layer:introduced", strconv.Itoa(p.Layer.Introduced.Index))
		addProp(&props, "lading:layer:introduced:diff_id", p.Layer.Introduced.DiffID)
		addProp(&props, "lading:layer:changed", strconv.Itoa(p.Layer.Changed.Index))
		addProp(&props, "lading:layer:changed:diff_id", p.Layer.Changed.DiffID)
	}
	setProps(&c, props)
	return c
}

// cdxLicenses writes one SPDX expression when the package declares exactly
// one license and it is a compound expression; otherwise one license per
// string, by SPDX id when it is one, by name otherwise (CycloneDX does not
// allow expressions next to licenses).
func cdxLicenses(raws []string) *cdx.Licenses {
	if len(raws) == 0 {
		return nil
	}
	if len(raws) == 1 {
		if l := classify(raws[0]); l.id == "" && l.expr != "" {
			return &cdx.Licenses{{Expression: l.expr}}
		}
	}
	var out cdx.Licenses
	for _, r := range raws {
		l := classify(r)
		if l.id != "" {
			out = append(out, cdx.LicenseChoice{License: &cdx.License{ID: l.id}})
		} else {
			out = append(out, cdx.LicenseChoice{License: &cdx.License{Name: r}})
		}
	}
	return &out
}

func addProp(props *[]cdx.Property, name, value string) {
	if value != "" {
		*props = append(*props, cdx.Property{Name: name, Value: value})
	}
}

func setProps(c *cdx.Component, props []cdx.Property) {
	if len(props) > 0 {
		c.Properties = &props
	}
}
