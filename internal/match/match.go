// Package match finds the vulnerabilities of installed packages in a
// vulnerability database, with each ecosystem's version rules.
//
// A package is looked up in its namespace: a language ecosystem ("npm",
// "PyPI", "Go") or a distribution release ("alpine:3.10", "debian:12",
// "ubuntu:18.04"; vulndb.DistroNamespace makes one from os-release). Debian,
// Ubuntu, Alpine, Wolfi and Chainguard feeds are keyed by source package
// (Alpine's origin), so their packages are looked up by source name when it
// is known, and Debian and Ubuntu compare the source version, as their fixed
// versions are source versions; other namespaces use the binary name and
// version.
//
// A vulnerability is reported once per package. When several sources speak
// about it, a distribution's own feed comes before OSV for OS packages, and a
// distribution saying "not affected" drops it. Its status is fixed when a fix
// exists for the installed version, otherwise what the source says: affected,
// will not fix, fix deferred, end of life. Its severity is the
// distribution's own rating for OS packages, then a CVSS score (version 3,
// then 4, then 2), then any source's rating.
package match

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/lading-dev/lading/internal/version"
	"github.com/lading-dev/lading/internal/vulndb"
)

// Package is an installed package, as analyzers describe it.
type Package struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	SourceName    string `json:"source_name,omitempty"`    // the source package (Debian, Ubuntu, RPM) or origin (Alpine), if known
	SourceVersion string `json:"source_version,omitempty"` // the source package's version, if known
	Namespace     string `json:"namespace"`                // "npm", "PyPI", "Go", "alpine:3.10", "debian:12", ...
}

// Match is one vulnerability of one package.
type Match struct {
	Package          Package         `json:"package"`
	VulnerabilityID  string          `json:"vulnerability"`            // a CVE when there is one
	Aliases          []string        `json:"aliases,omitempty"`        // its other IDs
	SourceID         string          `json:"source_id"`                // the ID the data source publishes it under (DSA-5380-1, GO-2023-1737)
	DataSource       string          `json:"data_source"`              // the data source ("alpine-secdb", "osv:Go", ...)
	InstalledVersion string          `json:"installed_version"`        // the version compared: the source version for Debian and Ubuntu
	FixedVersions    []string        `json:"fixed_versions,omitempty"` // the versions that fix it, none when there is no fix
	Status           vulndb.Status   `json:"status"`
	Severity         vulndb.Severity `json:"severity"` // Severity.Source says whose rating it is
	// SeverityFrom says where Severity was found: "advisory" (an advisory
	// for this package), "record" (the matched source's record of the
	// vulnerability), "alias" (another feed's record of the same
	// vulnerability, under its ID or an alias: a CVE, a GHSA; or a score
	// such a record quotes); "" when there is none.
	SeverityFrom string   `json:"severity_from,omitempty"`
	Title        string   `json:"title,omitempty"`
	Description  string   `json:"description,omitempty"`
	References   []string `json:"references,omitempty"`
	Published    string   `json:"published,omitempty"` // YYYY-MM-DD
	Note         string   `json:"note,omitempty"`      // the source's remark ("out of standard support")
}

// DB is what the matcher needs of a database; *vulndb.DB has it.
type DB interface {
	Advisories(ctx context.Context, namespace, name string) ([]vulndb.Advisory, error)
	Vulnerability(ctx context.Context, a vulndb.Advisory) (vulndb.Vulnerability, error)
}

// Matcher matches packages against a database.
type Matcher struct {
	db  DB
	log *slog.Logger
}

// New returns a Matcher reading db.
func New(db DB, log *slog.Logger) *Matcher { return &Matcher{db: db, log: log} }

// sourceKeyed are the distributions whose feeds are keyed by source package.
var sourceKeyed = map[string]bool{"debian": true, "ubuntu": true, "ubuntu-pro": true, "alpine": true, "wolfi": true, "chainguard": true}

// Lookup returns the namespace, name and version under which a package is
// looked up and compared.
func Lookup(p Package) (namespace, name, ver string) {
	ns := vulndb.Namespace(p.Namespace)
	name, ver = p.Name, p.Version
	d := vulndb.Distro(ns)
	if sourceKeyed[d] && p.SourceName != "" {
		name = p.SourceName
	}
	if (d == "debian" || d == "ubuntu" || d == "ubuntu-pro") && p.SourceName != "" && p.SourceVersion != "" {
		ver = p.SourceVersion
	}
	return ns, vulndb.NormalizeName(ns, name), ver
}

// Match returns the vulnerabilities of the packages, in package order and by
// vulnerability ID within a package. A package whose version cannot be
// compared with an advisory is logged and that advisory left out; only
// database errors fail a match.
func (m *Matcher) Match(ctx context.Context, pkgs ...Package) ([]Match, error) {
	comparators := map[string][2]version.Comparator{} // parsed versions cached for this call
	var out []Match
	for _, p := range pkgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ns, name, ver := Lookup(p)
		if ns == "" || name == "" || ver == "" {
			m.log.Debug("package without namespace, name or version", "package", p.Name, "namespace", p.Namespace)
			continue
		}
		c, ok := comparators[ns]
		if !ok {
			eco, semver := vulndb.Comparators(ns)
			c = [2]version.Comparator{version.Cached(eco), version.Cached(semver)}
			comparators[ns] = c
		}
		advs, err := m.db.Advisories(ctx, ns, name)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", ns, name, err)
		}
		ms, err := m.matchOne(ctx, p, ns, ver, advs, c[0], c[1])
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// verdict is one advisory's answer for the installed version.
type verdict struct {
	adv    vulndb.Advisory
	fixes  []string
	status vulndb.Status
}

