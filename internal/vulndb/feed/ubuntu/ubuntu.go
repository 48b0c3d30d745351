// Package ubuntu reads the Ubuntu CVE tracker's files (ubuntu-cve-tracker,
// active/ and retired/): one file per CVE, fields as "Key: value" with
// continuation lines indented, and one line per release and source package:
//
//	Candidate: CVE-2019-1547
//	PublicDate: 2019-09-10 17:15:00 UTC
//	Priority: low
//	CVSS:
//	 nvd: CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:N/A:N
//	Patches_openssl:
//	bionic_openssl: released (1.1.1-1ubuntu2.1~18.04.5)
//	xenial_openssl: needed
//	trusty/esm_openssl: needs-triage
//	eoan_openssl: ignored (reached end-of-life)
//
// Releases are codenames ("bionic" → "ubuntu:18.04"); ESM releases
// ("trusty/esm", "esm-infra/xenial") go to "ubuntu-pro:14.04" and the like;
// upstream, devel, snap and other tracks are left out, counted. Statuses:
// released (version) is fixed in the version; needed, pending and active are
// affected (pending (version) only below the version, which has the fix but
// is not published yet); needs-triage is under investigation (Ubuntu has not
// evaluated the package; scans leave it out unless asked, as Trivy does);
// deferred is fix deferred; ignored is end of life when its note says so
// ("reached end-of-life", "out of standard support"), will not fix
// otherwise; not-affected is not affected; DNE (the package is not in the
// release) is skipped. The priority (per package when given as
// Priority_pkg) is the severity of each package's advisory; the CVE's own
// priority is also a rating of the vulnerability, for findings in other
// feeds under an alias of it (a Go module with the CVE, say).
package ubuntu

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/vulndb"
)

// Source is the data source name.
const Source = "ubuntu-cve-tracker"

type field struct {
	key, value string
	more       []string // continuation lines, unindented
	line       int
}

var (
	cveName   = regexp.MustCompile(`^CVE-\d{4}-\d+$`)
	statusRe  = regexp.MustCompile(`^([a-z-]+)(.*)$`)
	eolIgnore = regexp.MustCompile(`(?i)end[- ]of[- ]life|out of standard support|end of standard support|reached eol`)
)

// Parse reads one tracker file; name is its path.
func Parse(ctx context.Context, r io.Reader, name string, sink vulndb.Sink) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fields, bad, err := readFields(r)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, b := range bad {
		sink.Skip(Source, "malformed record", fmt.Errorf("%s:%v", name, b))
	}
	get := func(k string) *field {
		for i := range fields {
			if fields[i].key == k {
				return &fields[i]
			}
		}
		return nil
	}
	id := ""
	if f := get("Candidate"); f != nil {
		id = strings.TrimSpace(f.value)
	}
	if id == "" {
		if b := path.Base(strings.ReplaceAll(name, "\\", "/")); cveName.MatchString(b) {
			id = b
		}
	}
	if id == "" {
		return fmt.Errorf("%s: no Candidate", name)
	}
	rec := vulndb.Record{ID: id, Source: Source,
		References: []string{"https://ubuntu.com/security/" + id}}
	if f := get("Description"); f != nil {
		rec.Description = text(f)
	}
	if rec.Description == "" {
		if f := get("Ubuntu-Description"); f != nil {
			rec.Description = text(f)
		}
	}
	for _, k := range []string{"PublicDate", "PublicDateAtUSN"} {
		if f := get(k); f != nil && rec.Published.IsZero() {
			rec.Published = parseDate(f.value)
		}
	}
	for _, k := range []string{"References", "Bugs"} {
		if f := get(k); f != nil {
			for _, l := range append([]string{f.value}, f.more...) {
				if l = strings.TrimSpace(l); strings.HasPrefix(l, "http") {
					rec.References = append(rec.References, strings.Fields(l)[0])
				}
			}
		}
	}
	if f := get("CVSS"); f != nil {
		for _, l := range f.more {
			who, vec, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			fs := strings.Fields(vec)
			if len(fs) == 0 {
				continue
			}
			sev, err := vulndb.CVSS(strings.TrimSpace(who), fs[0])
			if err != nil {
				sink.Skip(Source, "bad CVSS vector", fmt.Errorf("%s:%d: %v", name, f.line, err))
				continue
			}
			rec.Severities = append(rec.Severities, sev)
		}
	}
	priority := ""
	if f := get("Priority"); f != nil {
		priority = strings.TrimSpace(f.value)
	}
	if sev := vulndb.Vendor(Source, priority); sev.Rating != vulndb.RatingUnknown {
		rec.Severities = append(rec.Severities, sev)
	}

	for _, f := range fields {
		if strings.HasPrefix(f.key, "Patches_") || strings.HasPrefix(f.key, "Tags_") || strings.HasPrefix(f.key, "Priority_") ||
			strings.HasPrefix(f.key, "Upstream_") || !strings.Contains(f.key, "_") {
			continue
		}
		release, pkg, _ := strings.Cut(f.key, "_")
		a, reason, err := packageLine(release, pkg, f.value)
		if err != nil {
			sink.Skip(Source, "malformed record", fmt.Errorf("%s:%d: %v", name, f.line, err))
			continue
		}
		if reason != "" {
			if reason != "DNE" {
				sink.Skip(Source, reason, nil)
			}
			continue
		}
		p := priority
		if pf := get("Priority_" + pkg); pf != nil {
			p = strings.TrimSpace(pf.value)
		}
		if p != "" && p != "untriaged" {
			a.Severity = vulndb.Vendor(Source, p)
		}
		rec.Affected = append(rec.Affected, a)
	}
	if len(rec.Affected) > 0 {
		sink.Add(rec)
	}
	return nil
}

