package scan

import (
	"cmp"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/match"
	"github.com/lading-dev/lading/internal/vulndb"
)

// MatchInputs returns what the matcher is asked for the inventory's
// packages, target by target, as Scanner.Inventory asks it: the inputs
// whose matches a report counts. Removed packages, which count in no
// total, are left out; so are packages the matcher cannot look up (an OS
// package of an image without an OS). A registry keeps these to
// re-evaluate a report against a new database without reading the image
// again.
func MatchInputs(inv *analyze.Inventory) []match.Package {
	ns := ""
	if inv.OS != nil {
		ns = vulndb.DistroNamespace(inv.OS.ID, cmp.Or(inv.OS.VersionID, inv.OS.Codename))
	}
	var out []match.Package
	for _, t := range inv.Targets {
		for i := range t.Packages {
			if mp, ok := toMatch(&t.Packages[i], ns); ok {
				out = append(out, mp)
			}
		}
	}
	return out
}

// SeverityOf is the report's severity level of a database rating
// (UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL).
func SeverityOf(r vulndb.Rating) string { return severity(r) }
