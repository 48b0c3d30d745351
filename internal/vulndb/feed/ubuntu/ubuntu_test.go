package ubuntu

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

func TestTrackerFile(t *testing.T) {
	rec := parse(t, "active/CVE-2099-1547")
	if len(rec.Records) != 1 {
		t.Fatalf("records: %v", rec.IDs())
	}
	r := rec.Records[0]
	var got []string
	for _, a := range r.Affected {
		fix := ""
		for _, rg := range a.Ranges {
			fix = rg.Events[1].Version
			if rg.Events[1].Kind == vulndb.Limit {
				fix = "below " + fix
			}
		}
		got = append(got, strings.Join([]string{a.Namespace, a.Package, a.Status.String(), fix, a.Severity.Vector, a.Note}, "|"))
	}
	want := []string{
		"ubuntu-pro:12.04|openssl|under investigation||low|",
		"ubuntu:14.04|openssl|end of life||low|out of standard support",
		"ubuntu-pro:14.04|openssl|affected||low|",
		"ubuntu:16.04|openssl|affected|1.0.2g-1ubuntu4.16|low|",
		"ubuntu:18.04|openssl|affected|below 1.1.1-1ubuntu2.1~18.04.5|low|fix pending: 1.1.1-1ubuntu2.1~18.04.5",
		"ubuntu:19.04|openssl|end of life||low|reached end-of-life",
		"ubuntu:19.10|openssl|fix deferred||low|2099-10-01",
		"ubuntu:16.04|nodejs|not affected||medium|uses system openssl",
		"ubuntu:18.04|nodejs|will not fix||medium|the maintainers said no",
		"ubuntu:20.04|nodejs|affected||medium|",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
	if r.ID != "CVE-2099-1547" || !strings.HasPrefix(r.Description, "Normally in OpenSSL") || !strings.Contains(r.Description, "\nused in side") {
		t.Errorf("record: %q %q", r.ID, r.Description)
	}
	if !r.Published.Equal(time.Date(2099, 9, 10, 17, 15, 0, 0, time.UTC)) {
		t.Errorf("published %v", r.Published)
	}
	wantRefs := []string{"https://ubuntu.com/security/CVE-2099-1547", "https://cve.example.org/CVE-2099-1547", "https://www.openssl.example.org/news/secadv/20990910.txt"}
	if diff := cmp.Diff(wantRefs, r.References); diff != "" {
		t.Errorf("references (-want +got):\n%s", diff)
	}
	// NVD's score, and the CVE's priority: a rating of the vulnerability
	// for findings under its aliases in other feeds.
	if len(r.Severities) != 2 || r.Severities[0].Source != "nvd" || r.Severities[0].Score != 4.7 ||
		r.Severities[1] != vulndb.Vendor("ubuntu-cve-tracker", "low") {
		t.Errorf("severities %+v", r.Severities)
	}
	// pending (version): affected below the version, with no fix to
	// offer; the version itself has the fix.
	eco, _ := vulndb.Comparators("ubuntu:18.04")
	for v, want := range map[string]bool{"1.1.1-1ubuntu2.1~18.04.4": true, "1.1.1-1ubuntu2.1~18.04.5": false, "1.1.1-1ubuntu2.1~18.04.6": false} {
		in, fix, err := r.Affected[4].Ranges[0].Contains(eco, v)
		if err != nil || in != want || fix != "" {
			t.Errorf("pending fix, %s: in %v, fix %q, %v; want in %v, no fix", v, in, fix, err, want)
		}
	}
	if s := r.Affected[0].Severity; s.Rating != vulndb.RatingLow || s.Source != Source {
		t.Errorf("priority %+v", s)
	}
	wantSkips := strings.Join([]string{
		"ubuntu-cve-tracker: malformed record ×1",
		"ubuntu-cve-tracker: released without a version ×1",
		"ubuntu-cve-tracker: track that is not a release ×5",
	}, "\n")
	if got := rec.Summary(); got != wantSkips {
		t.Errorf("skips:\n%s\nwant:\n%s", got, wantSkips)
	}
}

func TestCandidateFromFileName(t *testing.T) {
	rec := parse(t, "active/CVE-2099-0002")
	if len(rec.Records) != 1 || rec.Records[0].ID != "CVE-2099-0002" {
		t.Fatalf("records %v", rec.IDs())
	}
	if a := rec.Records[0].Affected[0]; !a.Severity.IsZero() || a.Namespace != "ubuntu:18.04" {
		t.Errorf("untriaged priority kept: %+v", a)
	}
	if !rec.Records[0].Published.Equal(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("published %v", rec.Records[0].Published)
	}
	for _, in := range []string{"", " continuation first\n", "Candidate:\nPublicDate: x\n", "no colon here\n"} {
		if err := Parse(context.Background(), strings.NewReader(in), "00boilerplate", &feedtest.Recorder{}); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

func TestSniff(t *testing.T) {
	b, _ := os.ReadFile("testdata/active/CVE-2099-1547")
	if !Sniff(b) {
		t.Error("tracker file not recognized")
	}
	b, _ = os.ReadFile("testdata/active/CVE-2099-0002")
	if !Sniff(b) {
		t.Error("tracker file starting with PublicDateAtUSN not recognized")
	}
	if Sniff([]byte("id: GO-1\nCandidate")) {
		t.Error("recognized something else")
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"active/CVE-2099-1547", "active/CVE-2099-0002"} {
		b, _ := os.ReadFile(filepath.Join("testdata", n))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec := &feedtest.Recorder{}
		if Parse(context.Background(), bytes.NewReader(b), "active/CVE-2099-0003", rec) != nil {
			return
		}
		for _, r := range rec.Records {
			if r.ID == "" || len(r.Affected) == 0 {
				t.Fatalf("bad record %+v", r)
			}
			for _, a := range r.Affected {
				if a.Package == "" || !strings.HasPrefix(a.Namespace, "ubuntu") {
					t.Fatalf("bad package %+v", a)
				}
			}
		}
	})
}
