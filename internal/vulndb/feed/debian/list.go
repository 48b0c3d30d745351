// Package debian reads the Debian security tracker's data: the DSA and DLA
// lists (data/DSA/list, data/DLA/list in the tracker's repository) and the
// tracker's JSON export (https://security-tracker.debian.org/tracker/data/json).
//
// Both are keyed by source package and name releases by codename; packages
// go to the release's namespace ("bullseye" → "debian:11"). Releases without
// a number (sid, experimental) are counted and left out.
package debian

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/vulndb"
)

// Sources: the DSA list, the DLA list and the JSON export.
const (
	SourceDSA     = "debian-dsa"
	SourceDLA     = "debian-dla"
	SourceTracker = "debian-tracker"
)

var (
	// [29 Mar 2023] DSA-5380-1 xorg-server - security update
	listHeader = regexp.MustCompile(`^\[(\d{1,2} [A-Za-z]{3} \d{4})\] ((?:DSA|DLA|DTSA)-[0-9A-Za-z-]+)\s*(.*)$`)
	// [bullseye] - xorg-server 2:1.20.11-1+deb11u6 (notes)
	listPackage = regexp.MustCompile(`^\[([a-z-]+)\]\s+-\s+(\S+)\s+(\S+)\s*(?:\((.*)\))?\s*$`)
	urgencyWord = regexp.MustCompile(`\b(unimportant|low|medium|high)\b`)
)

// listEntry is one advisory of a list.
type listEntry struct {
	id, title string
	line      int
	date      time.Time
	cves      []string
	pkgs      []vulndb.Affected
}

// ParseList reads a DSA or DLA list:
//
//	[29 Mar 2023] DSA-5380-1 xorg-server - security update
//		{CVE-2023-1393}
//		[bullseye] - xorg-server 2:1.20.11-1+deb11u6
//		[buster] - xorg-server <not-affected> (Vulnerable code not present)
//		NOTE: ...
//
// Each advisory becomes one record per CVE it lists, each with the
// advisory's ID as its SourceID (or one record under the advisory's ID when
// it lists none, as regression updates do). A version is the fixed version;
// <not-affected>, <unfixed>, <no-dsa>, <end-of-life>, <ignored> and
// <postponed> become statuses; <removed> packages are left out. An urgency in the notes ("(bug #322591; medium)") is the
// severity.
func ParseList(ctx context.Context, r io.Reader, name string, sink vulndb.Sink) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	var cur *listEntry
	source := SourceDSA
	flush := func() {
		if cur != nil {
			emitListEntry(cur, source, name, sink)
		}
		cur = nil
	}
	n := 0
	for sc.Scan() {
		n++
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		if raw[0] != ' ' && raw[0] != '\t' {
			flush()
			m := listHeader.FindStringSubmatch(line)
			if m == nil {
				sink.Skip(source, "malformed record", fmt.Errorf("%s:%d: not an advisory line: %q", name, n, truncate(line)))
				continue
			}
			if strings.HasPrefix(m[2], "DLA-") {
				source = SourceDLA
			}
			date, _ := time.Parse("2 Jan 2006", m[1])
			cur = &listEntry{id: m[2], title: strings.TrimSpace(m[2] + " " + m[3]), line: n, date: date}
			continue
		}
		if cur == nil {
			sink.Skip(source, "malformed record", fmt.Errorf("%s:%d: indented line outside an advisory", name, n))
			continue
		}
		switch {
		case strings.HasPrefix(line, "{"):
			for _, id := range strings.Fields(strings.Trim(line, "{}")) {
				if strings.HasPrefix(id, "CVE-") {
					cur.cves = append(cur.cves, id)
				}
			}
		case strings.HasPrefix(line, "["):
			a, reason, err := listPackageLine(line)
			if err != nil {
				sink.Skip(source, reason, fmt.Errorf("%s:%d: %s: %v", name, n, cur.id, err))
				continue
			}
			if reason != "" {
				sink.Skip(source, reason, nil)
				continue
			}
			cur.pkgs = append(cur.pkgs, a)
		case strings.HasPrefix(line, "NOTE:"):
		default:
			sink.Skip(source, "malformed record", fmt.Errorf("%s:%d: %s: unexpected line %q", name, n, cur.id, truncate(line)))
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// listPackageLine reads "[release] - package version-or-<status> (notes)".
// A line that is well-formed but left out returns a reason and no error.
func listPackageLine(line string) (vulndb.Affected, string, error) {
	m := listPackage.FindStringSubmatch(line)
	if m == nil {
		return vulndb.Affected{}, "malformed record", fmt.Errorf("package line %q", truncate(line))
	}
	rel, ok := vulndb.DebianRelease(m[1])
	if !ok {
		return vulndb.Affected{}, "release without a number", nil
	}
	a := vulndb.Affected{Namespace: "debian:" + rel, Package: m[2], Note: strings.TrimSpace(m[4])}
	if u := urgencyWord.FindString(m[4]); u != "" {
		a.Severity = vulndb.Vendor("", u)
	}
	switch v := m[3]; v {
	case "<not-affected>":
		a.Status = vulndb.StatusNotAffected
	case "<unfixed>", "<undetermined>", "<no-dsa>":
		a.Status = vulndb.StatusAffected
	case "<end-of-life>":
		a.Status = vulndb.StatusEndOfLife
	case "<ignored>":
		a.Status = vulndb.StatusWillNotFix
	case "<postponed>":
		a.Status = vulndb.StatusFixDeferred
	case "<removed>":
		return vulndb.Affected{}, "package removed", nil
	default:
		if strings.HasPrefix(v, "<") {
			return vulndb.Affected{}, "malformed record", fmt.Errorf("status %q", v)
		}
		a.Status = vulndb.StatusAffected
		a.Ranges = []vulndb.Range{{Events: []vulndb.Event{{Kind: vulndb.Introduced, Version: "0"}, {Kind: vulndb.Fixed, Version: v}}}}
	}
	return a, "", nil
}

func emitListEntry(e *listEntry, source, name string, sink vulndb.Sink) {
	if len(e.pkgs) == 0 {
		sink.Skip(source, "advisory without packages", nil)
		return
	}
	for i := range e.pkgs {
		if !e.pkgs[i].Severity.IsZero() {
			e.pkgs[i].Severity.Source = source
		}
	}
	rec := vulndb.Record{Source: source, Title: e.title, Published: e.date, Affected: e.pkgs,
		References: []string{"https://security-tracker.debian.org/tracker/" + e.id}}
	if len(e.cves) == 0 {
		rec.ID = e.id
		sink.Add(rec)
		return
	}
	for _, c := range e.cves {
		r := rec
		r.ID, r.SourceID = c, e.id
		sink.Add(r)
	}
}

// SniffList reports whether head, the start of a file, looks like a DSA or
// DLA list.
func SniffList(head []byte) bool {
	line, _, _ := strings.Cut(string(head), "\n")
	return listHeader.MatchString(strings.TrimSpace(line))
}
