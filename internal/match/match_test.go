package match

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/vulndb"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func ev(kv ...string) []vulndb.Event {
	var out []vulndb.Event
	for i := 0; i < len(kv); i += 2 {
		k := map[string]vulndb.EventKind{"i": vulndb.Introduced, "f": vulndb.Fixed, "l": vulndb.LastAffected}[kv[i]]
		out = append(out, vulndb.Event{Kind: k, Version: kv[i+1]})
	}
	return out
}

func rng(kv ...string) []vulndb.Range { return []vulndb.Range{{Events: ev(kv...)}} }

func fixture(t *testing.T) *vulndb.DB {
	t.Helper()
	nvd, _ := vulndb.CVSS("nvd", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
	goCVSS, _ := vulndb.CVSS("osv:Go", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N")
	recs := []vulndb.Record{
		// Alpine, keyed by origin.
		{ID: "CVE-2099-0001", Source: "alpine-secdb", Affected: []vulndb.Affected{{Namespace: "alpine:3.10", Package: "openssl", Ranges: rng("i", "0", "f", "1.1.1d-r0")}}},
		{ID: "CVE-2099-0002", Source: "alpine-secdb", Affected: []vulndb.Affected{{Namespace: "alpine:3.10", Package: "openssl", Status: vulndb.StatusNotAffected}}},
		{ID: "ALPINE-CVE-2099-0002", Aliases: []string{"CVE-2099-0002"}, Source: "osv:Alpine", Affected: []vulndb.Affected{{Namespace: "alpine:3.10", Package: "openssl", Ranges: rng("i", "0", "f", "9.9.9-r0")}}},
		{ID: "CVE-2099-0003", Source: "alpine-secdb", Severities: []vulndb.Severity{nvd}, Affected: []vulndb.Affected{{Namespace: "alpine:3.10", Package: "openssl", Ranges: rng("i", "0", "f", "1.0.2-r0")}}},
		// Debian, keyed by source package, fixed versions are source versions.
		{ID: "CVE-2099-0010", Source: "debian-tracker", Severities: []vulndb.Severity{nvd}, Affected: []vulndb.Affected{{Namespace: "debian:12", Package: "openssl", Ranges: rng("i", "0", "f", "3.0.8-1"), Severity: vulndb.Vendor("debian-tracker", "low")}}},
		{ID: "CVE-2099-0011", Source: "debian-tracker", Severities: []vulndb.Severity{nvd}, Affected: []vulndb.Affected{{Namespace: "debian:12", Package: "openssl", Status: vulndb.StatusWillNotFix, Severity: vulndb.Vendor("debian-tracker", "unimportant"), Note: "Minor issue"}}},
		{ID: "CVE-2099-0012", Source: "debian-tracker", Affected: []vulndb.Affected{{Namespace: "debian:12", Package: "openssl", Status: vulndb.StatusEndOfLife}}},
		{ID: "CVE-2099-0013", Source: "debian-tracker", Affected: []vulndb.Affected{{Namespace: "debian:12", Package: "openssl", Ranges: rng("i", "0", "f", "3.0.12-1~deb12u1")}}},
		{ID: "CVE-2099-0013", SourceID: "DSA-9999-1", Source: "debian-dsa", Affected: []vulndb.Affected{{Namespace: "debian:12", Package: "openssl", Ranges: rng("i", "0", "f", "3.0.12-1~deb12u1")}}},
		// Ubuntu: the tracker's priority wins over NVD's score.
		{ID: "CVE-2099-0020", Source: "ubuntu-cve-tracker", Severities: []vulndb.Severity{nvd}, Affected: []vulndb.Affected{
			{Namespace: "ubuntu:18.04", Package: "openssl", Ranges: rng("i", "0", "f", "1.1.1-1ubuntu2.1~18.04.5"), Severity: vulndb.Vendor("ubuntu-cve-tracker", "low")},
			{Namespace: "ubuntu:18.04", Package: "nodejs", Status: vulndb.StatusNotAffected}}},
		{ID: "UBUNTU-CVE-2099-0020", Aliases: []string{"CVE-2099-0020"}, Source: "osv:Ubuntu", Affected: []vulndb.Affected{{Namespace: "ubuntu:18.04", Package: "nodejs", Ranges: rng("i", "0")}}},
		// npm, Node Security WG ranges.
		{ID: "NSWG-ECO-12", Aliases: []string{"CVE-2099-0030"}, Source: "nodejs-security-wg", Title: "Prototype pollution",
			Affected: []vulndb.Affected{{Namespace: "npm", Package: "lodash", Ranges: []vulndb.Range{{Kind: vulndb.RangeNPM, Expr: "<4.17.5", Fixed: ">=4.17.5"}}}}},
		{ID: "NSWG-ECO-13", Source: "nodejs-security-wg", Affected: []vulndb.Affected{{Namespace: "npm", Package: "lodash", Ranges: []vulndb.Range{{Kind: vulndb.RangeNPM, Expr: "<4.17.11"}}}}},
		// Go: the same CVE from the Go database and GitHub.
		{ID: "GO-2099-0001", Aliases: []string{"CVE-2099-0040", "GHSA-aaaa-bbbb-cccc"}, Source: "osv:Go", Title: "Header injection", Severities: []vulndb.Severity{goCVSS},
			Affected: []vulndb.Affected{{Namespace: "Go", Package: "example.com/gin", Ranges: []vulndb.Range{{Kind: vulndb.RangeSemVer, Events: ev("i", "1.3.1-0.20190301021747-ccb9e902956d", "f", "1.9.1")}}}}},
		{ID: "GHSA-aaaa-bbbb-cccc", Aliases: []string{"CVE-2099-0040"}, Source: "osv:GitHub", Severities: []vulndb.Severity{vulndb.Vendor("osv:GitHub", "MODERATE")},
			Affected: []vulndb.Affected{{Namespace: "Go", Package: "example.com/gin", Ranges: rng("i", "0", "f", "1.9.0")}}},
		{ID: "GO-2099-0002", Source: "osv:Go", Affected: []vulndb.Affected{{Namespace: "Go", Package: "stdlib", Ranges: []vulndb.Range{{Kind: vulndb.RangeSemVer, Events: ev("i", "0", "f", "1.20.5")}}}}},
		// PyPI: a language package whose only severity is a word.
		{ID: "PYSEC-2099-1", Source: "osv:PyPI", Severities: []vulndb.Severity{vulndb.Vendor("osv:PyPI", "HIGH")},
			Affected: []vulndb.Affected{{Namespace: "PyPI", Package: "Requests", Ranges: rng("i", "2.3.0", "f", "2.31.0"), Versions: []string{"0.9.zzz"}}}},
		// AlmaLinux: binary rpm names, Red Hat impact.
		{ID: "CVE-2099-0050", SourceID: "ALSA-2099:1", Source: "osv:AlmaLinux",
			Affected: []vulndb.Affected{{Namespace: "almalinux:9", Package: "libuuid", Ranges: rng("i", "0", "f", "2.37.4-11.el9_2"), Severity: vulndb.Vendor("osv:AlmaLinux", "Important")}}},
	}
	b := vulndb.NewBuilder(discard)
	for _, r := range recs {
		b.Add(r)
	}
	path := filepath.Join(t.TempDir(), vulndb.FileName)
	if _, err := b.Write(context.Background(), path, vulndb.Metadata{}); err != nil {
		t.Fatal(err)
	}
	db, err := vulndb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// line renders a match for comparisons.
func line(m Match) string {
	return strings.Join([]string{m.Package.Name, m.VulnerabilityID, m.SourceID, m.DataSource, m.InstalledVersion,
		strings.Join(m.FixedVersions, ","), m.Status.String(), m.Severity.Rating.String() + "/" + m.Severity.Source, m.Note}, " | ")
}

func TestMatch(t *testing.T) {
	db := fixture(t)
	var logs bytes.Buffer
	m := New(db, slog.New(slog.NewTextHandler(&logs, nil)))
	tests := []struct {
		name string
		pkg  Package
		want []string
	}{
		{"alpine by origin, release cut to major.minor", Package{Name: "libcrypto1.1", Version: "1.1.1c-r0", SourceName: "openssl", Namespace: "alpine:3.10.4"},
			[]string{"libcrypto1.1 | CVE-2099-0001 | CVE-2099-0001 | alpine-secdb | 1.1.1c-r0 | 1.1.1d-r0 | fixed | UNKNOWN/ | "}},
		{"alpine fixed version installed", Package{Name: "libssl1.1", Version: "1.1.1d-r2", SourceName: "openssl", Namespace: "alpine:3.10"}, nil},
		{"alpine pre-release below the fix", Package{Name: "openssl", Version: "1.0.2_rc1-r0", Namespace: "alpine:3.10"},
			[]string{"openssl | CVE-2099-0001 | CVE-2099-0001 | alpine-secdb | 1.0.2_rc1-r0 | 1.1.1d-r0 | fixed | UNKNOWN/ | ",
				"openssl | CVE-2099-0003 | CVE-2099-0003 | alpine-secdb | 1.0.2_rc1-r0 | 1.0.2-r0 | fixed | CRITICAL/nvd | "}},
		{"debian by source name and version", Package{Name: "libssl3", Version: "3.0.11-1~deb12u2+b1", SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u2", Namespace: "debian:12"},
			[]string{"libssl3 | CVE-2099-0011 | CVE-2099-0011 | debian-tracker | 3.0.11-1~deb12u2 |  | will not fix | NEGLIGIBLE/debian-tracker | Minor issue",
				"libssl3 | CVE-2099-0012 | CVE-2099-0012 | debian-tracker | 3.0.11-1~deb12u2 |  | end of life | UNKNOWN/ | ",
				// The DSA list and the tracker agree; the DSA list sorts first.
				"libssl3 | CVE-2099-0013 | DSA-9999-1 | debian-dsa | 3.0.11-1~deb12u2 | 3.0.12-1~deb12u1 | fixed | UNKNOWN/ | "}},
		{"debian without a source name", Package{Name: "openssl", Version: "3.0.7-1", Namespace: "debian:bookworm"},
			[]string{"openssl | CVE-2099-0010 | CVE-2099-0010 | debian-tracker | 3.0.7-1 | 3.0.8-1 | fixed | LOW/debian-tracker | ",
				"openssl | CVE-2099-0011 | CVE-2099-0011 | debian-tracker | 3.0.7-1 |  | will not fix | NEGLIGIBLE/debian-tracker | Minor issue",
				"openssl | CVE-2099-0012 | CVE-2099-0012 | debian-tracker | 3.0.7-1 |  | end of life | UNKNOWN/ | ",
				"openssl | CVE-2099-0013 | DSA-9999-1 | debian-dsa | 3.0.7-1 | 3.0.12-1~deb12u1 | fixed | UNKNOWN/ | "}},
		{"ubuntu priority over CVSS", Package{Name: "libssl1.1", Version: "1.1.1-1ubuntu2.1~18.04.4", SourceName: "openssl", SourceVersion: "1.1.1-1ubuntu2.1~18.04.4", Namespace: "ubuntu:18.04"},
			[]string{"libssl1.1 | CVE-2099-0020 | CVE-2099-0020 | ubuntu-cve-tracker | 1.1.1-1ubuntu2.1~18.04.4 | 1.1.1-1ubuntu2.1~18.04.5 | fixed | LOW/ubuntu-cve-tracker | "}},
		{"ubuntu not affected beats OSV", Package{Name: "nodejs", Version: "8.10.0~dfsg-2ubuntu0.4", Namespace: "ubuntu:18.04"}, nil},
		{"npm ranges", Package{Name: "lodash", Version: "4.17.4", Namespace: "npm"},
			[]string{"lodash | CVE-2099-0030 | NSWG-ECO-12 | nodejs-security-wg | 4.17.4 | >=4.17.5 | fixed | UNKNOWN/ | ",
				"lodash | NSWG-ECO-13 | NSWG-ECO-13 | nodejs-security-wg | 4.17.4 |  | affected | UNKNOWN/ | "}},
		{"npm between", Package{Name: "lodash", Version: "4.17.5", Namespace: "npm"},
			[]string{"lodash | NSWG-ECO-13 | NSWG-ECO-13 | nodejs-security-wg | 4.17.5 |  | affected | UNKNOWN/ | "}},
		{"go: one match for two sources", Package{Name: "example.com/gin", Version: "v1.8.1", Namespace: "golang"},
			[]string{"example.com/gin | CVE-2099-0040 | GHSA-aaaa-bbbb-cccc | osv:GitHub | v1.8.1 | 1.9.0 | fixed | MEDIUM/osv:Go | "}},
		{"go pseudo-version below introduced", Package{Name: "example.com/gin", Version: "v1.3.1-0.20190101000000-aaaaaaaaaaaa", Namespace: "Go"},
			[]string{"example.com/gin | CVE-2099-0040 | GHSA-aaaa-bbbb-cccc | osv:GitHub | v1.3.1-0.20190101000000-aaaaaaaaaaaa | 1.9.0 | fixed | MEDIUM/osv:Go | "}},
		{"go stdlib release name", Package{Name: "stdlib", Version: "go1.20.4", Namespace: "Go"},
			[]string{"stdlib | GO-2099-0002 | GO-2099-0002 | osv:Go | go1.20.4 | 1.20.5 | fixed | UNKNOWN/ | "}},
		{"pypi normalized name, word severity", Package{Name: "requests", Version: "2.28.1", Namespace: "pypi"},
			[]string{"requests | PYSEC-2099-1 | PYSEC-2099-1 | osv:PyPI | 2.28.1 | 2.31.0 | fixed | HIGH/osv:PyPI | "}},
		{"pypi listed version outside the ranges", Package{Name: "REQUESTS", Version: "0.9.zzz", Namespace: "PyPI"},
			[]string{"REQUESTS | PYSEC-2099-1 | PYSEC-2099-1 | osv:PyPI | 0.9.zzz |  | affected | HIGH/osv:PyPI | "}},
		{"almalinux binary name, impact", Package{Name: "libuuid", Version: "2.37.4-10.el9", SourceName: "util-linux", Namespace: "almalinux:9.3"},
			[]string{"libuuid | CVE-2099-0050 | ALSA-2099:1 | osv:AlmaLinux | 2.37.4-10.el9 | 2.37.4-11.el9_2 | fixed | HIGH/osv:AlmaLinux | "}},
		{"unknown package", Package{Name: "nothing", Version: "1", Namespace: "npm"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := m.Match(context.Background(), tt.pkg)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range ms {
				got = append(got, line(x))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("matches (-want +got):\n%s", diff)
			}
		})
	}

	// A version the scheme cannot read is logged, not fatal.
	ms, err := m.Match(context.Background(), Package{Name: "requests", Version: "not a version!", Namespace: "PyPI"})
	if err != nil || len(ms) != 0 {
		t.Errorf("bad version: %v, %v", ms, err)
	}
	if !strings.Contains(logs.String(), "not comparable") {
		t.Errorf("no warning: %s", logs.String())
	}
	// Several packages in one call keep their order.
	ms, _ = m.Match(context.Background(), Package{Name: "lodash", Version: "4.17.5", Namespace: "npm"}, Package{Name: "stdlib", Version: "go1.20.4", Namespace: "Go"})
	if len(ms) != 2 || ms[0].Package.Name != "lodash" || ms[1].Title != "" || ms[1].Package.Name != "stdlib" {
		t.Errorf("two packages: %+v", ms)
	}
	// Text comes from the vulnerability.
	ms, _ = m.Match(context.Background(), Package{Name: "lodash", Version: "4.17.4", Namespace: "npm"})
	if ms[0].Title != "Prototype pollution" || ms[0].Aliases[0] != "NSWG-ECO-12" {
		t.Errorf("text: %+v", ms[0])
	}
}
