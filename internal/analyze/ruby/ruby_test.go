package ruby

import (
	"context"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

func TestWants(t *testing.T) {
	a := New()
	for p, want := range map[string]bool{
		"usr/local/bundle/specifications/rake-13.0.6.gemspec":               true,
		"usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec": true,
		"usr/local/bundle/gems/rake-13.0.6/rake.gemspec":                    false,
		"app/Gemfile.lock": true,
		"app/Gemfile":      false,
	} {
		if got := a.Wants(p, nil); got != want {
			t.Errorf("Wants(%q) = %v", p, got)
		}
	}
}

func TestAnalyze(t *testing.T) {
	for _, tc := range []struct {
		file, path string
		want       *analyzer.Result
	}{
		{"rake-13.0.6.gemspec", "usr/local/bundle/specifications/rake-13.0.6.gemspec",
			&analyzer.Result{Type: "gemspec", Target: "usr/local/bundle", Packages: []pkg.Package{{Name: "rake", Version: "13.0.6", Ecosystem: pkg.RubyGems, Licenses: []string{"MIT"}}}}},
		{"rake-13.0.6.gemspec", "usr/lib/ruby/gems/3.1.0/specifications/default/rake-13.0.6.gemspec",
			&analyzer.Result{Type: "gemspec", Target: "usr/lib/ruby/gems/3.1.0", Packages: []pkg.Package{{Name: "rake", Version: "13.0.6", Ecosystem: pkg.RubyGems, Licenses: []string{"MIT"}}}}},
		{"Gemfile.lock", "app/Gemfile.lock", &analyzer.Result{Type: "bundler", Packages: []pkg.Package{
			{Name: "actioncable", Version: "7.0.4", Ecosystem: pkg.RubyGems},
			{Name: "nokogiri", Version: "1.13.10", Ecosystem: pkg.RubyGems},
			{Name: "racc", Version: "1.6.2", Ecosystem: pkg.RubyGems},
		}}},
	} {
		b, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		r, err := New().Analyze(context.Background(), analyzer.BytesFile(tc.path, b))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, r); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.path, diff)
		}
	}
	p, ok := ParseGemspec([]byte(`Gem::Specification.new do |spec|
  spec.name    = 'x'
  spec.version = Gem::Version.new("1.2")
  spec.license = 'Apache-2.0'
end`))
	if !ok || p.Name != "x" || p.Version != "1.2" || len(p.Licenses) != 1 {
		t.Errorf("ParseGemspec = %+v, %v", p, ok)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"rake-13.0.6.gemspec", "Gemfile.lock"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, ok := ParseGemspec(b); ok && (p.Name == "" || p.Version == "") {
			t.Fatal("incomplete")
		}
		for _, p := range ParseGemfileLock(b) {
			if p.Name == "" || p.Version == "" {
				t.Fatal("incomplete")
			}
		}
	})
}
