package npm

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
		"app/package-lock.json":                                 true,
		"app/npm-shrinkwrap.json":                               true,
		"yarn.lock":                                             true,
		"srv/pnpm-lock.yaml":                                    true,
		"app/node_modules/x/package-lock.json":                  false,
		"app/node_modules/.package-lock.json":                   false,
		"app/package.json":                                      false,
		"app/node_modules/express/package.json":                 true,
		"app/node_modules/@types/node/package.json":             true,
		"node_modules/a/node_modules/b/package.json":            true,
		"app/node_modules/express/lib/package.json":             false,
		"app/node_modules/.bin/package.json":                    false,
		"app/node_modules/@scope/x/node_modules/y/package.json": true,
	} {
		if got := a.Wants(p, nil); got != want {
			t.Errorf("Wants(%q) = %v", p, got)
		}
	}
}

type nv struct {
	Name, Version string
	Dev           bool
}

func nvs(ps []pkg.Package) []nv {
	var out []nv
	for _, p := range ps {
		out = append(out, nv{p.Name, p.Version, p.Dev})
	}
	return out
}

func TestLockfiles(t *testing.T) {
	for _, tc := range []struct {
		file, path, typ string
		want            []nv
	}{
		{"lock-v1.json", "app/package-lock.json", "npm", []nv{
			{"@types/node", "20.1.0", true}, {"debug", "2.6.9", false}, {"lodash", "4.17.21", false}, {"ms", "2.0.0", false}, {"ms", "2.1.3", false}}},
		{"lock-v3.json", "app/package-lock.json", "npm", []nv{
			{"@types/node", "20.1.0", true}, {"depd", "1.1.1", false}, {"depd", "1.1.2", false}, {"express", "4.16.0", false}, {"lodash", "4.17.21", false}, {"raw-body", "2.3.2", false}}},
		{"yarn-classic.lock", "yarn.lock", "yarn", []nv{{"@babel/code-frame", "7.12.13", false}, {"lodash", "4.17.21", false}, {"ms", "2.1.3", false}}},
		{"yarn-berry.lock", "yarn.lock", "yarn", []nv{{"@babel/code-frame", "7.12.13", false}, {"resolve", "1.22.1", false}}},
		{"pnpm-v5.yaml", "pnpm-lock.yaml", "pnpm", []nv{{"@types/react", "18.0.28", true}, {"loose-envify", "1.4.0", false}, {"react", "18.2.0", false}, {"typescript", "4.9.5", true}}},
		{"pnpm-v6.yaml", "pnpm-lock.yaml", "pnpm", []nv{{"@types/react", "18.0.28", true}, {"react", "18.2.0", false}}},
		{"pnpm-v9.yaml", "pnpm-lock.yaml", "pnpm", []nv{{"@types/react", "18.0.28", false}, {"loose-envify", "1.4.0", false}, {"react", "18.2.0", false}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			r, err := New().Analyze(context.Background(), analyzer.BytesFile(tc.path, b))
			if err != nil {
				t.Fatal(err)
			}
			if r.Type != tc.typ {
				t.Errorf("type %q", r.Type)
			}
			if diff := cmp.Diff(tc.want, nvs(r.Packages)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPackageJSON(t *testing.T) {
	for _, tc := range []struct {
		path, json string
		want       *analyzer.Result
	}{
		{"app/node_modules/express/package.json", `{"name":"express","version":"4.16.0","license":"MIT"}`,
			&analyzer.Result{Type: "node_modules", Target: "app/node_modules", Packages: []pkg.Package{{Name: "express", Version: "4.16.0", Ecosystem: pkg.Npm, Licenses: []string{"MIT"}}}}},
		{"node_modules/a/node_modules/@s/b/package.json", `{"name":"@s/b","version":"1.0.0","license":{"type":"ISC"}}`,
			&analyzer.Result{Type: "node_modules", Target: "node_modules", Packages: []pkg.Package{{Name: "@s/b", Version: "1.0.0", Ecosystem: pkg.Npm, Licenses: []string{"ISC"}}}}},
		{"x/node_modules/old/package.json", `{"name":"old","version":"0.1.0","licenses":[{"type":"MIT"},"BSD"]}`,
			&analyzer.Result{Type: "node_modules", Target: "x/node_modules", Packages: []pkg.Package{{Name: "old", Version: "0.1.0", Ecosystem: pkg.Npm, Licenses: []string{"MIT", "BSD"}}}}},
		{"node_modules/nover/package.json", `{"name":"nover"}`, nil},
	} {
		r, err := New().Analyze(context.Background(), analyzer.BytesFile(tc.path, []byte(tc.json)))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, r); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.path, diff)
		}
	}
	if _, err := New().Analyze(context.Background(), analyzer.BytesFile("node_modules/x/package.json", []byte("{"))); err == nil {
		t.Error("malformed package.json: no error")
	}
}

func FuzzLockfiles(f *testing.F) {
	for _, n := range []string{"lock-v1.json", "lock-v3.json", "yarn-classic.lock", "yarn-berry.lock", "pnpm-v5.yaml", "pnpm-v9.yaml"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) ([]pkg.Package, error){ParsePackageLock, ParseYarnLock, ParsePnpmLock} {
			ps, err := parse(b)
			for _, p := range ps {
				if err == nil && (p.Name == "" || p.Version == "") {
					t.Fatalf("incomplete package %+v", p)
				}
			}
		}
	})
}
