// Package feedtest helps test feed parsers: a Sink that records what it is
// given.
package feedtest

import (
	"fmt"
	"sort"
	"strings"

	"github.com/lading-dev/lading/internal/vulndb"
)

// Recorder is a vulndb.Sink that keeps the records and counts the skips.
type Recorder struct {
	Records []vulndb.Record
	Skipped map[string]int // "source: reason" → count
	Errors  []error        // the errors of malformed parts
}

// Add implements vulndb.Sink.
func (r *Recorder) Add(rec vulndb.Record) { r.Records = append(r.Records, rec) }

// Skip implements vulndb.Sink.
func (r *Recorder) Skip(source, reason string, err error) {
	if r.Skipped == nil {
		r.Skipped = map[string]int{}
	}
	r.Skipped[source+": "+reason]++
	if err != nil {
		r.Errors = append(r.Errors, err)
	}
}

// IDs lists the records' IDs in order, with their source IDs when they differ.
func (r *Recorder) IDs() []string {
	var ids []string
	for _, rec := range r.Records {
		id := rec.ID
		if rec.SourceID != "" {
			id += " (" + rec.SourceID + ")"
		}
		ids = append(ids, id)
	}
	return ids
}

// Summary is the skips as sorted "source: reason ×n" lines.
func (r *Recorder) Summary() string {
	var lines []string
	for k, n := range r.Skipped {
		lines = append(lines, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
