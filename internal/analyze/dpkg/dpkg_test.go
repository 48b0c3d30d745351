package dpkg

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

func TestWants(t *testing.T) {
	a := New()
	for path, want := range map[string]bool{
		"var/lib/dpkg/status":                      true,
		"var/lib/dpkg/status-old":                  false,
		"var/lib/dpkg/status.d/base-files":         true,
		"var/lib/dpkg/status.d/base-files.md5sums": false,
		"var/lib/dpkg/status.d/sub/x":              false,
		"var/lib/dpkg/status.d/.hidden":            false,
		"usr/share/doc/libssl3/copyright":          true,
		"usr/share/doc/libssl3/sub/copyright":      false,
		"usr/share/doc/copyright":                  false,
	} {
		if got := a.Wants(path, nil); got != want {
			t.Errorf("Wants(%q) = %v", path, got)
		}
	}
}

func TestStatus(t *testing.T) {
	b, err := os.ReadFile("testdata/status")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New().Analyze(context.Background(), analyzer.BytesFile("var/lib/dpkg/status", b))
	if err != nil {
		t.Fatal(err)
	}
	want := []pkg.Package{
		{Name: "libc6", Version: "2.36-9+deb12u4", Ecosystem: pkg.Deb, Arch: "amd64", Source: &pkg.Source{Name: "glibc", Version: "2.36-9+deb12u4"}},
		{Name: "bash", Version: "5.2.15-2+b2", Ecosystem: pkg.Deb, Arch: "amd64", Source: &pkg.Source{Name: "bash", Version: "5.2.15-2"}},
		{Name: "half", Version: "1.0-1", Ecosystem: pkg.Deb, Arch: "all", Source: &pkg.Source{Name: "half", Version: "1.0-1"}},
		{Name: "pending", Version: "1:2.0-1", Ecosystem: pkg.Deb, Arch: "all", Source: &pkg.Source{Name: "pending", Version: "1:2.0-1"}},
	}
	if diff := cmp.Diff(want, r.Packages); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
	wantW := []string{
		`line 47: package "broken": malformed Status "install ok"`,
		`line 51: package without a name or version (Package "noversion", Version "")`,
	}
	if diff := cmp.Diff(wantW, r.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if r.OS != nil || r.Target != "" {
		t.Errorf("a status file gave OS %+v, target %q", r.OS, r.Target)
	}
}

func TestDistroless(t *testing.T) {
	b, err := os.ReadFile("testdata/base-files")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New().Analyze(context.Background(), analyzer.BytesFile("var/lib/dpkg/status.d/base-files", b))
	if err != nil {
		t.Fatal(err)
	}
	want := []pkg.Package{{Name: "base-files", Version: "12.4+deb12u15", Ecosystem: pkg.Deb, Arch: "amd64", Source: &pkg.Source{Name: "base-files", Version: "12.4+deb12u15"}}}
	if diff := cmp.Diff(want, r.Packages); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&pkg.OS{ID: "debian", VersionID: "12", Family: "debian", Distroless: true}, r.OS); diff != "" {
		t.Errorf("OS hint (-want +got):\n%s", diff)
	}
	if r.Target != "var/lib/dpkg/status.d" {
		t.Errorf("target %q", r.Target)
	}
}

func TestLicenses(t *testing.T) {
	for file, want := range map[string][]string{
		"copyright-dep5":  {"Apache-2.0"},
		"copyright-plain": {"LGPL-2.1", "GPL-2"},
	} {
		b, err := os.ReadFile("testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		r, err := New().Analyze(context.Background(), analyzer.BytesFile("usr/share/doc/libfoo/copyright", b))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string][]string{"libfoo": want}, r.Licenses); diff != "" {
			t.Errorf("%s (-want +got):\n%s", file, diff)
		}
	}
	r, err := New().Analyze(context.Background(), analyzer.BytesFile("usr/share/doc/x/copyright", []byte("no license here")))
	if r != nil || err != nil {
		t.Errorf("a copyright file without licenses: %+v, %v", r, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"status", "base-files"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(b, n == "base-files")
	}
	f.Fuzz(func(t *testing.T, data []byte, noStatus bool) {
		pkgs, _, err := Parse(context.Background(), strings.NewReader(string(data)), noStatus)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.Source == nil {
				t.Fatalf("incomplete package %+v", p)
			}
		}
	})
}

func FuzzLicenses(f *testing.F) {
	for _, n := range []string{"copyright-dep5", "copyright-plain"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range Licenses(data) {
			if l == "" {
				t.Fatal("empty license")
			}
		}
	})
}
