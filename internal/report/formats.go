package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/template"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
)

// WriteJSON writes r as indented JSON (schema version SchemaVersion).
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// SARIF returns r as a SARIF 2.1.0 log: one run by lading, one rule per
// vulnerability, one result per finding, located at the file that declared
// the package (GitHub code scanning needs a location). The rule's
// security-severity property is the CVSS score GitHub ranks alerts by.
func SARIF(r *Report, version string) *sarif.Report {
	rep := sarif.NewReport()
	run := sarif.NewRunWithInformationURI("lading", "https://github.com/lading-dev/lading")
	run.Tool.Driver.Version = &version
	run.Tool.Driver.FullName = strPtr("lading vulnerability scanner")
	rules := map[string]bool{}
	for _, res := range r.Results {
		for _, f := range res.Vulnerabilities {
			if !rules[f.VulnerabilityID] {
				rules[f.VulnerabilityID] = true
				rule := run.AddRule(f.VulnerabilityID).
					WithName("OsPackageVulnerability").
					WithShortDescription(sarif.NewMultiformatMessageString().WithText(shortText(f))).
					WithFullDescription(sarif.NewMultiformatMessageString().WithText(nonEmpty(f.Description, shortText(f)))).
					WithHelp(sarif.NewMultiformatMessageString().
						WithText(helpText(f)).
						WithMarkdown(helpText(f)))
				if res.Class != "os-pkgs" {
					rule.WithName("LanguageSpecificPackageVulnerability")
				}
				if f.PrimaryURL != "" {
					rule.WithHelpURI(f.PrimaryURL)
				}
				props := sarif.NewPropertyBag()
				props.Add("tags", []string{"vulnerability", "security", f.Severity})
				props.Add("precision", "very-high")
				props.Add("security-severity", securitySeverity(f))
				rule.WithProperties(props)
			}
			uri := strings.TrimPrefix(nonEmpty(f.PkgPath, res.Target), "/")
			loc := sarif.NewPhysicalLocation().
				WithArtifactLocation(sarif.NewSimpleArtifactLocation(uri).WithURIBaseID("ROOTPATH")).
				WithRegion(sarif.NewSimpleRegion(1, 1))
			msg := fmt.Sprintf("Package: %s\nInstalled Version: %s\nVulnerability %s\nSeverity: %s\nFixed Version: %s\nLink: [%s](%s)",
				f.PkgName, f.InstalledVersion, f.VulnerabilityID, f.Severity, f.FixedVersion, f.VulnerabilityID, f.PrimaryURL)
			if f.Layer != nil {
				msg += fmt.Sprintf("\nLayer: %d %s %s", f.Layer.Index, f.Layer.DiffID, f.Layer.CreatedBy)
			}
			result := sarif.NewRuleResult(f.VulnerabilityID).
				WithLevel(sarifLevel(f.Severity)).
				WithMessage(sarif.NewTextMessage(msg)).
				WithLocations([]*sarif.Location{sarif.NewLocationWithPhysicalLocation(loc).
					WithMessage(sarif.NewTextMessage(r.ArtifactName + ": " + f.PkgName + "@" + f.InstalledVersion))})
			run.AddResult(result)
		}
	}
	run.OriginalUriBaseIds = map[string]sarif.ArtifactLocation{"ROOTPATH": *sarif.NewSimpleArtifactLocation("file:///")}
	rep.AddRun(run)
	return rep
}

// WriteSARIF writes r as SARIF 2.1.0.
func WriteSARIF(w io.Writer, r *Report, version string) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(SARIF(r, version))
}

func sarifLevel(sev string) string {
	switch sev {
	case Critical, High:
		return "error"
	case Medium:
		return "warning"
	case Low, Unknown:
		return "note"
	}
	return "none"
}

// securitySeverity is the score GitHub uses: the finding's highest CVSS
// score, else a value inside its level's band.
func securitySeverity(f Finding) string {
	best := 0.0
	for _, c := range f.CVSS {
		if c.Score > best {
			best = c.Score
		}
	}
	if best == 0 {
		best = map[string]float64{Critical: 9.5, High: 8.0, Medium: 5.5, Low: 2.0}[f.Severity]
	}
	return strconv.FormatFloat(best, 'f', 1, 64)
}

func shortText(f Finding) string {
	return nonEmpty(f.Title, f.VulnerabilityID+": "+f.PkgName+" "+f.InstalledVersion)
}

func helpText(f Finding) string {
	return fmt.Sprintf("Vulnerability %s\nSeverity: %s\nPackage: %s\nFixed Version: %s\nLink: %s\n%s",
		f.VulnerabilityID, f.Severity, f.PkgName, nonEmpty(f.FixedVersion, "none"), f.PrimaryURL, f.Description)
}

func nonEmpty(s, alt string) string {
	if strings.TrimSpace(s) == "" {
		return alt
	}
	return s
}

func strPtr(s string) *string { return &s }

// ParseTemplate parses a --template value: "@FILE" reads the template from
// a file, anything else is the template text.
func ParseTemplate(s string) (*template.Template, error) {
	text := s
	name := "template"
	if path, ok := strings.CutPrefix(s, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		text, name = string(b), path
	}
	return template.New(name).Funcs(template.FuncMap{
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"join":  strings.Join,
		"toJSON": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"escapeXML": func(s string) string {
			var b strings.Builder
			for _, r := range s {
				switch r {
				case '<':
					b.WriteString("&lt;")
				case '>':
					b.WriteString("&gt;")
				case '&':
					b.WriteString("&amp;")
				case '"':
					b.WriteString("&quot;")
				case '\'':
					b.WriteString("&apos;")
				default:
					b.WriteRune(r)
				}
			}
			return b.String()
		},
	}).Parse(text)
}
