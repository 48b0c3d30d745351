package vulndb

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/version"
)

func ev(kv ...string) []Event {
	kinds := map[string]EventKind{"i": Introduced, "f": Fixed, "l": LastAffected, "x": Limit}
	var out []Event
	for i := 0; i < len(kv); i += 2 {
		out = append(out, Event{kinds[kv[i]], kv[i+1]})
	}
	return out
}

func TestRangeContains(t *testing.T) {
	semver := version.For(version.SemVer)
	tests := []struct {
		name   string
		events []Event
		v      string
		in     bool
		fix    string
	}{
		{"below introduced", ev("i", "1.0.0", "f", "1.2.0"), "0.9.0", false, ""},
		{"at introduced", ev("i", "1.0.0", "f", "1.2.0"), "1.0.0", true, "1.2.0"},
		{"inside", ev("i", "1.0.0", "f", "1.2.0"), "1.1.9", true, "1.2.0"},
		{"at fixed", ev("i", "1.0.0", "f", "1.2.0"), "1.2.0", false, ""},
		{"zero", ev("i", "0", "f", "1.2.0"), "0.0.1", true, "1.2.0"},
		{"no fix", ev("i", "0"), "9.9.9", true, ""},
		{"last affected: at", ev("i", "0", "l", "1.4.0"), "1.4.0", true, ""},
		{"last affected: above", ev("i", "0", "l", "1.4.0"), "1.4.1", false, ""},
		{"two branches: first", ev("i", "1.0.0", "f", "1.0.5", "i", "2.0.0", "f", "2.0.3"), "1.0.4", true, "1.0.5"},
		{"two branches: between", ev("i", "1.0.0", "f", "1.0.5", "i", "2.0.0", "f", "2.0.3"), "1.5.0", false, ""},
		{"two branches: second", ev("i", "1.0.0", "f", "1.0.5", "i", "2.0.0", "f", "2.0.3"), "2.0.0", true, "2.0.3"},
		{"limit", ev("i", "0", "x", "2.0.0"), "2.1.0", false, ""},
		{"below limit", ev("i", "0", "x", "2.0.0"), "1.9.0", true, ""},
		{"limit star", ev("i", "0", "x", "*"), "99.0.0", true, ""},
		{"pre-release", ev("i", "0", "f", "2.0.0"), "2.0.0-rc.1", true, "2.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, fix, err := Range{Kind: RangeSemVer, Events: tt.events}.Contains(semver, tt.v)
			if err != nil || in != tt.in || fix != tt.fix {
				t.Errorf("Contains(%q) = %v, %q, %v; want %v, %q", tt.v, in, fix, err, tt.in, tt.fix)
			}
		})
	}
	if _, _, err := (Range{Events: ev("i", "1.0.0")}).Contains(semver, "not-a-version"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad version: %v", err)
	}
	npm := Range{Kind: RangeNPM, Expr: "<4.17.5", Fixed: ">=4.17.5"}
	if in, fix, err := npm.Contains(nil, "4.17.4"); !in || fix != ">=4.17.5" || err != nil {
		t.Errorf("npm range: %v, %q, %v", in, fix, err)
	}
	// Node Security WG advisories whose vulnerable_versions also covers
	// patched versions (nodejs/security-wg vuln/npm/357.json, 400.json):
	// the patched ones are not affected.
	for _, tt := range []struct {
		r  Range
		v  string
		in bool
	}{
		{Range{Kind: RangeNPM, Expr: ">=2.0.0", Fixed: ">=2.15.0"}, "2.14.9", true},
		{Range{Kind: RangeNPM, Expr: ">=2.0.0", Fixed: ">=2.15.0"}, "2.15.0", false},
		{Range{Kind: RangeNPM, Expr: ">=2.0.0", Fixed: ">=2.15.0"}, "4.3.7", false},
		{Range{Kind: RangeNPM, Expr: "<=6.8.5", Fixed: ">=5.0.3 <6.0.0 || >=6.8.6"}, "5.0.2", true},
		{Range{Kind: RangeNPM, Expr: "<=6.8.5", Fixed: ">=5.0.3 <6.0.0 || >=6.8.6"}, "5.0.3", false},
		{Range{Kind: RangeNPM, Expr: "<=6.8.5", Fixed: ">=5.0.3 <6.0.0 || >=6.8.6"}, "6.8.5", true},
		{Range{Kind: RangeNPM, Expr: "<=99.999.99999"}, "1.0.0", true},
	} {
		if in, _, err := tt.r.Contains(nil, tt.v); in != tt.in || err != nil {
			t.Errorf("%s, patched %s: Contains(%s) = %v, %v; want %v", tt.r.Expr, tt.r.Fixed, tt.v, in, err, tt.in)
		}
	}
}