// readFields splits a tracker file into fields. Lines that are not fields
// (stray text, "-- Tags_xen: ...") are returned as errors and left out; the
// tracker's own tools are as lenient.
func readFields(r io.Reader) (fields []field, bad []error, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		l := strings.TrimRight(sc.Text(), "\r")
		if n == 1 {
			l = strings.TrimPrefix(l, "\ufeff")
		}
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			if len(fields) == 0 {
				return nil, nil, fmt.Errorf("line %d: continuation line before any field", n)
			}
			f := &fields[len(fields)-1]
			f.more = append(f.more, strings.TrimSpace(l))
			continue
		}
		key, value, ok := splitField(l)
		if !ok {
			bad = append(bad, fmt.Errorf("%d: not a field: %q", n, truncate(l)))
			continue
		}
		fields = append(fields, field{key: key, value: value, line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if len(fields) == 0 {
		return nil, nil, fmt.Errorf("no fields")
	}
	return fields, bad, nil
}

// splitField splits "Key: value"; a key is letters, digits and "_./+-".
func splitField(l string) (key, value string, ok bool) {
	i := strings.IndexByte(l, ':')
	if i <= 0 {
		return "", "", false
	}
	for j := 0; j < i; j++ {
		c := l[j]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || j > 0 && strings.IndexByte("_./+-", c) >= 0) {
			return "", "", false
		}
	}
	return l[:i], strings.TrimSpace(l[i+1:]), true
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func text(f *field) string {
	return strings.TrimSpace(strings.Join(append([]string{f.value}, f.more...), "\n"))
}

func parseDate(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05 MST", "2006-01-02 15:04:05", "2006-01-02", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// namespace maps a tracker release to a namespace, or "" for tracks that
// are not releases.
func namespace(release string) string {
	if v, ok := vulndb.UbuntuRelease(release); ok {
		return "ubuntu:" + v
	}
	a, b, ok := strings.Cut(release, "/")
	if !ok {
		return ""
	}
	switch {
	case b == "esm":
		if v, ok := vulndb.UbuntuRelease(a); ok {
			return "ubuntu-pro:" + v
		}
	case strings.HasPrefix(a, "esm-"):
		if v, ok := vulndb.UbuntuRelease(b); ok {
			return "ubuntu-pro:" + v
		}
	}
	return ""
}

// packageLine reads "release_package: status (note)". Lines that are
// well-formed but say nothing placeable return a reason.
func packageLine(release, pkg, value string) (vulndb.Affected, string, error) {
	if pkg == "" {
		return vulndb.Affected{}, "", fmt.Errorf("%s_: no package", release)
	}
	if strings.HasPrefix(value, "DNE") {
		return vulndb.Affected{}, "DNE", nil
	}
	ns := namespace(release)
	if ns == "" {
		return vulndb.Affected{}, "track that is not a release", nil
	}
	// "status (note)", "status [note]", and the typos the files have:
	// "released (1.0-1", "not-affected 1.0-1)", "released (1.0)needs-triage".
	m := statusRe.FindStringSubmatch(value)
	if m == nil {
		return vulndb.Affected{}, "", fmt.Errorf("%s_%s: status %q", release, pkg, truncate(value))
	}
	status := m[1]
	note := strings.TrimSpace(m[2])
	if i := strings.IndexAny(note, ")]"); i >= 0 && (strings.HasPrefix(note, "(") || strings.HasPrefix(note, "[")) {
		note = note[:i]
	}
	note = strings.TrimSpace(strings.Trim(note, "()[] "))
	a := vulndb.Affected{Namespace: ns, Package: pkg, Note: note}
	switch status {
	case "released":
		fs := strings.Fields(note)
		if len(fs) == 0 || strings.Trim(fs[0], ",") == "" {
			return vulndb.Affected{}, "released without a version", nil
		}
		v := strings.Trim(fs[0], ",")
		if !looksLikeVersion(v) {
			return vulndb.Affected{}, "", fmt.Errorf("%s_%s: released version %q", release, pkg, truncate(v))
		}
		a.Status, a.Note = vulndb.StatusAffected, ""
		a.Ranges = []vulndb.Range{{Events: []vulndb.Event{{Kind: vulndb.Introduced, Version: "0"}, {Kind: vulndb.Fixed, Version: v}}}}
	case "needed", "active":
		a.Status = vulndb.StatusAffected
	case "needs-triage":
		// Ubuntu has not evaluated the package: not a verdict either way.
		a.Status = vulndb.StatusUnderInvestigation
	case "pending":
		// The tracker's README: vulnerable, and an update is pending; the
		// version is the one that will contain the fix. Versions at or
		// above it have the fix (an image can be newer than the tracker),
		// so they are outside; below it there is no published fix.
		a.Status = vulndb.StatusAffected
		if note != "" {
			a.Note = "fix pending: " + note
		}
		if fs := strings.Fields(note); len(fs) > 0 && looksLikeVersion(strings.Trim(fs[0], ",")) {
			a.Ranges = []vulndb.Range{{Events: []vulndb.Event{{Kind: vulndb.Introduced, Version: "0"}, {Kind: vulndb.Limit, Version: strings.Trim(fs[0], ",")}}}}
		}
	case "deferred":
		a.Status = vulndb.StatusFixDeferred
	case "ignored":
		a.Status = vulndb.StatusWillNotFix
		if eolIgnore.MatchString(note) {
			a.Status = vulndb.StatusEndOfLife
		}
	case "not-affected":
		a.Status = vulndb.StatusNotAffected
	default:
		return vulndb.Affected{}, "", fmt.Errorf("%s_%s: status %q", release, pkg, status)
	}
	return a, "", nil
}

// looksLikeVersion reports whether a released version can be a Debian
// version (it starts with a digit, or an epoch).
func looksLikeVersion(v string) bool {
	return v != "" && v[0] >= '0' && v[0] <= '9'
}

// Sniff reports whether head, the start of a file, looks like a tracker
// file.
func Sniff(head []byte) bool {
	return (bytes.HasPrefix(head, []byte("Candidate:")) || bytes.Contains(head, []byte("\nCandidate:"))) &&
		bytes.Contains(head, []byte("PublicDate"))
}
