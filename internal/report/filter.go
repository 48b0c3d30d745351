package report

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Filter removes findings from a report.
type Filter struct {
	// Severities keeps only findings of these levels; empty keeps all.
	Severities []string
	// IgnoreUnfixed drops findings that have no fixed version.
	IgnoreUnfixed bool
	// PkgTypes keeps only "os" (OS packages) and/or "library" (language
	// packages) findings; empty keeps both.
	PkgTypes []string
	// Ignore is an ignore file's rules.
	Ignore *IgnoreFile
	// VEX are VEX documents; their not-affected and fixed statements
	// suppress findings.
	VEX []*VEX
	// Now is the date ignore rules expire against (default: today).
	Now time.Time
}

// Suppression is a finding a filter removed, with the reason.
type Suppression struct {
	Target  string
	Finding Finding
	Reason  string
}

// Apply filters r in place (its removed packages too) and returns what was
// suppressed by the ignore file and VEX (not what severity, fix and type
// filters dropped). Targets left without findings stay, with an empty list,
// so the table still shows that they were scanned.
func (f Filter) Apply(r *Report) []Suppression {
	now := f.Now
	if now.IsZero() {
		now = time.Now()
	}
	var sup []Suppression
	keep := func(target string, fs []Finding) []Finding {
		kept := fs[:0]
		for _, v := range fs {
			if len(f.Severities) > 0 && !slices.Contains(f.Severities, v.Severity) {
				continue
			}
			if f.IgnoreUnfixed && v.FixedVersion == "" {
				continue
			}
			if why := f.suppressed(v, now); why != "" {
				sup = append(sup, Suppression{Target: target, Finding: v, Reason: why})
				continue
			}
			kept = append(kept, v)
		}
		return kept
	}
	for i := range r.Results {
		res := &r.Results[i]
		if !f.wantClass(res.Class) {
			res.Vulnerabilities = []Finding{}
			continue
		}
		res.Vulnerabilities = keep(res.Target, res.Vulnerabilities)
	}
	removed := r.Removed[:0]
	for _, p := range r.Removed {
		class := "lang-pkgs"
		if p.Ecosystem == "apk" || p.Ecosystem == "deb" || p.Ecosystem == "rpm" {
			class = "os-pkgs"
		}
		if !f.wantClass(class) {
			continue
		}
		p.Vulnerabilities = keep(p.PkgPath+" (removed)", p.Vulnerabilities)
		removed = append(removed, p)
	}
	r.Removed = removed
	return sup
}

func (f Filter) wantClass(class string) bool {
	if len(f.PkgTypes) == 0 {
		return true
	}
	want := "library"
	if class == "os-pkgs" {
		want = "os"
	}
	return slices.Contains(f.PkgTypes, want)
}

func (f Filter) suppressed(v Finding, now time.Time) string {
	if f.Ignore != nil {
		if rule := f.Ignore.Match(v, now); rule != nil {
			return fmt.Sprintf("ignored by %s line %d", f.Ignore.Name, rule.Line)
		}
	}
	for _, x := range f.VEX {
		if st := x.Match(v); st != "" {
			return fmt.Sprintf("VEX %s: %s", x.Name, st)
		}
	}
	return ""
}

// ParseSeverities parses a comma-separated list of levels ("HIGH,CRITICAL";
// case does not matter).
func ParseSeverities(list []string) ([]string, error) {
	var out []string
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			s = strings.ToUpper(strings.TrimSpace(s))
			if s == "" {
				continue
			}
			if SeverityRank(s) < 0 {
				return nil, fmt.Errorf("severity %q: want UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL", s)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// matchesID reports whether a rule's ID names the finding (its ID or one of
// its aliases), ignoring case.
func matchesID(id string, v Finding) bool {
	if strings.EqualFold(id, v.VulnerabilityID) || strings.EqualFold(id, v.SourceID) {
		return true
	}
	for _, a := range v.Aliases {
		if strings.EqualFold(id, a) {
			return true
		}
	}
	return false
}

// purlMatches reports whether a package URL from a rule matches a
// package's: the same type, namespace and name, and the same version when
// the rule gives one; qualifiers and subpaths are ignored.
func purlMatches(rule, pkg string) bool {
	if rule == "" || pkg == "" {
		return false
	}
	rb, rv := splitPURL(rule)
	pb, pv := splitPURL(pkg)
	if !strings.EqualFold(rb, pb) {
		return false
	}
	return rv == "" || rv == pv
}

// splitPURL returns a purl without qualifiers and subpath, split into its
// base (type/namespace/name) and version.
func splitPURL(p string) (string, string) {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if i := strings.LastIndex(p, "@"); i > strings.LastIndex(p, "/") {
		return p[:i], p[i+1:]
	}
	return p, ""
}
