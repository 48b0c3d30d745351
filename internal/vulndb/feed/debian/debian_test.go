package debian

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/vulndb"
	"github.com/lading-dev/lading/internal/vulndb/feed/feedtest"
)

func parse(t *testing.T, name string, json bool) *feedtest.Recorder {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	rec := &feedtest.Recorder{}
	if json {
		err = ParseJSON(context.Background(), bytes.NewReader(b), name, rec)
	} else {
		err = ParseList(context.Background(), bytes.NewReader(b), name, rec)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// lines renders each affected package of each record on one line.
func lines(recs []vulndb.Record) []string {
	var out []string
	for _, r := range recs {
		for _, a := range r.Affected {
			fix := ""
			for _, rg := range a.Ranges {
				fix = rg.Events[len(rg.Events)-1].Version
			}
			l := strings.Join([]string{r.ID, r.SourceID, r.Source, a.Namespace, a.Package, a.Status.String(), fix, a.Severity.Vector, a.Note}, "|")
			out = append(out, l)
		}
	}
	return out
}

func TestDSAList(t *testing.T) {
	rec := parse(t, "DSA/list", false)
	want := []string{
		"CVE-2099-1393|DSA-9380-1|debian-dsa|debian:11|xorg-server|affected|2:1.20.11-1+deb11u6||",
		"CVE-2099-1393|DSA-9380-1|debian-dsa|debian:10|xorg-server|not affected|||Vulnerable code not present",
		"CVE-2099-1394|DSA-9380-1|debian-dsa|debian:11|xorg-server|affected|2:1.20.11-1+deb11u6||",
		"CVE-2099-1394|DSA-9380-1|debian-dsa|debian:10|xorg-server|not affected|||Vulnerable code not present",
		"DSA-9356-2||debian-dsa|debian:11|sox|affected|14.4.2+git20190427-2+deb11u2||",
		"CVE-2099-0001|DSA-9001-1|debian-dsa|debian:3.1|awstats|affected|6.4-1sarge1|medium|bug #322591; medium",
	}
	if diff := cmp.Diff(want, lines(rec.Records)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if got := rec.Records[0].Title; got != "DSA-9380-1 xorg-server - security update" {
		t.Errorf("title %q", got)
	}
	if got := rec.Records[0].Published.Format("2006-01-02"); got != "2099-03-29" {
		t.Errorf("published %s", got)
	}
	if s := rec.Records[3].Affected[0].Severity; s.Rating != vulndb.RatingMedium || s.Source != SourceDSA {
		t.Errorf("severity %+v", s)
	}
	wantSkips := strings.Join([]string{
		"debian-dsa: advisory without packages ×1",
		"debian-dsa: malformed record ×3",
		"debian-dsa: release without a number ×1",
	}, "\n")
	if got := rec.Summary(); got != wantSkips {
		t.Errorf("skips:\n%s\nwant:\n%s", got, wantSkips)
	}
	for _, err := range rec.Errors {
		if !strings.HasPrefix(err.Error(), "DSA/list:") {
			t.Errorf("error does not name the file and line: %v", err)
		}
	}
}

func TestDLAList(t *testing.T) {
	rec := parse(t, "DLA/list", false)
	want := []string{
		"CVE-2099-12362|DLA-9380-1|debian-dla|debian:10|firmware-nonfree|affected|20190114+really20220913-0+deb10u1||",
		"CVE-2099-12362|DLA-9380-1|debian-dla|debian:9|firmware-nonfree|end of life|||",
	}
	if diff := cmp.Diff(want, lines(rec.Records)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func TestTrackerJSON(t *testing.T) {
	rec := parse(t, "tracker.json", true)
	want := []string{
		"CVE-2099-0464||debian-tracker|debian:12|openssl|affected|3.0.8-1|low|",
		"CVE-2099-0464||debian-tracker|debian:11|openssl|will not fix||unimportant|Minor issue",
		"CVE-2099-0464||debian-tracker|debian:10|openssl|end of life|||",
		"CVE-2099-0464||debian-tracker|debian:13|openssl|not affected|||",
		"TEMP-0000000-ABCDEF||debian-tracker|debian:12|openssl|affected|||undetermined",
		"TEMP-0000000-ABCDEF||debian-tracker|debian:13|openssl|fix deferred||medium**|Minor issue",
	}
	if diff := cmp.Diff(want, lines(rec.Records)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if rec.Records[0].Description == "" {
		t.Error("no description")
	}
	if s := rec.Records[1].Affected[1].Severity; s.Rating != vulndb.RatingMedium {
		t.Errorf("medium** = %+v", s)
	}
	wantSkips := "debian-tracker: malformed record ×1\ndebian-tracker: release without a number ×1"
	if got := rec.Summary(); got != wantSkips {
		t.Errorf("skips:\n%s\nwant:\n%s", got, wantSkips)
	}
	for _, in := range []string{"", "[]", `{"p": [1]}`, `{"p": {"CVE-1": {"releases": 5}}}`, `{"p": {}`} {
		if err := ParseJSON(context.Background(), bytes.NewReader([]byte(in)), "x.json", &feedtest.Recorder{}); err == nil {
			t.Errorf("ParseJSON(%q) succeeded", in)
		}
	}
}

func TestSniff(t *testing.T) {
	for _, n := range []string{"DSA/list", "DLA/list"} {
		b, _ := os.ReadFile(filepath.Join("testdata", n))
		if !SniffList(b) || SniffJSON(b) {
			t.Errorf("%s sniffed wrong", n)
		}
	}
	b, _ := os.ReadFile("testdata/tracker.json")
	if !SniffJSON(b) || SniffList(b) {
		t.Error("tracker.json sniffed wrong")
	}
	if SniffJSON([]byte(`{"id": "GO-1", "affected": []}`)) {
		t.Error("OSV sniffed as tracker JSON")
	}
}

func FuzzParseList(f *testing.F) {
	for _, n := range []string{"DSA/list", "DLA/list"} {
		b, _ := os.ReadFile(filepath.Join("testdata", n))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec := &feedtest.Recorder{}
		if ParseList(context.Background(), bytes.NewReader(b), "list", rec) != nil {
			return
		}
		check(t, rec)
	})
}

func FuzzParseJSON(f *testing.F) {
	b, _ := os.ReadFile("testdata/tracker.json")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		rec := &feedtest.Recorder{}
		if ParseJSON(context.Background(), bytes.NewReader(b), "x.json", rec) != nil {
			return
		}
		check(t, rec)
	})
}

func check(t *testing.T, rec *feedtest.Recorder) {
	for _, r := range rec.Records {
		if r.ID == "" || len(r.Affected) == 0 {
			t.Fatalf("bad record %+v", r)
		}
		for _, a := range r.Affected {
			if !strings.HasPrefix(a.Namespace, "debian:") || a.Package == "" {
				t.Fatalf("bad package %+v", a)
			}
		}
	}
}
