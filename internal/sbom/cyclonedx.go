package sbom

import (
	"fmt"
	"io"
	"strconv"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/report"
)

// CycloneDX writes inv as a CycloneDX 1.6 JSON BOM: the image as the
// metadata component (a container), the OS as an operating-system
// component, every package as a library component, and a dependency graph
// in which the image contains them all. A package found in several places
// (the inventory lists it once per declaring file) is one component, with
// every place as an evidence occurrence. Components have the bom-refs
// "pkg-1", "pkg-2"... in inventory order.
//
// The document is written as it is made, component by component: memory
// does not grow with the size of the output.
func CycloneDX(w io.Writer, img Image, inv *analyze.Inventory, o Options) error {
	return WriteCycloneDX(w, img, inv, nil, o)
}

// WriteCycloneDX is CycloneDX with, when rep is not nil, the findings of
// the scan report made from the same inventory as the BOM's
// vulnerabilities: one per ID, with the components it affects, its ratings,
// references, advisories and the fixed versions as a recommendation.
// Findings of removed packages are left out: their components are not in
// the BOM.
func WriteCycloneDX(w io.Writer, img Image, inv *analyze.Inventory, rep *report.Report, o Options) error {
	o = o.normalize()
	s := newStream(w)
	s.field("$schema", "http://cyclonedx.org/schema/bom-1.6.schema.json")
	s.field("bomFormat", cdx.BOMFormat)
	s.field("specVersion", "1.6")
	s.field("serialNumber", "urn:uuid:"+o.Serial)
	s.field("version", 1)
	root := cdx.Component{
		BOMRef:  "image",
		Type:    cdx.ComponentTypeContainer,
		Name:    img.Name,
		Version: img.Digest,
	}
	var rootProps []cdx.Property
	addProp(&rootProps, "lading:image:id", img.ID)
	addProp(&rootProps, "lading:image:platform", img.Platform)
	addProp(&rootProps, "lading:mode", inv.Mode)
	for _, l := range inv.Layers {
		addProp(&rootProps, "lading:layer:"+strconv.Itoa(l.Index)+":diff_id", l.DiffID)
	}
	setProps(&root, rootProps)
	s.field("metadata", &cdx.Metadata{
		Timestamp: o.Time.Format("2006-01-02T15:04:05Z"),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: o.ToolName, Version: o.ToolVersion,
		}}},
		Component: &root,
	})
	comps := components(inv)
	s.beginArray("components")
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
		s.elem(&c)
	}
	for _, c := range comps {
		s.elem(cdxComponent(c))
	}
	s.end("]")
	s.beginArray("dependencies")
	s.beginObject()
	s.field("ref", root.BOMRef)
	s.beginArray("dependsOn")
	if inv.OS != nil {
		s.elem("os")
	}
	for _, c := range comps {
		s.elem(cdxRef(c))
	}
	s.end("]")
	s.end("}")
	s.end("]")
	if rep != nil {
		if vs := cdxVulnerabilities(componentRefs(comps), rep); len(vs) > 0 {
			s.beginArray("vulnerabilities")
			for i := range vs {
				s.elem(&vs[i])
			}
			s.end("]")
		}
	}
	return s.close()
}

func cdxRef(c *component) string { return "pkg-" + strconv.Itoa(c.n) }

// cdxComponent describes one package: what its first record says, and
// every place it was found as an evidence occurrence whose additional
// context names the target and the layers. The lading:* properties are
// those of the first place.
func cdxComponent(c *component) *cdx.Component {
	p := c.p
	out := &cdx.Component{
		BOMRef:     cdxRef(c),
		Type:       cdx.ComponentTypeLibrary,
		Name:       p.Name,
		Version:    p.Version,
		PackageURL: p.PURL,
	}
	if ls := cdxLicenses(p.Licenses); ls != nil {
		out.Licenses = ls
	}
	t := c.places[0].target
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
	setProps(out, props)
	occ := make([]cdx.EvidenceOccurrence, 0, len(c.places))
	for _, pl := range c.places {
		occ = append(occ, cdx.EvidenceOccurrence{Location: pl.p.Location, AdditionalContext: placeContext(pl)})
	}
	out.Evidence = &cdx.Evidence{Occurrences: &occ}
	return out
}

// placeContext says where in the image a place is: its target and the
// layers that introduced and last changed the record there.
func placeContext(pl place) string {
	s := fmt.Sprintf("target %s (%s)", pl.target.Path, pl.target.Type)
	if a := pl.p.Layer; a != nil {
		s += fmt.Sprintf("; layer %d (%s)", a.Introduced.Index, a.Introduced.DiffID)
		if a.Changed.Index != a.Introduced.Index {
			s += fmt.Sprintf(", changed by layer %d (%s)", a.Changed.Index, a.Changed.DiffID)
		}
	}
	return s
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
