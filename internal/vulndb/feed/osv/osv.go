// Package osv reads vulnerability records in the Open Source Vulnerability
// format (https://ossf.github.io/osv-schema/), as JSON or YAML: the files in
// osv.dev's per-ecosystem zips, golang/vulndb, pypa/advisory-database,
// RustSec, AlmaLinux and the others.
//
// Every ecosystem is read; its packages go to the namespace vulndb.Namespace
// gives ("PyPI", "alpine:3.20", "ubuntu:22.04"). Ranges of type ECOSYSTEM and
// SEMVER are kept with all four event kinds; GIT ranges are counted and left
// out (a package whose only ranges are GIT ranges, and which lists no
// versions, is left out too, since no version could be placed). Withdrawn
// records are counted and left out. Severities of type CVSS_V2, CVSS_V3 and
// CVSS_V4 are scored; type Ubuntu, database_specific.severity (GitHub),
// ecosystem_specific urgency or severity (Debian) and the Red Hat impact in
// AlmaLinux and Rocky summaries ("Important: openssl security update") are
// the sources' own ratings.
//
// A distribution advisory that fixes several CVEs and has no alias of its
// own (an ALSA with "related" CVEs) becomes one record per CVE, each
// carrying the advisory's ID as its SourceID, as the distribution feeds are
// read, so that a scan reports the CVEs.
package osv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/lading-dev/lading/internal/vulndb"
)

// Source is the data source name prefix: records are counted under
// "osv:" plus their first package's ecosystem ("osv:Go", "osv:AlmaLinux").
const Source = "osv"

type severity struct {
	Type  string `json:"type" yaml:"type"`
	Score string `json:"score" yaml:"score"`
}

type record struct {
	SchemaVersion string     `json:"schema_version" yaml:"schema_version"`
	ID            string     `json:"id" yaml:"id"`
	Modified      string     `json:"modified" yaml:"modified"`
	Published     string     `json:"published" yaml:"published"`
	Withdrawn     string     `json:"withdrawn" yaml:"withdrawn"`
	Aliases       []string   `json:"aliases" yaml:"aliases"`
	Related       []string   `json:"related" yaml:"related"`
	Summary       string     `json:"summary" yaml:"summary"`
	Details       string     `json:"details" yaml:"details"`
	Severity      []severity `json:"severity" yaml:"severity"`
	Affected      []affected `json:"affected" yaml:"affected"`
	References    []struct {
		Type string `json:"type" yaml:"type"`
		URL  string `json:"url" yaml:"url"`
	} `json:"references" yaml:"references"`
	DatabaseSpecific map[string]any `json:"database_specific" yaml:"database_specific"`
}

type affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem" yaml:"ecosystem"`
		Name      string `json:"name" yaml:"name"`
		Purl      string `json:"purl" yaml:"purl"`
	} `json:"package" yaml:"package"`
	Severity []severity `json:"severity" yaml:"severity"`
	Ranges   []struct {
		Type   string              `json:"type" yaml:"type"`
		Repo   string              `json:"repo" yaml:"repo"`
		Events []map[string]string `json:"events" yaml:"events"`
	} `json:"ranges" yaml:"ranges"`
	Versions          []string       `json:"versions" yaml:"versions"`
	EcosystemSpecific map[string]any `json:"ecosystem_specific" yaml:"ecosystem_specific"`
	DatabaseSpecific  map[string]any `json:"database_specific" yaml:"database_specific"`
}

// Parse reads one file holding an OSV record, or a JSON array of records,
// and adds what it reads to sink. YAML is read when the content does not
// start with "{" or "["; name is the file's name, for messages. The error
// is for a file that cannot be read as OSV at all.
func Parse(ctx context.Context, r io.Reader, name string, sink vulndb.Sink) error {
	br := bufio.NewReader(r)
	first, err := firstByte(br)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var recs []record
	switch first {
	case '{':
		var rec record
		if err := json.NewDecoder(br).Decode(&rec); err != nil {
			return fmt.Errorf("%s: OSV JSON: %w", name, err)
		}
		recs = []record{rec}
	case '[':
		if err := json.NewDecoder(br).Decode(&recs); err != nil {
			return fmt.Errorf("%s: OSV JSON: %w", name, err)
		}
	default:
		var rec record
		if err := yaml.NewDecoder(br).Decode(&rec); err != nil {
			return fmt.Errorf("%s: OSV YAML: %w", name, err)
		}
		recs = []record{rec}
	}
	for i := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		convert(&recs[i], name, sink)
	}
	return nil
}

func firstByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, errors.New("empty file")
			}
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		case 0xEF: // a UTF-8 byte order mark
			br.ReadByte()
			br.ReadByte()
			continue
		}
		br.UnreadByte()
		return b, nil
	}
}

// convert turns one OSV record into vulndb records.
func convert(rec *record, name string, sink vulndb.Sink) {
	source := Source
	if len(rec.Affected) > 0 {
		if eco, _, _ := strings.Cut(rec.Affected[0].Package.Ecosystem, ":"); eco != "" {
			source = Source + ":" + eco
		}
	}
	if strings.TrimSpace(rec.ID) == "" {
		sink.Skip(source, "malformed record", fmt.Errorf("%s: record without an id", name))
		return
	}
	if strings.TrimSpace(rec.Withdrawn) != "" {
		sink.Skip(source, "withdrawn", nil)
		return
	}
	out := vulndb.Record{
		ID: strings.TrimSpace(rec.ID), Aliases: rec.Aliases, Source: source,
		Title: rec.Summary, Description: rec.Details,
		Published: parseTime(rec.Published), Modified: parseTime(rec.Modified),
	}
	for _, ref := range rec.References {
		if ref.URL != "" {
			out.References = append(out.References, ref.URL)
		}
	}
	for _, s := range rec.Severity {
		if sev, ok := scoreSeverity(source, s, rec.ID, name, sink); ok {
			out.Severities = append(out.Severities, sev)
		}
	}
	if w, ok := rec.DatabaseSpecific["severity"].(string); ok {
		out.Severities = append(out.Severities, vulndb.Vendor(source, w))
	}

	distroOnly := len(rec.Affected) > 0
	for i := range rec.Affected {
		a, ok := convertAffected(&rec.Affected[i], rec, source, name, sink)
		if !ok {
			continue
		}
		distroOnly = distroOnly && vulndb.IsDistro(a.Namespace)
		out.Affected = append(out.Affected, a)
	}
	if len(rec.Affected) == 0 {
		sink.Skip(source, "record without packages", nil)
		return
	}
	if len(out.Affected) == 0 {
		// Nothing placeable (only GIT ranges, malformed packages): the
		// reasons are counted already.
		return
	}

	// A distribution advisory fixing several CVEs: one record per CVE.
	cves := cvesIn(rec.Related)
	if distroOnly && len(cves) > 0 && len(cvesIn(rec.Aliases)) == 0 && !strings.HasPrefix(out.ID, "CVE-") {
		for _, cve := range cves {
			r := out
			r.ID, r.SourceID, r.Aliases = cve, out.ID, nil
			sink.Add(r)
		}
		return
	}
	sink.Add(out)
}

func cvesIn(ids []string) []string {
	var out []string
	for _, id := range ids {
		if strings.HasPrefix(id, "CVE-") {
			out = append(out, id)
		}
	}
	return out
}

// redHatImpact reads the impact Red Hat puts in front of an erratum's
// summary, as AlmaLinux and Rocky copy it: "Important: openssl security
// update".
func redHatImpact(summary string) string {
	w, _, ok := strings.Cut(summary, ":")
	if !ok {
		return ""
	}
	switch w {
	case "Low", "Moderate", "Important", "Critical":
		return w
	}
	return ""
}

