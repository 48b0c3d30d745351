package pkg

import "testing"

func TestPURL(t *testing.T) {
	alpine := &OS{ID: "alpine", VersionID: "3.20.3"}
	debian := &OS{ID: "debian", VersionID: "12.15"}
	rhel := &OS{ID: "rhel", VersionID: "8.1"}
	for _, tc := range []struct {
		p    Package
		os   *OS
		want string
	}{
		{Package{Name: "musl", Version: "1.2.5-r0", Ecosystem: Apk, Arch: "x86_64"}, alpine, "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3"},
		{Package{Name: "libssl3", Version: "3.0.17-1~deb12u2", Ecosystem: Deb, Arch: "amd64", Source: &Source{Name: "openssl"}}, debian,
			"pkg:deb/debian/libssl3@3.0.17-1~deb12u2?arch=amd64&distro=debian-12.15&upstream=openssl"},
		{Package{Name: "git", Version: "1:2.20.1-2+deb10u3", Ecosystem: Deb, Arch: "amd64", Source: &Source{Name: "git"}}, &OS{ID: "ubuntu", VersionID: "18.04"},
			"pkg:deb/ubuntu/git@1:2.20.1-2%2Bdeb10u3?arch=amd64&distro=ubuntu-18.04"},
		{Package{Name: "openssl", Version: "1:1.1.1k-7.el8", Ecosystem: RPM, Arch: "x86_64", Source: &Source{Name: "openssl", Version: "1:1.1.1k-7.el8"}}, rhel,
			"pkg:rpm/redhat/openssl@1.1.1k-7.el8?arch=x86_64&distro=rhel-8.1&epoch=1&upstream=openssl-1:1.1.1k-7.el8.src.rpm"},
		{Package{Name: "@types/node", Version: "20.1.0", Ecosystem: Npm}, nil, "pkg:npm/%40types/node@20.1.0"},
		{Package{Name: "express", Version: "4.16.0", Ecosystem: Npm}, nil, "pkg:npm/express@4.16.0"},
		{Package{Name: "Charset_Normalizer", Version: "3.0.1", Ecosystem: PyPI}, nil, "pkg:pypi/charset-normalizer@3.0.1"},
		{Package{Name: "github.com/gin-gonic/gin", Version: "v1.8.1", Ecosystem: Go}, nil, "pkg:golang/github.com/gin-gonic/gin@v1.8.1"},
		{Package{Name: "stdlib", Version: "v1.26.8", Ecosystem: Go}, nil, "pkg:golang/stdlib@v1.26.8"},
		{Package{Name: "com.fasterxml.jackson.core:jackson-core", Version: "2.14.1", Ecosystem: Maven}, nil, "pkg:maven/com.fasterxml.jackson.core/jackson-core@2.14.1"},
		{Package{Name: "rails", Version: "7.1.0", Ecosystem: RubyGems}, nil, "pkg:gem/rails@7.1.0"},
		{Package{Name: "serde", Version: "1.0.1", Ecosystem: Cargo}, nil, "pkg:cargo/serde@1.0.1"},
		{Package{Name: "symfony/console", Version: "v6.0.0", Ecosystem: Packagist}, nil, "pkg:composer/symfony/console@v6.0.0"},
		{Package{Name: "Newtonsoft.Json", Version: "13.0.1", Ecosystem: NuGet}, nil, "pkg:nuget/Newtonsoft.Json@13.0.1"},
		{Package{Name: "", Version: "1", Ecosystem: Npm}, nil, ""},
	} {
		if got := PURL(&tc.p, tc.os); got != tc.want {
			t.Errorf("PURL(%s %s) = %s, want %s", tc.p.Ecosystem, tc.p.Name, got, tc.want)
		}
	}
}

func TestNormalizePython(t *testing.T) {
	for in, want := range map[string]string{"Charset_Normalizer": "charset-normalizer", "zope.interface": "zope-interface", "a--b__c": "a-b-c", "A": "a"} {
		if got := NormalizePython(in); got != want {
			t.Errorf("NormalizePython(%q) = %q", in, got)
		}
	}
}
