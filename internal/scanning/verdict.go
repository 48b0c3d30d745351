package scanning

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/lading-dev/lading/internal/match"
	"github.com/lading-dev/lading/internal/report"
	"github.com/lading-dev/lading/internal/scan"
	"github.com/lading-dev/lading/internal/scanning/adapter"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
)

// A verdict is what a report says of an artifact with a given database:
// each vulnerability of each package (as the full report counts them),
// the highest severity and the summary. It is computed from the matcher's
// inputs, which a report keeps, so a new database re-evaluates it without
// reading the image.

// finding is one vulnerability of one package.
type finding struct {
	ID  string `json:"i"`
	Sev int    `json:"s"` // adapter.SeverityRank
	Fix bool   `json:"f,omitempty"`
}

type verdict struct {
	Findings []finding
	Severity int // the highest rank, 0 when there is no vulnerability
	Summary  scanapi.VulnerabilitySummary
}

// harborSeverity is Harbor's name of a report severity level.
func harborSeverity(level string) string {
	switch level {
	case report.Critical:
		return adapter.SeverityCritical
	case report.High:
		return adapter.SeverityHigh
	case report.Medium:
		return adapter.SeverityMedium
	case report.Low:
		return adapter.SeverityLow
	}
	return adapter.SeverityUnknown
}

// rankNames are the severities by rank.
var rankNames = []string{"None", adapter.SeverityUnknown, adapter.SeverityNegligible, adapter.SeverityLow, adapter.SeverityMedium, adapter.SeverityHigh, adapter.SeverityCritical}

func rankName(r int) string {
	if r < 0 || r >= len(rankNames) {
		return "None"
	}
	return rankNames[r]
}

// memo matches packages, remembering each package's findings for the
// run: images share most of their packages, and a re-evaluation of a
// whole registry asks for the same ones again and again.
type memo struct {
	m     *match.Matcher
	mu    sync.Mutex
	known map[match.Package][]finding
}

// memoLimit bounds the packages a memo remembers.
const memoLimit = 1 << 20

func newMemo(m *match.Matcher) *memo { return &memo{m: m, known: map[match.Package][]finding{}} }

func (mm *memo) findings(ctx context.Context, p match.Package) ([]finding, error) {
	mm.mu.Lock()
	fs, ok := mm.known[p]
	mm.mu.Unlock()
	if ok {
		return fs, nil
	}
	ms, err := mm.m.Match(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("match %s %s: %w", p.Name, p.Version, err)
	}
	fs = make([]finding, len(ms))
	for i, m := range ms {
		fs[i] = finding{ID: m.VulnerabilityID, Sev: adapter.SeverityRank(harborSeverity(scan.SeverityOf(m.Severity.Rating))), Fix: len(m.FixedVersions) > 0}
	}
	mm.mu.Lock()
	if len(mm.known) < memoLimit {
		mm.known[p] = fs
	}
	mm.mu.Unlock()
	return fs, nil
}

// compute is the verdict of the packages.
func (mm *memo) compute(ctx context.Context, pkgs []match.Package) (verdict, error) {
	v := newVerdict()
	for _, p := range pkgs {
		fs, err := mm.findings(ctx, p)
		if err != nil {
			return verdict{}, err
		}
		v.add(fs)
	}
	return v, nil
}

func newVerdict() verdict {
	return verdict{Summary: scanapi.VulnerabilitySummary{Summary: map[string]int{}}}
}

// add counts a package's findings.
func (v *verdict) add(fs []finding) {
	for _, f := range fs {
		v.Findings = append(v.Findings, f)
		v.Summary.Total++
		if f.Fix {
			v.Summary.Fixable++
		}
		v.Summary.Summary[rankName(f.Sev)]++
		v.Severity = max(v.Severity, f.Sev)
	}
}

// sameSummary reports whether the stored summary (JSON) counts as v's:
// the same total and fixable.
func (v verdict) sameSummary(stored string) bool {
	var o scanapi.VulnerabilitySummary
	json.Unmarshal([]byte(stored), &o)
	return v.Summary.Total == o.Total && v.Summary.Fixable == o.Fixable
}

// blocking returns the findings at or above rank min that no allowlist
// covers.
func (v verdict) blocking(min int, allowed func(id string) bool) []finding {
	var out []finding
	for _, f := range v.Findings {
		if f.Sev >= min && !allowed(f.ID) {
			out = append(out, f)
		}
	}
	return out
}

// Stored forms: JSON compressed with zstd.

var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(256<<20))
)

func pack(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return zenc.EncodeAll(b, nil), nil
}

func unpack(b []byte, v any) error {
	if len(b) == 0 {
		return fmt.Errorf("no stored data")
	}
	raw, err := zdec.DecodeAll(b, nil)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// severityOf parses a severity name, as project metadata spells it
// ("low", "High", "none").
func severityOf(name string) int {
	switch strings.ToLower(name) {
	case "none", "":
		return 1 // any vulnerability, whatever its severity
	case "unknown":
		return 1
	case "negligible":
		return 2
	case "low":
		return 3
	case "medium":
		return 4
	case "high":
		return 5
	case "critical":
		return 6
	}
	return 1
}
