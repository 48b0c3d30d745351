package debian

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/lading-dev/lading/internal/vulndb"
)

// trackerIssue is one CVE (or TEMP- issue) of one source package.
type trackerIssue struct {
	Description string                    `json:"description"`
	Scope       string                    `json:"scope"`
	DebianBug   json.Number               `json:"debianbug"`
	Releases    map[string]trackerRelease `json:"releases"`
}

type trackerRelease struct {
	Status       string            `json:"status"`
	Repositories map[string]string `json:"repositories"`
	FixedVersion string            `json:"fixed_version"`
	Urgency      string            `json:"urgency"`
	NoDSA        string            `json:"nodsa"`
	NoDSAReason  string            `json:"nodsa_reason"`
}

// ParseJSON reads the tracker's JSON export, one source package at a time
// (the file is large):
//
//	{"openssl": {"CVE-2023-0464": {"description": "...", "scope": "remote",
//	  "releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.8-1",
//	    "urgency": "low", "repositories": {"bookworm": "3.0.11-1~deb12u2"}}}}}}
//
// Status "resolved" with a fixed version is fixed in it, with version "0" not
// affected; "open" is affected, or will not fix when nodsa_reason is
// "ignored", fix deferred when it is "postponed", end of life when the
// urgency is "end-of-life"; "undetermined" is affected. The urgency is the
// severity.
func ParseJSON(ctx context.Context, r io.Reader, name string, sink vulndb.Sink) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return fmt.Errorf("%s: tracker JSON: %w", name, err)
	}
	for dec.More() {
		if err := ctx.Err(); err != nil {
			return err
		}
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%s: tracker JSON: %w", name, err)
		}
		pkg, _ := tok.(string)
		var issues map[string]trackerIssue
		if err := dec.Decode(&issues); err != nil {
			// The rest of the file cannot be trusted to line up.
			return fmt.Errorf("%s: tracker JSON: package %q: %w", name, pkg, err)
		}
		if strings.TrimSpace(pkg) == "" {
			sink.Skip(SourceTracker, "malformed record", fmt.Errorf("%s: package without a name", name))
			continue
		}
		for _, id := range slices.Sorted(maps.Keys(issues)) {
			emitIssue(pkg, id, issues[id], name, sink)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return fmt.Errorf("%s: tracker JSON: %w", name, err)
	}
	return nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("want %q, got %v", d, tok)
	}
	return nil
}

func emitIssue(pkg, id string, is trackerIssue, name string, sink vulndb.Sink) {
	id = strings.TrimSpace(id)
	if id == "" {
		sink.Skip(SourceTracker, "malformed record", fmt.Errorf("%s: %s: issue without an ID", name, pkg))
		return
	}
	rec := vulndb.Record{ID: id, Source: SourceTracker, Description: is.Description,
		References: []string{"https://security-tracker.debian.org/tracker/" + id}}
	for _, codename := range slices.Sorted(maps.Keys(is.Releases)) {
		rel := is.Releases[codename]
		v, ok := vulndb.DebianRelease(codename)
		if !ok {
			sink.Skip(SourceTracker, "release without a number", nil)
			continue
		}
		a := vulndb.Affected{Namespace: "debian:" + v, Package: pkg, Note: strings.TrimSpace(rel.NoDSA)}
		urgency := strings.TrimSpace(rel.Urgency)
		if urgency != "" && urgency != "not yet assigned" && urgency != "end-of-life" {
			a.Severity = vulndb.Vendor(SourceTracker, urgency)
		}
		fixed := strings.TrimSpace(rel.FixedVersion)
		switch rel.Status {
		case "resolved":
			if fixed == "" {
				sink.Skip(SourceTracker, "resolved without a version", nil)
				continue
			}
			if fixed == "0" {
				a.Status = vulndb.StatusNotAffected
				break
			}
			a.Status = vulndb.StatusAffected
			a.Ranges = []vulndb.Range{{Events: []vulndb.Event{{Kind: vulndb.Introduced, Version: "0"}, {Kind: vulndb.Fixed, Version: fixed}}}}
		case "open", "undetermined":
			a.Status = vulndb.StatusAffected
			switch {
			case urgency == "end-of-life":
				a.Status = vulndb.StatusEndOfLife
			case rel.NoDSAReason == "ignored":
				a.Status = vulndb.StatusWillNotFix
			case rel.NoDSAReason == "postponed":
				a.Status = vulndb.StatusFixDeferred
			}
			if rel.Status == "undetermined" && a.Note == "" {
				a.Note = "undetermined"
			}
		default:
			sink.Skip(SourceTracker, "malformed record", fmt.Errorf("%s: %s %s %s: status %q", name, pkg, id, codename, rel.Status))
			continue
		}
		rec.Affected = append(rec.Affected, a)
	}
	if len(rec.Affected) > 0 {
		sink.Add(rec)
	}
}

var trackerHead = regexp.MustCompile(`^\s*\{\s*"[^"]*"\s*:\s*\{\s*"(CVE|TEMP|DSA|DLA)-`)

// SniffJSON reports whether head, the start of a file, looks like the
// tracker's JSON export.
func SniffJSON(head []byte) bool {
	return trackerHead.Match(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")))
}
