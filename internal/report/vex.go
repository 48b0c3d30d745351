package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// VEX is a Vulnerability Exploitability eXchange document, OpenVEX or
// CycloneDX, reduced to what filtering needs: statements that a
// vulnerability does not affect (or is fixed in) some packages.
type VEX struct {
	Name       string
	Format     string // "openvex" or "cyclonedx"
	Statements []VEXStatement
}

// VEXStatement says a vulnerability's status for some packages.
type VEXStatement struct {
	Vulnerability string   // the ID
	Aliases       []string // other IDs the statement gives
	Status        string   // not_affected, fixed, affected, under_investigation (OpenVEX words)
	Justification string
	// Packages are the purls the statement is about; empty means every
	// package of the image (the product is the image itself).
	Packages []string
}

// suppresses reports whether a status removes findings.
func suppresses(status string) bool { return status == "not_affected" || status == "fixed" }

// Match returns a description of the statement that suppresses v, or "".
func (x *VEX) Match(v Finding) string {
	for _, s := range x.Statements {
		if !suppresses(s.Status) {
			continue
		}
		ids := append([]string{s.Vulnerability}, s.Aliases...)
		hit := false
		for _, id := range ids {
			if id != "" && matchesID(id, v) {
				hit = true
				break
			}
		}
		if !hit {
			continue
		}
		if len(s.Packages) == 0 {
			return describe(s)
		}
		for _, p := range s.Packages {
			if purlMatches(p, v.PkgPURL) {
				return describe(s)
			}
		}
	}
	return ""
}

func describe(s VEXStatement) string {
	if s.Justification != "" {
		return s.Status + " (" + s.Justification + ")"
	}
	return s.Status
}