func convertAffected(a *affected, rec *record, source, name string, sink vulndb.Sink) (vulndb.Affected, bool) {
	eco, pkg := strings.TrimSpace(a.Package.Ecosystem), strings.TrimSpace(a.Package.Name)
	if eco == "" || pkg == "" {
		sink.Skip(source, "malformed record", fmt.Errorf("%s: %s: affected package without ecosystem or name", name, rec.ID))
		return vulndb.Affected{}, false
	}
	out := vulndb.Affected{Namespace: vulndb.Namespace(eco), Package: pkg, Versions: a.Versions}
	hadRanges, malformed := len(a.Ranges) > 0, false
	for _, r := range a.Ranges {
		var kind vulndb.RangeKind
		switch strings.ToUpper(r.Type) {
		case "ECOSYSTEM":
			kind = vulndb.RangeEcosystem
		case "SEMVER":
			kind = vulndb.RangeSemVer
		case "GIT":
			sink.Skip(source, "GIT range", nil)
			continue
		default:
			sink.Skip(source, "malformed record", fmt.Errorf("%s: %s: range type %q", name, rec.ID, r.Type))
			malformed = true
			continue
		}
		evs, err := events(r.Events)
		if err != nil {
			sink.Skip(source, "malformed record", fmt.Errorf("%s: %s: %s %s: %v", name, rec.ID, eco, pkg, err))
			malformed = true
			continue
		}
		out.Ranges = append(out.Ranges, vulndb.Range{Kind: kind, Events: evs})
	}
	if hadRanges && len(out.Ranges) == 0 && len(out.Versions) == 0 {
		// Without its ranges nothing says which versions are affected;
		// keeping it would claim all of them.
		if !malformed {
			sink.Skip(source, "package without usable ranges", nil)
		}
		return vulndb.Affected{}, false
	}
	if !hadRanges && len(out.Versions) == 0 {
		sink.Skip(source, "malformed record", fmt.Errorf("%s: %s: %s %s: neither ranges nor versions", name, rec.ID, eco, pkg))
		return vulndb.Affected{}, false
	}
	// The package's own severity: per-package OSV severity, then the
	// ecosystem's and database's words, then a Red Hat impact.
	for _, s := range a.Severity {
		if sev, ok := scoreSeverity(source, s, rec.ID, name, sink); ok {
			out.Severity = sev
			break
		}
	}
	if out.Severity.IsZero() {
		for _, m := range []map[string]any{a.EcosystemSpecific, a.DatabaseSpecific} {
			for _, k := range []string{"severity", "urgency"} {
				if w, ok := m[k].(string); ok && out.Severity.IsZero() {
					out.Severity = vulndb.Vendor(source, w)
				}
			}
		}
	}
	if out.Severity.IsZero() && vulndb.IsDistro(out.Namespace) {
		out.Severity = vulndb.Vendor(source, redHatImpact(rec.Summary))
	}
	return out, true
}

// events reads OSV events: objects with exactly one of introduced, fixed,
// last_affected and limit.
func events(in []map[string]string) ([]vulndb.Event, error) {
	if len(in) == 0 {
		return nil, errors.New("range without events")
	}
	out := make([]vulndb.Event, 0, len(in))
	for _, e := range in {
		if len(e) != 1 {
			return nil, fmt.Errorf("event with %d fields", len(e))
		}
		for k, v := range e {
			v = strings.TrimSpace(v)
			if v == "" {
				return nil, fmt.Errorf("empty %s event", k)
			}
			var kind vulndb.EventKind
			switch k {
			case "introduced":
				kind = vulndb.Introduced
			case "fixed":
				kind = vulndb.Fixed
			case "last_affected":
				kind = vulndb.LastAffected
			case "limit":
				kind = vulndb.Limit
			default:
				return nil, fmt.Errorf("unknown event %q", k)
			}
			out = append(out, vulndb.Event{Kind: kind, Version: v})
		}
	}
	return out, nil
}

func scoreSeverity(source string, s severity, id, name string, sink vulndb.Sink) (vulndb.Severity, bool) {
	switch strings.ToUpper(s.Type) {
	case "CVSS_V2", "CVSS_V3", "CVSS_V4":
		sev, err := vulndb.CVSS(source, s.Score)
		if err != nil {
			sink.Skip(source, "bad CVSS vector", fmt.Errorf("%s: %s: %v", name, id, err))
			return vulndb.Severity{}, false
		}
		return sev, true
	case "UBUNTU":
		return vulndb.Vendor(source, s.Score), s.Score != ""
	}
	return vulndb.Severity{}, false
}

func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// Sniff reports whether head, the start of a file, looks like an OSV record
// (JSON or YAML).
func Sniff(head []byte) bool {
	h := bytes.TrimSpace(head)
	if len(h) == 0 {
		return false
	}
	if h[0] == '{' || h[0] == '[' {
		return bytes.Contains(h, []byte(`"id"`)) && (bytes.Contains(h, []byte(`"affected"`)) ||
			bytes.Contains(h, []byte(`"modified"`)) || bytes.Contains(h, []byte(`"schema_version"`)))
	}
	return (bytes.HasPrefix(h, []byte("id:")) || bytes.Contains(h, []byte("\nid:"))) &&
		(bytes.Contains(h, []byte("affected:")) || bytes.Contains(h, []byte("modified:")))
}
