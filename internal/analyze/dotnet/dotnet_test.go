package dotnet

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

func TestAnalyze(t *testing.T) {
	a := New()
	for p, want := range map[string]bool{"app/app.deps.json": true, "src/packages.lock.json": true, "app/app.runtimeconfig.json": false} {
		if a.Wants(p, nil) != want {
			t.Errorf("Wants(%q) != %v", p, want)
		}
	}
	for _, tc := range []struct {
		file, path, typ string
		want            []string
	}{
		{"app.deps.json", "app/app.deps.json", "dotnet-deps", []string{"Newtonsoft.Json 13.0.1", "System.Text.Json 6.0.0"}},
		{"packages.lock.json", "src/packages.lock.json", "nuget", []string{"Newtonsoft.Json 13.0.1", "System.Memory 4.5.4"}},
	} {
		b, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		r, err := a.Analyze(context.Background(), analyzer.BytesFile(tc.path, b))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range r.Packages {
			if p.Ecosystem != pkg.NuGet {
				t.Errorf("ecosystem %q", p.Ecosystem)
			}
			got = append(got, p.Name+" "+p.Version)
		}
		slices.Sort(got)
		if r.Type != tc.typ {
			t.Errorf("type %q", r.Type)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.file, diff)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"app.deps.json", "packages.lock.json"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseDeps(b)
		ParsePackagesLock(b)
	})
}