// ParseVEX reads an OpenVEX or CycloneDX VEX document (JSON), telling them
// apart by their content.
func ParseVEX(r io.Reader, name string) (*VEX, error) {
	b, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var head struct {
		Context   string `json:"@context"`
		BOMFormat string `json:"bomFormat"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%s: not a JSON VEX document: %w", name, err)
	}
	switch {
	case strings.Contains(head.Context, "openvex"):
		return parseOpenVEX(b, name)
	case head.BOMFormat == "CycloneDX":
		return parseCycloneDXVEX(b, name)
	}
	return nil, fmt.Errorf("%s: neither OpenVEX (@context) nor CycloneDX (bomFormat)", name)
}

// openVEX is the part of an OpenVEX document (v0.0.x and v0.2.0) used here.
type openVEX struct {
	Statements []struct {
		Vulnerability json.RawMessage `json:"vulnerability"` // a string (0.0.x) or {name, aliases}
		Products      json.RawMessage `json:"products"`      // strings (0.0.x) or [{@id, subcomponents}]
		Subcomponents json.RawMessage `json:"subcomponents"` // 0.0.x
		Status        string          `json:"status"`
		Justification string          `json:"justification"`
	} `json:"statements"`
}

type vexComponent struct {
	ID            string            `json:"@id"`
	Identifiers   map[string]string `json:"identifiers"`
	Subcomponents []vexComponent    `json:"subcomponents"`
}

func parseOpenVEX(b []byte, name string) (*VEX, error) {
	var doc openVEX
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: OpenVEX: %w", name, err)
	}
	x := &VEX{Name: name, Format: "openvex"}
	for i, s := range doc.Statements {
		st := VEXStatement{Status: s.Status, Justification: s.Justification}
		var id string
		var vuln struct {
			Name    string   `json:"name"`
			ID      string   `json:"@id"`
			Aliases []string `json:"aliases"`
		}
		if json.Unmarshal(s.Vulnerability, &id) == nil {
			st.Vulnerability = id
		} else if json.Unmarshal(s.Vulnerability, &vuln) == nil {
			st.Vulnerability, st.Aliases = vuln.Name, vuln.Aliases
			if st.Vulnerability == "" {
				st.Vulnerability = vuln.ID
			}
		}
		if st.Vulnerability == "" {
			return nil, fmt.Errorf("%s: statement %d names no vulnerability", name, i)
		}
		products, err := components(s.Products)
		if err != nil {
			return nil, fmt.Errorf("%s: statement %d: products: %w", name, i, err)
		}
		subs, err := components(s.Subcomponents)
		if err != nil {
			return nil, fmt.Errorf("%s: statement %d: subcomponents: %w", name, i, err)
		}
		for _, p := range products {
			subs = append(subs, p.Subcomponents...)
		}
		if len(subs) > 0 {
			for _, c := range subs {
				st.Packages = append(st.Packages, purlOf(c))
			}
		} else {
			// Products that are packages scope the statement to them; a
			// product that is not a package (the image) covers it all.
			for _, p := range products {
				if pu := purlOf(p); strings.HasPrefix(pu, "pkg:") && !strings.HasPrefix(pu, "pkg:oci/") && !strings.HasPrefix(pu, "pkg:docker/") {
					st.Packages = append(st.Packages, pu)
				}
			}
		}
		x.Statements = append(x.Statements, st)
	}
	return x, nil
}

// components reads a list of strings or of {"@id"} objects.
func components(raw json.RawMessage) ([]vexComponent, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var ids []string
	if json.Unmarshal(raw, &ids) == nil {
		out := make([]vexComponent, len(ids))
		for i, id := range ids {
			out[i].ID = id
		}
		return out, nil
	}
	var cs []vexComponent
	if err := json.Unmarshal(raw, &cs); err != nil {
		return nil, errors.New("want a list of strings or of objects with @id")
	}
	return cs, nil
}

func purlOf(c vexComponent) string {
	if p := c.Identifiers["purl"]; p != "" {
		return p
	}
	return c.ID
}

// cycloneDXVEX is the part of a CycloneDX document used here.
type cycloneDXVEX struct {
	Components []struct {
		BOMRef string `json:"bom-ref"`
		PURL   string `json:"purl"`
	} `json:"components"`
	Vulnerabilities []struct {
		ID         string `json:"id"`
		References []struct {
			ID string `json:"id"`
		} `json:"references"`
		Analysis struct {
			State         string `json:"state"`
			Justification string `json:"justification"`
		} `json:"analysis"`
		Affects []struct {
			Ref string `json:"ref"`
		} `json:"affects"`
	} `json:"vulnerabilities"`
}

func parseCycloneDXVEX(b []byte, name string) (*VEX, error) {
	var doc cycloneDXVEX
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: CycloneDX: %w", name, err)
	}
	refs := map[string]string{}
	for _, c := range doc.Components {
		if c.BOMRef != "" && c.PURL != "" {
			refs[c.BOMRef] = c.PURL
		}
	}
	x := &VEX{Name: name, Format: "cyclonedx"}
	for _, v := range doc.Vulnerabilities {
		st := VEXStatement{Vulnerability: v.ID, Justification: v.Analysis.Justification}
		switch v.Analysis.State {
		case "not_affected", "false_positive":
			st.Status = "not_affected"
		case "resolved", "resolved_with_pedigree":
			st.Status = "fixed"
		case "exploitable":
			st.Status = "affected"
		default:
			st.Status = "under_investigation"
		}
		for _, r := range v.References {
			st.Aliases = append(st.Aliases, r.ID)
		}
		for _, a := range v.Affects {
			p := a.Ref
			if purl, ok := refs[p]; ok {
				p = purl
			}
			// A ref that names the image (urn:cdx:..., or an unknown
			// bom-ref) leaves the statement for every package.
			if strings.HasPrefix(p, "pkg:") && !strings.HasPrefix(p, "pkg:oci/") {
				st.Packages = append(st.Packages, p)
			}
		}
		x.Statements = append(x.Statements, st)
	}
	return x, nil
}