func TestAffects(t *testing.T) {
	eco, sv := Comparators("alpine:3.10")
	tests := []struct {
		name  string
		a     Advisory
		v     string
		aff   bool
		fixes []string
	}{
		{"all versions", Advisory{Status: StatusWillNotFix}, "1.0-r0", true, nil},
		{"not affected", Advisory{Status: StatusNotAffected, Ranges: []Range{{Events: ev("i", "0")}}}, "1.0-r0", false, nil},
		{"fixed", Advisory{Status: StatusAffected, Ranges: []Range{{Events: ev("i", "0", "f", "1.1.1d-r0")}}}, "1.1.1c-r0", true, []string{"1.1.1d-r0"}},
		{"fixed pre-release", Advisory{Status: StatusAffected, Ranges: []Range{{Events: ev("i", "0", "f", "1.0-r0")}}}, "1.0_rc1-r0", true, []string{"1.0-r0"}},
		{"version list", Advisory{Status: StatusAffected, Versions: []string{"1.0-r0", "1.0-r1"}}, "1.0-r1", true, nil},
		{"not listed", Advisory{Status: StatusAffected, Versions: []string{"1.0-r0"}}, "1.0-r1", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			aff, fixes, err := tt.a.Affects(eco, sv, tt.v)
			if err != nil || aff != tt.aff || !cmp.Equal(fixes, tt.fixes) {
				t.Errorf("Affects(%q) = %v, %v, %v; want %v, %v", tt.v, aff, fixes, err, tt.aff, tt.fixes)
			}
		})
	}
}

func TestSortEvents(t *testing.T) {
	c := version.For(version.Dpkg)
	got, ok := sortEvents(c, ev("f", "2.0-1", "i", "1.5-1", "f", "1.2-1", "i", "0", "f", "1.2-1"))
	want := ev("i", "0", "f", "1.2-1", "i", "1.5-1", "f", "2.0-1")
	if !ok || !cmp.Equal(got, want) {
		t.Errorf("sortEvents = %v, %v; want %v", got, ok, want)
	}
	in := ev("f", "1.0", "i", "bad version")
	if got, ok := sortEvents(c, in); ok || !cmp.Equal(got, in) {
		t.Errorf("unsortable events changed: %v, %v", got, ok)
	}
}

// TestEventsAtOneVersion: events at one version keep the record's order,
// which is what the records' own versions lists (osv.dev's expansion of the
// ranges) say.
func TestEventsAtOneVersion(t *testing.T) {
	pep440 := version.For(version.PEP440)
	tests := []struct {
		name   string
		events []Event
		v      string
		in     bool
		fix    string
	}{
		// PYSEC-2022-236 (pyspark): versions lists 3.1.1, 3.1.2, 3.2.0, 3.2.1.
		{"closed then reopened", ev("i", "0", "f", "3.1.1", "i", "3.2.0", "f", "3.2.2", "i", "3.1.1", "f", "3.1.3"), "3.1.1", true, "3.1.3"},
		{"closed then reopened, inside", ev("i", "0", "f", "3.1.1", "i", "3.2.0", "f", "3.2.2", "i", "3.1.1", "f", "3.1.3"), "3.1.2", true, "3.1.3"},
		{"closed then reopened, fixed", ev("i", "0", "f", "3.1.1", "i", "3.2.0", "f", "3.2.2", "i", "3.1.1", "f", "3.1.3"), "3.1.3", false, ""},
		// PYSEC-2023-72 (pyspark): versions lists 3.1.1, 3.1.2, 3.1.3, not 3.2.0.
		{"opened then closed", ev("i", "0", "f", "3.1.1", "i", "3.2.0", "f", "3.2.2", "i", "3.1.1", "f", "3.2.0"), "3.2.0", false, ""},
		{"opened then closed, below", ev("i", "0", "f", "3.1.1", "i", "3.2.0", "f", "3.2.2", "i", "3.1.1", "f", "3.2.0"), "3.1.3", true, "3.2.0"},
		// RUSTSEC-2023-0039 (buffered-reader): "introduced 1.2.0, fixed
		// 1.2.0" is an empty interval.
		{"empty interval", ev("i", "0", "f", "1.0.2", "i", "1.1.0", "f", "1.1.5", "i", "1.2.0", "f", "1.2.0"), "1.2.0", false, ""},
		{"empty interval, above", ev("i", "0", "f", "1.0.2", "i", "1.1.0", "f", "1.1.5", "i", "1.2.0", "f", "1.2.0"), "1.3.0", false, ""},
	}
	for _, tt := range tests {
		sorted, ok := sortEvents(pep440, tt.events)
		if !ok {
			t.Fatalf("%s: not sorted", tt.name)
		}
		in, fix, err := Range{Events: sorted}.Contains(pep440, tt.v)
		if err != nil || in != tt.in || fix != tt.fix {
			t.Errorf("%s: Contains(%s) = %v, %q, %v; want %v, %q", tt.name, tt.v, in, fix, err, tt.in, tt.fix)
		}
	}
}

