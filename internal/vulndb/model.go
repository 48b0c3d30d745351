package vulndb

import (
	"fmt"
	"strings"
	"time"
)

// Status is what a source says about a package and a vulnerability.
type Status uint8

// The statuses. A version inside an advisory's ranges whose range has a
// fixed version is StatusFixed (a fix exists); otherwise it has the
// advisory's own status, one of the others.
const (
	StatusUnknown     Status = iota
	StatusAffected           // affected, no fixed version yet (Ubuntu "needed", Debian "open")
	StatusFixed              // fixed in a later version
	StatusWillNotFix         // the distribution decided not to fix it (Ubuntu "ignored", Debian "<ignored>")
	StatusFixDeferred        // a fix is postponed (Ubuntu "deferred", Debian "<postponed>")
	StatusEndOfLife          // the release or package is out of support
	StatusNotAffected        // the package is not affected; matchers drop it
	// StatusUnderInvestigation: the distribution has not evaluated the
	// package yet (Ubuntu "needs-triage"). Scans leave such findings out
	// unless asked, as Trivy does, and never count them.
	StatusUnderInvestigation
)

var statusNames = [...]string{"unknown", "affected", "fixed", "will not fix", "fix deferred", "end of life", "not affected", "under investigation"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// MarshalText writes the status's name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a status's name.
func (s *Status) UnmarshalText(b []byte) error {
	return unmarshalName(b, statusNames[:], (*uint8)(s), "status")
}

// unmarshalName sets *v to the index of b's text in names.
func unmarshalName(b []byte, names []string, v *uint8, what string) error {
	for i, n := range names {
		if n == string(b) {
			*v = uint8(i)
			return nil
		}
	}
	return fmt.Errorf("unknown %s %q", what, b)
}

// Rating is a severity level.
type Rating uint8

// The ratings.
const (
	RatingUnknown Rating = iota
	RatingNegligible
	RatingLow
	RatingMedium
	RatingHigh
	RatingCritical
)

var ratingNames = [...]string{"UNKNOWN", "NEGLIGIBLE", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

func (r Rating) String() string {
	if int(r) < len(ratingNames) {
		return ratingNames[r]
	}
	return "UNKNOWN"
}

// MarshalText writes the rating's name.
func (r Rating) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a rating's name.
func (r *Rating) UnmarshalText(b []byte) error {
	return unmarshalName(b, ratingNames[:], (*uint8)(r), "rating")
}

// RatingOf maps a source's own word for a severity to a rating: Ubuntu's
// priorities (negligible, low, medium, high, critical, untriaged), Debian's
// urgencies (unimportant, low, medium, high, "not yet assigned"), Red Hat's
// impacts (Low, Moderate, Important, Critical) and GitHub's levels (LOW,
// MODERATE, HIGH, CRITICAL).
func RatingOf(word string) Rating {
	w := strings.ToLower(strings.TrimRight(strings.TrimSpace(word), "*"))
	switch w {
	case "negligible", "unimportant", "none":
		return RatingNegligible
	case "low":
		return RatingLow
	case "medium", "moderate":
		return RatingMedium
	case "high", "important":
		return RatingHigh
	case "critical":
		return RatingCritical
	}
	return RatingUnknown
}

// SeverityType says where a severity's rating comes from.
type SeverityType uint8

// The severity types.
const (
	SeverityVendor SeverityType = iota // the source's own word, kept in Vector
	SeverityCVSSv2
	SeverityCVSSv3
	SeverityCVSSv4
)

var severityTypeNames = [...]string{"vendor", "CVSS_V2", "CVSS_V3", "CVSS_V4"}

func (t SeverityType) String() string {
	if int(t) < len(severityTypeNames) {
		return severityTypeNames[t]
	}
	return "unknown"
}

// MarshalText writes the type's name.
func (t SeverityType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a type's name.
func (t *SeverityType) UnmarshalText(b []byte) error {
	return unmarshalName(b, severityTypeNames[:], (*uint8)(t), "severity type")
}

// Severity is one source's assessment.
type Severity struct {
	Source string       `json:"source,omitempty"` // who assessed it: a data source name, or "nvd" for NVD's CVSS quoted by a source
	Type   SeverityType `json:"type"`             // vendor word or CVSS version
	Vector string       `json:"vector,omitempty"` // the CVSS vector, or the vendor's word ("medium", "unimportant", "Important")
	Score  float64      `json:"score,omitempty"`  // the CVSS base score, 0 for vendor ratings
	Rating Rating       `json:"rating"`
}

// IsZero reports whether s says nothing.
func (s Severity) IsZero() bool { return s.Rating == RatingUnknown && s.Vector == "" }

// Vulnerability is what is known about one vulnerability, merged from every
// source that describes it under its ID or one of its aliases.
type Vulnerability struct {
	ID          string   // a CVE when there is one, else the first source's ID
	Aliases     []string // every other ID of it (GHSA, GO, PYSEC, RUSTSEC, DSA, ...)
	Title       string
	Description string
	References  []string
	Published   time.Time // zero when unknown
	Modified    time.Time
	Severities  []Severity // every source's assessment
}

// EventKind is the kind of an OSV range event.
type EventKind uint8

// The event kinds.
const (
	Introduced   EventKind = iota // the first affected version ("0": all versions before)
	Fixed                         // the first version with the fix
	LastAffected                  // the last affected version
	Limit                         // versions at or above are outside the range
)

var eventNames = [...]string{"introduced", "fixed", "last_affected", "limit"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// MarshalText writes the kind's name.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name.
func (k *EventKind) UnmarshalText(b []byte) error {
	return unmarshalName(b, eventNames[:], (*uint8)(k), "event")
}

// Event is a version where a range's state changes.
type Event struct {
	Kind    EventKind `json:"kind"`
	Version string    `json:"version"`
}

// RangeKind says how a range's versions are ordered.
type RangeKind uint8

// The range kinds.
const (
	RangeEcosystem RangeKind = iota // the namespace's own versioning scheme
	RangeSemVer                     // Semantic Versioning 2.0
	RangeNPM                        // a node-semver range expression in Expr (Node Security WG advisories)
)

var rangeKindNames = [...]string{"ECOSYSTEM", "SEMVER", "NPM"}

func (k RangeKind) String() string {
	if int(k) < len(rangeKindNames) {
		return rangeKindNames[k]
	}
	return "unknown"
}

// MarshalText writes the kind's name.
func (k RangeKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name.
func (k *RangeKind) UnmarshalText(b []byte) error {
	return unmarshalName(b, rangeKindNames[:], (*uint8)(k), "range kind")
}

// Range is a set of affected versions: the OSV model of events (stored
// sorted by version), or an npm range expression.
type Range struct {
	Kind   RangeKind `json:"kind"`
	Events []Event   `json:"events,omitempty"`
	Expr   string    `json:"expr,omitempty"` // RangeNPM: the affected versions
	// Fixed, for RangeNPM: the patched versions as an npm range, shown to
	// users as the fix.
	Fixed string `json:"fixed,omitempty"`
}

// Advisory is what one source says about one vulnerability in one package of
// one namespace.
type Advisory struct {
	VulnID   string `json:"vulnerability"` // the vulnerability's ID after merging aliases
	SourceID string `json:"source_id"`     // the ID under which the source publishes it (DSA-5380-1, GO-2023-1737, ...)
	Source   string `json:"source"`        // the data source ("alpine-secdb", "osv:Go", "ubuntu-cve-tracker", ...)
	// Status applies to versions inside Ranges or Versions that no fix
	// covers; StatusNotAffected says no version is affected.
	Status Status `json:"status"`
	// Ranges and Versions: a version is affected when it is inside one of
	// the ranges or equal to one of the versions. With neither, every
	// version is (a distribution's "needed" or "will not fix").
	Ranges   []Range  `json:"ranges,omitempty"`
	Versions []string `json:"versions,omitempty"`
	Severity Severity `json:"severity"`       // the source's own rating for this package, if any
	Note     string   `json:"note,omitempty"` // the source's remark ("out of standard support", "postponed")

	vuln uint32 // where its Vulnerability is stored
}

// Record is one vulnerability as one source describes it, with what it says
// about each package. Feed parsers produce records; a Builder merges them.
type Record struct {
	ID      string
	Aliases []string // the same vulnerability under other IDs (OSV aliases)
	// SourceID is the ID the source publishes the record under when it is
	// not ID: a DSA or an ALSA fixing several CVEs becomes one record per
	// CVE, each with the advisory's ID here.
	SourceID    string
	Source      string // the data source
	Title       string
	Description string
	References  []string
	Published   time.Time
	Modified    time.Time
	Severities  []Severity
	Affected    []Affected
}

// Affected is what a record says about one package.
type Affected struct {
	Namespace string // an ecosystem ("npm", "Go", "PyPI") or a release ("alpine:3.10", "debian:12")
	Package   string // the package name; for Debian and Ubuntu the source package
	Status    Status // see Advisory.Status; zero means StatusAffected
	Ranges    []Range
	Versions  []string
	Severity  Severity
	Note      string
}

// A Sink receives what a feed parser reads from one file.
type Sink interface {
	// Add adds a record.
	Add(Record)
	// Skip counts something the parser left out, under source and reason.
	// A malformed part comes with err saying what and where, and is
	// logged as a warning naming the file; an expected omission (a
	// withdrawn record, a GIT range) has a nil err and is only counted.
	Skip(source, reason string, err error)
}
