package sbom

import (
	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/pkg"
)

// component is one package of the SBOM: every record of the inventory with
// the same identity (package URL, or ecosystem, name, version and
// architecture when there is none), with every place it was found. The
// inventory lists a package once per file that declares it (two nested
// copies in node_modules, the same module in two binaries); an SBOM lists
// it once.
type component struct {
	n      int          // its number: "pkg-N", "Package-N"
	p      *pkg.Package // the first record
	places []place
}

// place is where a package was found.
type place struct {
	p      *pkg.Package
	target *analyze.Target
}

// components groups the packages of inv, in inventory order (OS package
// databases first), numbering them from 1.
func components(inv *analyze.Inventory) []*component {
	var out []*component
	byID := map[string]*component{}
	for i := range inv.Targets {
		t := &inv.Targets[i]
		for k := range t.Packages {
			p := &t.Packages[k]
			id := p.PURL
			if id == "" {
				id = string(p.Ecosystem) + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Arch
			}
			c := byID[id]
			if c == nil {
				c = &component{n: len(out) + 1, p: p}
				byID[id] = c
				out = append(out, c)
			}
			c.places = append(c.places, place{p, t})
		}
	}
	return out
}

// componentRefs maps each place of a package (declaring file, name,
// version), as findings name it, to its component's number.
func componentRefs(cs []*component) map[string]int {
	refs := map[string]int{}
	for _, c := range cs {
		for _, pl := range c.places {
			refs[pl.p.Location+"|"+pl.p.Name+"|"+pl.p.Version] = c.n
		}
	}
	return refs
}
