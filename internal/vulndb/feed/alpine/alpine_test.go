package alpine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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

// summary renders records as "ID [aliases] namespace package status fix".
func summary(recs []vulndb.Record) []string {
	var out []string
	for _, r := range recs {
		for _, a := range r.Affected {
			fix := ""
			for _, rg := range a.Ranges {
				for _, e := range rg.Events {
					if e.Kind == vulndb.Fixed {
						fix = e.Version
					}
				}
			}
			out = append(out, strings.Join([]string{r.ID, strings.Join(r.Aliases, ","), a.Namespace, a.Package, a.Status.String(), fix}, " "))
		}
		if r.Source != Source {
			out = append(out, "bad source "+r.Source)
		}
	}
	slices.Sort(out)
	return out
}

func TestYAML(t *testing.T) {
	rec := parse(t, "v3.10/main.yaml")
	// "CVE-2099-0734 CVE-2099-0735" in one entry are two vulnerabilities;
	// "CVE-2099-8904 XSA-214" is one with an alias.
	got := summary(rec.Records)
	wantParsed := []string{
		"CVE-2099-0001  alpine:3.10 xen not affected ",
		"CVE-2099-0734  alpine:3.10 openssl unknown 1.1.1a-r0",
		"CVE-2099-0735  alpine:3.10 openssl unknown 1.1.1a-r0",
		"CVE-2099-1547  alpine:3.10 openssl unknown 1.1.1d-r0",
		"CVE-2099-1549  alpine:3.10 openssl unknown 1.1.1d-r0",
		"CVE-2099-8904 XSA-214 alpine:3.10 xen unknown 4.9.0-r0",
		"XSA-207  alpine:3.10 xen unknown 4.9.0-r0",
	}
	if diff := cmp.Diff(wantParsed, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if got := rec.Summary(); got != "alpine-secdb: malformed record ×2" {
		t.Errorf("skips: %s", got)
	}
}

func TestJSONAndReleaseFromDirectory(t *testing.T) {
	got := summary(parse(t, "edge/community.json").Records)
	want := []string{"CVE-2099-1111  alpine:edge go unknown 1.10", "CVE-2099-39326  alpine:edge go unknown 1.21.5-r0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("edge (-want +got):\n%s", diff)
	}
	got = summary(parse(t, "v3.9/main.yaml").Records)
	if diff := cmp.Diff([]string{"CVE-2099-1234  alpine:3.9 zlib unknown 1.2.11-r4"}, got); diff != "" {
		t.Errorf("v3.9 (-want +got):\n%s", diff)
	}
	if err := Parse(context.Background(), strings.NewReader("packages: []\n"), "main.yaml", &feedtest.Recorder{}); err == nil {
		t.Error("a secdb without a release was accepted")
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"v3.10/main.yaml", "edge/community.json"} {
		b, _ := os.ReadFile(filepath.Join("testdata", n))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec := &feedtest.Recorder{}
		if Parse(context.Background(), bytes.NewReader(b), "v3.10/main.yaml", rec) != nil {
			return
		}
		for _, r := range rec.Records {
			if r.ID == "" || len(r.Affected) != 1 || r.Affected[0].Package == "" {
				t.Fatalf("bad record %+v", r)
			}
		}
	})
}