func TestNamespace(t *testing.T) {
	tests := map[string]string{
		"Go": "Go", "golang": "Go", "npm": "npm", "PyPI": "PyPI", "pypi": "PyPI", "crates.io": "crates.io",
		"cargo": "crates.io", "Maven": "Maven", "Maven:https://maven.google.com/": "Maven", "RubyGems": "RubyGems",
		"gem": "RubyGems", "composer": "Packagist", "NuGet": "NuGet",
		"Alpine:v3.16": "alpine:3.16", "alpine:3.10.4": "alpine:3.10", "alpine:3.10": "alpine:3.10", "Alpine:edge": "alpine:edge",
		"Debian:12": "debian:12", "debian:12.15": "debian:12", "debian:bookworm": "debian:12", "Debian:3.1": "debian:3.1",
		"Ubuntu:22.04:LTS": "ubuntu:22.04", "Ubuntu:24.10": "ubuntu:24.10", "ubuntu:bionic": "ubuntu:18.04",
		"Ubuntu:Pro:18.04:LTS": "ubuntu-pro:18.04",
		"AlmaLinux:8":          "almalinux:8", "almalinux:8.9": "almalinux:8", "Rocky Linux:9": "rocky:9",
		"Wolfi": "wolfi", "Photon OS:3.0": "photon:3.0", "openSUSE:Leap 15.5": "opensuse:leap-15.5",
		"Unheard-Of": "Unheard-Of",
	}
	for in, want := range tests {
		if got := Namespace(in); got != want {
			t.Errorf("Namespace(%q) = %q, want %q", in, got, want)
		}
	}
	for ns, want := range map[string]bool{"alpine:3.10": true, "ubuntu-pro:18.04": true, "wolfi": true, "npm": false, "Go": false, "Maven": false} {
		if IsDistro(ns) != want {
			t.Errorf("IsDistro(%q) = %v", ns, !want)
		}
	}
	if got := DistroNamespace("debian", "12"); got != "debian:12" {
		t.Errorf("DistroNamespace = %q", got)
	}
	for in, want := range map[string]string{"Requests": "requests", "zope.interface": "zope-interface", "Foo__Bar-.baz": "foo-bar-baz", "_x": "x"} {
		if got := NormalizeName("PyPI", in); got != want {
			t.Errorf("NormalizeName(PyPI, %q) = %q, want %q", in, got, want)
		}
	}
}

func TestCVSS(t *testing.T) {
	tests := []struct {
		vector string
		typ    SeverityType
		score  float64
		rating Rating
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", SeverityCVSSv3, 9.8, RatingCritical},
		{"CVSS:3.0/AV:N/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:L", SeverityCVSSv3, 2.0, RatingLow},
		{"CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:N/A:N", SeverityCVSSv3, 4.7, RatingMedium},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", SeverityCVSSv4, 9.3, RatingCritical},
		{"AV:N/AC:L/Au:N/C:P/I:P/A:P", SeverityCVSSv2, 7.5, RatingHigh},
		{"(AV:N/AC:M/Au:N/C:N/I:P/A:N)", SeverityCVSSv2, 4.3, RatingMedium},
	}
	for _, tt := range tests {
		s, err := CVSS("src", tt.vector)
		if err != nil || s.Type != tt.typ || s.Score != tt.score || s.Rating != tt.rating || s.Source != "src" {
			t.Errorf("CVSS(%q) = %+v, %v; want %v %v %v", tt.vector, s, err, tt.typ, tt.score, tt.rating)
		}
	}
	for _, bad := range []string{"", "CVSS:3.1/AV:X", "garbage", "CVSS:9.9/AV:N"} {
		if _, err := CVSS("src", bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("CVSS(%q): err = %v", bad, err)
		}
	}
	for w, r := range map[string]Rating{"Important": RatingHigh, "MODERATE": RatingMedium, "unimportant": RatingNegligible, "low**": RatingLow, "untriaged": RatingUnknown, "not yet assigned": RatingUnknown} {
		if got := Vendor("x", w).Rating; got != r {
			t.Errorf("Vendor(%q) = %v, want %v", w, got, r)
		}
	}
}

func TestJSON(t *testing.T) {
	a := Advisory{VulnID: "CVE-1", Status: StatusWillNotFix, Severity: Vendor("s", "high"),
		Ranges: []Range{{Kind: RangeSemVer, Events: ev("i", "0", "f", "1.0.0")}}}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"status":"will not fix"`, `"rating":"HIGH"`, `"type":"vendor"`, `"kind":"SEMVER"`, `"kind":"introduced"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("%s lacks %s", b, s)
		}
	}
	var back Advisory
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, back, cmpopts.IgnoreUnexported(Advisory{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"status":"sort of"}`), &back); err == nil {
		t.Error("unknown status accepted")
	}
}
