package python

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
		"usr/lib/python3/dist-packages/charset_normalizer-3.0.1.dist-info/METADATA": true,
		"usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO":           true,
		"usr/lib/python3/dist-packages/foo-1.0.egg-info":                            true,
		"site-packages/x-1.0-py3.egg/EGG-INFO/PKG-INFO":                             true,
		"src/x/PKG-INFO":           false,
		"x.dist-info/RECORD":       false,
		"app/poetry.lock":          true,
		"app/Pipfile.lock":         true,
		"app/uv.lock":              true,
		"app/requirements.txt":     true,
		"app/requirements-dev.txt": true,
		"app/docs/requirements.in": false,
		"app/other.txt":            false,
	} {
		if got := a.Wants(p, nil); got != want {
			t.Errorf("Wants(%q) = %v", p, got)
		}
	}
}

func TestAnalyze(t *testing.T) {
	type nv struct {
		Name, Version string
		Dev           bool
		Licenses      []string
	}
	for _, tc := range []struct {
		file, path, typ, target string
		want                    []nv
	}{
		{"METADATA", "usr/lib/python3/dist-packages/charset_normalizer-3.0.1.dist-info/METADATA", "python-packages", "usr/lib/python3/dist-packages",
			[]nv{{"charset-normalizer", "3.0.1", false, []string{"MIT", "MIT License"}}}},
		{"PKG-INFO", "usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO", "python-packages", "usr/lib/python3/dist-packages",
			[]nv{{"requests", "2.28.1", false, []string{"Apache Software License"}}}},
		{"PKG-INFO", "usr/lib/python3/dist-packages/requests-2.28.1.egg-info", "python-packages", "usr/lib/python3/dist-packages",
			[]nv{{"requests", "2.28.1", false, []string{"Apache Software License"}}}},
		{"PKG-INFO", "lib/site-packages/x-1.0-py3.egg/EGG-INFO/PKG-INFO", "python-packages", "lib/site-packages",
			[]nv{{"requests", "2.28.1", false, []string{"Apache Software License"}}}},
		{"METADATA-expr", "site-packages/packaging-24.2.dist-info/METADATA", "python-packages", "site-packages",
			[]nv{{"packaging", "24.2", false, []string{"Apache-2.0 OR BSD-2-Clause"}}}},
		{"poetry.lock", "app/poetry.lock", "poetry", "", []nv{{"certifi", "2022.9.24", false, nil}, {"pytest", "7.2.0", true, nil}, {"idna", "3.4", false, nil}}},
		{"uv.lock", "app/uv.lock", "uv", "", []nv{{"idna", "3.10", false, nil}}},
		{"Pipfile.lock", "app/Pipfile.lock", "pipenv", "", []nv{{"requests", "2.28.1", false, nil}, {"pytest", "7.2.0", true, nil}}},
		{"requirements.txt", "app/requirements.txt", "pip", "", []nv{{"Django", "4.2.1", false, nil}, {"requests", "2.28.1", false, nil}, {"urllib3", "1.26.12", false, nil}, {"idna", "3.4", false, nil}}},
	} {
		t.Run(tc.file+" at "+tc.path, func(t *testing.T) {
			b, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			r, err := New().Analyze(context.Background(), analyzer.BytesFile(tc.path, b))
			if err != nil {
				t.Fatal(err)
			}
			if r.Type != tc.typ || r.Target != tc.target {
				t.Errorf("type %q target %q", r.Type, r.Target)
			}
			var got []nv
			for _, p := range r.Packages {
				if p.Ecosystem != pkg.PyPI {
					t.Errorf("ecosystem %q", p.Ecosystem)
				}
				got = append(got, nv{p.Name, p.Version, p.Dev, p.Licenses})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseMetadata(f *testing.F) {
	for _, n := range []string{"METADATA", "PKG-INFO", "METADATA-expr"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, ok := ParseMetadata(b); ok && (p.Name == "" || p.Version == "") {
			t.Fatal("ok without a name or version")
		}
	})
}

func FuzzLockfiles(f *testing.F) {
	for _, n := range []string{"poetry.lock", "uv.lock", "Pipfile.lock", "requirements.txt"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parsePoetry(b)
		parseUV(b)
		parsePipfileLock(b)
		parseRequirements(b)
	})
}
