package php

import (
	"context"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

func TestAnalyze(t *testing.T) {
	a := New()
	for p, want := range map[string]bool{
		"app/composer.lock": true, "app/vendor/x/composer.lock": false,
		"app/vendor/composer/installed.json": true, "vendor/composer/installed.json": true, "app/installed.json": false,
	} {
		if a.Wants(p, nil) != want {
			t.Errorf("Wants(%q) != %v", p, want)
		}
	}
	for _, tc := range []struct {
		file, path string
		want       *analyzer.Result
	}{
		{"composer.lock", "app/composer.lock", &analyzer.Result{Type: "composer", Packages: []pkg.Package{
			{Name: "guzzlehttp/guzzle", Version: "7.5.0", Ecosystem: pkg.Packagist, Licenses: []string{"MIT"}},
			{Name: "psr/log", Version: "3.0.0", Ecosystem: pkg.Packagist, Licenses: []string{"MIT"}},
			{Name: "phpunit/phpunit", Version: "9.5.27", Ecosystem: pkg.Packagist, Licenses: []string{"BSD-3-Clause"}, Dev: true},
		}}},
		{"installed-v2.json", "app/vendor/composer/installed.json", &analyzer.Result{Type: "composer-vendor", Packages: []pkg.Package{
			{Name: "psr/log", Version: "3.0.0", Ecosystem: pkg.Packagist, Licenses: []string{"MIT"}},
			{Name: "phpunit/phpunit", Version: "9.5.27", Ecosystem: pkg.Packagist, Licenses: []string{"BSD-3-Clause"}, Dev: true},
		}}},
		{"installed-v1.json", "vendor/composer/installed.json", &analyzer.Result{Type: "composer-vendor", Packages: []pkg.Package{
			{Name: "monolog/monolog", Version: "1.27.1", Ecosystem: pkg.Packagist, Licenses: []string{"MIT"}},
		}}},
	} {
		b, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		r, err := a.Analyze(context.Background(), analyzer.BytesFile(tc.path, b))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, r); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.file, diff)
		}
	}
	if _, err := a.Analyze(context.Background(), analyzer.BytesFile("composer.lock", []byte("{"))); err == nil {
		t.Error("malformed composer.lock: no error")
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"composer.lock", "installed-v1.json", "installed-v2.json"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseLock(b)
		ParseInstalled(b)
	})
}