func (m *Matcher) matchOne(ctx context.Context, p Package, ns, ver string, advs []vulndb.Advisory, eco, semver version.Comparator) ([]Match, error) {
	distro := vulndb.IsDistro(ns)
	byVuln := map[string][]verdict{}
	notAffected := map[string]bool{}
	for _, a := range advs {
		if a.Status == vulndb.StatusNotAffected {
			if !distro || native(a.Source) {
				notAffected[a.VulnID] = true
			}
			continue
		}
		affected, fixes, err := a.Affects(eco, semver, ver)
		if err != nil {
			m.log.Warn("version not comparable with an advisory; advisory left out",
				"package", p.Name, "version", ver, "namespace", ns, "vulnerability", a.VulnID, "source", a.Source, "err", err)
			continue
		}
		if !affected {
			continue
		}
		st := a.Status
		if len(fixes) > 0 {
			st = vulndb.StatusFixed
		}
		byVuln[a.VulnID] = append(byVuln[a.VulnID], verdict{a, fixes, st})
	}
	var out []Match
	for id, vs := range byVuln {
		if notAffected[id] {
			continue
		}
		slices.SortStableFunc(vs, func(x, y verdict) int { return preference(distro, x, y) })
		best := vs[0]
		v, err := m.db.Vulnerability(ctx, best.adv)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", ns, p.Name, err)
		}
		mt := Match{
			Package: p, VulnerabilityID: v.ID, Aliases: v.Aliases, SourceID: best.adv.SourceID,
			DataSource: best.adv.Source, InstalledVersion: ver, FixedVersions: best.fixes, Status: best.status,
			Title: v.Title, Description: v.Description, References: v.References, Note: best.adv.Note,
		}
		mt.Severity, mt.SeverityFrom = pickSeverity(distro, best.adv, vs, v)
		if !v.Published.IsZero() {
			mt.Published = v.Published.Format("2006-01-02")
		}
		out = append(out, mt)
	}
	slices.SortFunc(out, func(a, b Match) int { return cmp.Compare(a.VulnerabilityID, b.VulnerabilityID) })
	return out, nil
}

// native reports whether a data source is a distribution's own feed rather
// than OSV.
func native(source string) bool { return !strings.HasPrefix(source, "osv") }

// preference orders the verdicts of one vulnerability: for OS packages the
// distribution's own feed first; then a verdict with a fix; then by source.
func preference(distro bool, x, y verdict) int {
	if distro && native(x.adv.Source) != native(y.adv.Source) {
		if native(x.adv.Source) {
			return -1
		}
		return 1
	}
	if (len(x.fixes) > 0) != (len(y.fixes) > 0) {
		if len(x.fixes) > 0 {
			return -1
		}
		return 1
	}
	return cmp.Compare(x.adv.Source, y.adv.Source)
}

// pickSeverity: for OS packages, the distribution's own rating (the chosen
// advisory's, then any other advisory's of this vulnerability); then CVSS
// (version 3, 4, 2; the chosen source's own score first, then NVD's, then
// any); then any source's word; then a language advisory's own rating. A
// vulnerability's ratings come from every record about it, in every feed of
// the database, under its ID or an alias: a Go module's finding, whose
// feed rates nothing, takes the rating of the CVE's or the GHSA's record in
// another feed. from says which (see Match.SeverityFrom).
func pickSeverity(distro bool, best vulndb.Advisory, vs []verdict, v vulndb.Vulnerability) (sev vulndb.Severity, from string) {
	own := func(a vulndb.Advisory) (vulndb.Severity, bool) {
		s := a.Severity
		if s.Rating == vulndb.RatingUnknown {
			return vulndb.Severity{}, false
		}
		if s.Source == "" {
			s.Source = a.Source
		}
		return s, true
	}
	if distro {
		if s, ok := own(best); ok {
			return s, "advisory"
		}
		for _, x := range vs {
			if s, ok := own(x.adv); ok && native(x.adv.Source) {
				return s, "advisory"
			}
		}
	}
	rank := func(s vulndb.Severity) (int, int) {
		t := map[vulndb.SeverityType]int{vulndb.SeverityCVSSv3: 0, vulndb.SeverityCVSSv4: 1, vulndb.SeverityCVSSv2: 2, vulndb.SeverityVendor: 3}[s.Type]
		src := 2
		switch s.Source {
		case best.Source:
			src = 0
		case "nvd":
			src = 1
		}
		return t, src
	}
	var chosen *vulndb.Severity
	for i := range v.Severities {
		s := &v.Severities[i]
		if s.Rating == vulndb.RatingUnknown {
			continue
		}
		if chosen == nil {
			chosen = s
			continue
		}
		ct, cs := rank(*chosen)
		st, ss := rank(*s)
		if st < ct || st == ct && ss < cs {
			chosen = s
		}
	}
	if chosen != nil {
		if chosen.Source == best.Source {
			return *chosen, "record"
		}
		return *chosen, "alias"
	}
	for _, x := range vs {
		if s, ok := own(x.adv); ok {
			return s, "advisory"
		}
	}
	return vulndb.Severity{}, ""
}
