package apk

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

func TestAnalyze(t *testing.T) {
	b, err := os.ReadFile("testdata/installed")
	if err != nil {
		t.Fatal(err)
	}
	a := New()
	if !a.Wants("lib/apk/db/installed", nil) || !a.Wants("usr/lib/apk/db/installed", nil) || a.Wants("lib/apk/db/triggers", nil) {
		t.Error("Wants picks the wrong files")
	}
	r, err := a.Analyze(context.Background(), analyzer.BytesFile("lib/apk/db/installed", b))
	if err != nil {
		t.Fatal(err)
	}
	want := []pkg.Package{
		{Name: "musl", Version: "1.2.5-r0", Ecosystem: pkg.Apk, Arch: "x86_64", Source: &pkg.Source{Name: "musl", Version: "1.2.5-r0"},
			Licenses: []string{"MIT"}},
		{Name: "busybox-binsh", Version: "1.36.1-r29", Ecosystem: pkg.Apk, Arch: "x86_64", Source: &pkg.Source{Name: "busybox", Version: "1.36.1-r29"},
			Licenses: []string{"GPL-2.0-only"}},
		{Name: "ssl_client", Version: "1.36.1-r29", Ecosystem: pkg.Apk, Arch: "x86_64", Source: &pkg.Source{Name: "busybox", Version: "1.36.1-r29"},
			Licenses: []string{"GPL-2.0-only"}},
	}
	if diff := cmp.Diff(want, r.Packages); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "line 40") {
		t.Errorf("warnings = %q, want one about the stanza at line 40", r.Warnings)
	}
}

func TestParseOddInput(t *testing.T) {
	for name, in := range map[string]string{
		"empty":             "",
		"blank lines":       "\n\n\n",
		"no colon":          "Pmusl\nV1\n",
		"crlf":              "P:a\r\nV:1\r\n",
		"single letters":    "P\nV\n:\n",
		"no trailing blank": "P:a\nV:1",
		"long line":         "P:" + strings.Repeat("x", maxLine+10) + "\nV:1\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Parse(context.Background(), strings.NewReader(in)); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/installed")
	f.Add(b)
	f.Add([]byte("P:a\nV:1\n\nP:b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, _, err := Parse(context.Background(), strings.NewReader(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" {
				t.Fatalf("package without a name or version: %+v", p)
			}
		}
	})
}
