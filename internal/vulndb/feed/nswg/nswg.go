// Package nswg reads the Node.js Security Working Group's npm advisories
// (nodejs/security-wg, vuln/npm/<n>.json), the format npm's advisories had
// before OSV:
//
//	{"id": 410, "title": "merge-options prototype pollution",
//	 "module_name": "merge-options", "cves": [],
//	 "vulnerable_versions": "<=1.0.0", "patched_versions": null,
//	 "overview": "...", "recommendation": "...", "references": ["..."],
//	 "created_at": "2018-02-17", "updated_at": "2018-04-09", "publish_date": "2018-04-09",
//	 "cvss_vector": "CVSS:3.0/AV:N/...", "cvss_score": 2}
//
// Each advisory becomes a record with ID NSWG-ECO-<id> and its CVEs as
// aliases, for package module_name in namespace "npm". vulnerable_versions is
// kept as an npm range expression (checked to parse); patched_versions is
// shown as the fix, except "<0.0.0", the working group's way of saying there
// is none. The directory's index.json, every advisory keyed by ID, is read
// too.
package nswg

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/version"
	"github.com/lading-dev/lading/internal/vulndb"
)

// Source is the data source name.
const Source = "nodejs-security-wg"

type advisory struct {
	ID                 json.Number `json:"id"`
	Title              string      `json:"title"`
	Overview           string      `json:"overview"`
	Recommendation     *string     `json:"recommendation"`
	CreatedAt          string      `json:"created_at"`
	UpdatedAt          string      `json:"updated_at"`
	PublishDate        string      `json:"publish_date"`
	ModuleName         string      `json:"module_name"`
	CVEs               []string    `json:"cves"`
	VulnerableVersions string      `json:"vulnerable_versions"`
	PatchedVersions    *string     `json:"patched_versions"`
	References         []string    `json:"references"`
	CVSSVector         *string     `json:"cvss_vector"`
	CVSSScore          *float64    `json:"cvss_score"`
}

// Parse reads one advisory file, or an index of advisories keyed by ID.
func Parse(ctx context.Context, r io.Reader, name string, sink vulndb.Sink) error {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("%s: NSWG JSON: %w", name, err)
	}
	if _, ok := raw["module_name"]; ok {
		return convert(raw, name, sink)
	}
	// An index: every value an advisory.
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		var one map[string]json.RawMessage
		if err := json.Unmarshal(raw[k], &one); err != nil || one["module_name"] == nil {
			sink.Skip(Source, "malformed record", fmt.Errorf("%s: entry %q is not an advisory", name, k))
			continue
		}
		if err := convert(one, name, sink); err != nil {
			sink.Skip(Source, "malformed record", err)
		}
	}
	return nil
}

func convert(raw map[string]json.RawMessage, name string, sink vulndb.Sink) error {
	b, _ := json.Marshal(raw)
	var a advisory
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&a); err != nil {
		return fmt.Errorf("%s: NSWG advisory: %w", name, err)
	}
	id, err := strconv.ParseUint(a.ID.String(), 10, 32)
	if err != nil {
		sink.Skip(Source, "malformed record", fmt.Errorf("%s: advisory id %q", name, a.ID))
		return nil
	}
	rid := fmt.Sprintf("NSWG-ECO-%d", id)
	pkg := strings.TrimSpace(a.ModuleName)
	expr := strings.TrimSpace(a.VulnerableVersions)
	if pkg == "" || expr == "" {
		sink.Skip(Source, "malformed record", fmt.Errorf("%s: %s: no module_name or vulnerable_versions", name, rid))
		return nil
	}
	if _, err := version.NPMSatisfies(expr, "0.0.0"); err != nil {
		sink.Skip(Source, "malformed record", fmt.Errorf("%s: %s: vulnerable_versions: %v", name, rid, err))
		return nil
	}
	fixed := ""
	if a.PatchedVersions != nil {
		fixed = strings.TrimSpace(*a.PatchedVersions)
	}
	if fixed == "<0.0.0" {
		fixed = ""
	}
	desc := strings.TrimSpace(a.Overview)
	if a.Recommendation != nil && strings.TrimSpace(*a.Recommendation) != "" {
		desc += "\n\nRecommendation: " + strings.TrimSpace(*a.Recommendation)
	}
	rec := vulndb.Record{
		ID: rid, Aliases: a.CVEs, Source: Source, Title: a.Title, Description: desc,
		References: append([]string{"https://github.com/nodejs/security-wg/blob/main/vuln/npm/" + strconv.FormatUint(id, 10) + ".json"}, a.References...),
		Published:  parseDate(a.PublishDate, a.CreatedAt), Modified: parseDate(a.UpdatedAt),
		Affected: []vulndb.Affected{{Namespace: "npm", Package: pkg, Status: vulndb.StatusAffected,
			Ranges: []vulndb.Range{{Kind: vulndb.RangeNPM, Expr: expr, Fixed: fixed}}}},
	}
	if a.CVSSVector != nil && strings.TrimSpace(*a.CVSSVector) != "" {
		sev, err := vulndb.CVSS(Source, *a.CVSSVector)
		if err != nil {
			sink.Skip(Source, "bad CVSS vector", fmt.Errorf("%s: %s: %v", name, rid, err))
		} else {
			rec.Severities = append(rec.Severities, sev)
		}
	}
	if len(rec.Severities) == 0 && a.CVSSScore != nil && *a.CVSSScore > 0 && *a.CVSSScore <= 10 {
		// A score without a usable vector: the working group scored
		// with CVSS 3.
		rec.Severities = append(rec.Severities, vulndb.CVSSScore(Source, vulndb.SeverityCVSSv3, *a.CVSSScore))
	}
	sink.Add(rec)
	return nil
}

func parseDate(ss ...string) time.Time {
	for _, s := range ss {
		s = strings.TrimSpace(s)
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC()
			}
		}
	}
	return time.Time{}
}

// Sniff reports whether head, the start of a file, looks like an NSWG
// advisory or index.
func Sniff(head []byte) bool {
	return bytes.Contains(head, []byte(`"module_name"`)) && bytes.Contains(head, []byte(`"vulnerable_versions"`))
}
