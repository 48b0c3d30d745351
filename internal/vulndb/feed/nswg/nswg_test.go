package nswg

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/vulndb"
	"github.com/lading-dev/lading/internal/vulndb/feed/feedtest"
)

func parse(t *testing.T, name string) *feedtest.Recorder {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	rec := &feedtest.Recorder{}
	if err := Parse(context.Background(), bytes.NewReader(b), name, rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestAdvisory(t *testing.T) {
	rec := parse(t, "410.json")
	cvss, _ := vulndb.CVSS(Source, "CVSS:3.0/AV:N/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:L")
	want := []vulndb.Record{{
		ID: "NSWG-ECO-410", Source: Source, Aliases: []string{},
		Title:       "merge-options prototype pollution",
		Description: "merge-options node module suffers from a prototype pollution vulnerability\n\nRecommendation: No fix is currently available for this vulnerability.",
		References:  []string{"https://github.com/nodejs/security-wg/blob/main/vuln/npm/410.json", "https://hackerone.example/reports/311336"},
		Published:   time.Date(2098, 4, 9, 0, 0, 0, 0, time.UTC), Modified: time.Date(2098, 4, 9, 0, 0, 0, 0, time.UTC),
		Severities: []vulndb.Severity{cvss},
		Affected: []vulndb.Affected{{Namespace: "npm", Package: "merge-options", Status: vulndb.StatusAffected,
			Ranges: []vulndb.Range{{Kind: vulndb.RangeNPM, Expr: "<=1.0.0"}}}},
	}}
	if diff := cmp.Diff(want, rec.Records); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestIndex(t *testing.T) {
	rec := parse(t, "index.json")
	if diff := cmp.Diff([]string{"NSWG-ECO-12", "NSWG-ECO-13"}, rec.IDs()); diff != "" {
		t.Fatalf("IDs (-want +got):\n%s", diff)
	}
	lodash := rec.Records[0]
	if r := lodash.Affected[0].Ranges[0]; r.Expr != "<4.17.5" || r.Fixed != ">=4.17.5" {
		t.Errorf("lodash range %+v", r)
	}
	if s := lodash.Severities; len(s) != 1 || s[0].Score != 5.6 || s[0].Rating != vulndb.RatingMedium || s[0].Vector != "" {
		t.Errorf("score without vector: %+v", s)
	}
	if lodash.Aliases[0] != "CVE-2098-3721" || lodash.Published.Hour() != 10 {
		t.Errorf("lodash %+v", lodash)
	}
	if r := rec.Records[1].Affected[0].Ranges[0]; r.Fixed != "" {
		t.Errorf("\"<0.0.0\" kept as a fix: %+v", r)
	}
	if got := rec.Summary(); got != "nodejs-security-wg: malformed record ×3" {
		t.Errorf("skips: %s", got)
	}
	for _, in := range []string{"", "[]", "{", `"x"`} {
		if err := Parse(context.Background(), strings.NewReader(in), "x.json", &feedtest.Recorder{}); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

func TestSniff(t *testing.T) {
	for _, n := range []string{"410.json", "index.json"} {
		b, _ := os.ReadFile(filepath.Join("testdata", n))
		if !Sniff(b) {
			t.Errorf("Sniff(%s) = false", n)
		}
	}
	if Sniff([]byte(`{"id": "GO-1", "affected": []}`)) {
		t.Error("OSV sniffed as NSWG")
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"410.json", "index.json"} {
		b, _ := os.ReadFile(filepath.Join("testdata", n))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec := &feedtest.Recorder{}
		if Parse(context.Background(), bytes.NewReader(b), "x.json", rec) != nil {
			return
		}
		for _, r := range rec.Records {
			if !strings.HasPrefix(r.ID, "NSWG-ECO-") || len(r.Affected) != 1 || r.Affected[0].Package == "" || r.Affected[0].Ranges[0].Expr == "" {
				t.Fatalf("bad record %+v", r)
			}
		}
	})
}
