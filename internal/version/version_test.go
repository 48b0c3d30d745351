package version

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/errdefs"
)

type pair struct {
	scheme Scheme
	a, b   string
	want   int
	line   int
}

// readPairs reads testdata/pairs.txt: "scheme a b want" per line, want one of
// <, = and >.
func readPairs(t testing.TB) []pair {
	t.Helper()
	f, err := os.Open("testdata/pairs.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ps []pair
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 4 {
			t.Fatalf("pairs.txt:%d: want 4 fields, got %q", n, line)
		}
		want, ok := map[string]int{"<": -1, "=": 0, ">": 1}[fs[3]]
		if !ok {
			t.Fatalf("pairs.txt:%d: want <, = or >, got %q", n, fs[3])
		}
		ps = append(ps, pair{Scheme(fs[0]), fs[1], fs[2], want, n})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ps
}

func pairsOf(ps []pair, s Scheme) []pair {
	var out []pair
	for _, p := range ps {
		if p.scheme == s {
			out = append(out, p)
		}
	}
	return out
}

func TestCompare(t *testing.T) {
	for _, p := range readPairs(t) {
		c := For(p.scheme)
		got, err := c.Compare(p.a, p.b)
		if err != nil {
			t.Errorf("pairs.txt:%d: %s Compare(%q, %q): %v", p.line, p.scheme, p.a, p.b, err)
			continue
		}
		if got != p.want {
			t.Errorf("pairs.txt:%d: %s Compare(%q, %q) = %d, want %d", p.line, p.scheme, p.a, p.b, got, p.want)
		}
		// Antisymmetry.
		if back, _ := c.Compare(p.b, p.a); back != -p.want {
			t.Errorf("pairs.txt:%d: %s Compare(%q, %q) = %d, want %d", p.line, p.scheme, p.b, p.a, back, -p.want)
		}
	}
}

func TestCached(t *testing.T) {
	cached := map[Scheme]Comparator{}
	for _, s := range Schemes {
		cached[s] = Cached(For(s))
	}
	for range 2 { // the second round answers from the cache
		for _, p := range readPairs(t) {
			got, err := cached[p.scheme].Compare(p.a, p.b)
			if err != nil || got != p.want {
				t.Errorf("pairs.txt:%d: cached %s Compare(%q, %q) = %d, %v; want %d", p.line, p.scheme, p.a, p.b, got, err, p.want)
			}
		}
		if _, err := cached[Dpkg].Compare("not a version", "1"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("cached error: %v", err)
		}
	}
	if c := Cached(For(PEP440)); c.Scheme() != PEP440 {
		t.Errorf("Scheme() = %s", c.Scheme())
	}
}

func TestEverySchemeHasPairs(t *testing.T) {
	ps := readPairs(t)
	for _, s := range Schemes {
		if len(pairsOf(ps, s)) == 0 {
			t.Errorf("scheme %s has no pairs in testdata/pairs.txt", s)
		}
		if got := For(s).Scheme(); got != s {
			t.Errorf("For(%s).Scheme() = %s", s, got)
		}
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		s Scheme
		v string
	}{
		{Dpkg, "not a version"},
		{Dpkg, ""},
		{RPM, ""},
		{SemVer, "1.2.3.4.5"},
		{NPM, "one"},
		{PEP440, "1.0-foo-bar"},
		{Go, "latest"},
		{Go, "v1.2.3.4"},
	}
	for _, tt := range tests {
		_, err := For(tt.s).Compare(tt.v, "1.0")
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s Compare(%q, 1.0): err = %v, want ErrInvalidArgument", tt.s, tt.v, err)
		}
		if err != nil && !strings.Contains(err.Error(), tt.v) && tt.v != "" {
			t.Errorf("%s: error %q does not name the version", tt.s, err)
		}
	}
}

func TestSchemeOf(t *testing.T) {
	tests := map[string]Scheme{
		"Go": Go, "npm": NPM, "PyPI": PEP440, "pypi": PEP440, "Maven": Maven, "RubyGems": RubyGems,
		"crates.io": SemVer, "Debian:12": Dpkg, "debian:12": Dpkg, "Ubuntu:22.04:LTS": Dpkg,
		"Alpine:v3.20": APK, "alpine:3.10": APK, "Wolfi": APK, "AlmaLinux:8": RPM, "Rocky Linux:9": RPM,
		"almalinux:9": RPM, "Packagist": Generic, "NuGet": Generic, "": Generic,
	}
	for eco, want := range tests {
		if got := SchemeOf(eco); got != want {
			t.Errorf("SchemeOf(%q) = %s, want %s", eco, got, want)
		}
	}
}

func TestCanonicalGo(t *testing.T) {
	tests := map[string]string{
		"1.2.3":                              "v1.2.3",
		"v2.0.0+incompatible":                "v2.0.0+incompatible",
		"go1.21.3":                           "v1.21.3",
		"go1.21":                             "v1.21.0",
		"go1.21rc2":                          "v1.21.0-rc.2",
		"go1.9beta1":                         "v1.9.0-beta.1",
		"0.0.0-20211112202133-69e39bad7dc2":  "v0.0.0-20211112202133-69e39bad7dc2",
		"v0.0.0-20211112202133-69e39bad7dc2": "v0.0.0-20211112202133-69e39bad7dc2",
	}
	for in, want := range tests {
		got, err := CanonicalGo(in)
		if err != nil || got != want {
			t.Errorf("CanonicalGo(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// npmRanges are npm range expressions with versions and whether each
// satisfies it, as node-semver answers; TestNPMSatisfiesNode asks node.
var npmRanges = []struct {
	rng, v string
	want   bool
}{
	{"<=1.0.0", "1.0.0", true},
	{"<=1.0.0", "1.0.1", false},
	{"<4.17.5", "4.17.4", true},
	{">=4.17.5", "4.17.4", false},
	{">=4.0.0 <4.6.0", "4.0.11", true},
	{">=4.0.0 <4.6.0", "4.6.0", false},
	{"<1.9.1", "1.9.0", true},
	{">=2.0.0 <2.3.2 || >=3.0.0 <3.1.0", "3.0.5", true},
	{">=2.0.0 <2.3.2 || >=3.0.0 <3.1.0", "2.4.0", false},
	{"<2.0.0", "2.0.0-rc.1", false},
	{"<2.0.0-rc.2", "2.0.0-rc.1", true},
	{"*", "1.2.3", true},
	{"^1.2.3", "1.9.0", true},
	{"^1.2.3", "2.0.0", false},
	{"~1.2.3", "1.2.9", true},
	{"~1.2.3", "1.3.0", false},
	{"1.x", "1.4.4", true},
	{"<=0.0.8 || >=1.0.0 <1.2.6", "0.0.8", true},
	{"<=0.0.8 || >=1.0.0 <1.2.6", "1.2.6", false},
	{">= 1.0.0", "1.0.0", true},
	{"<0.2.1 >=0.0.0", "0.0.8", true},
}

func TestNPMSatisfies(t *testing.T) {
	for _, tt := range npmRanges {
		got, err := NPMSatisfies(tt.rng, tt.v)
		if err != nil || got != tt.want {
			t.Errorf("NPMSatisfies(%q, %q) = %v, %v; want %v", tt.rng, tt.v, got, err, tt.want)
		}
	}
	if _, err := NPMSatisfies("<<>>", "1.0.0"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad range: err = %v", err)
	}
}

func FuzzCompare(f *testing.F) {
	f.Add("1.0-1", "1:1.0~rc1")
	f.Add("1.0_rc1-r1", "v1.2.3+incompatible")
	f.Add("1!2.0.post1.dev3+local", "1.0-SNAPSHOT")
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, s := range Schemes {
			c := For(s)
			x, errx := c.Compare(a, b)
			y, erry := c.Compare(b, a)
			if (errx == nil) != (erry == nil) {
				t.Fatalf("%s: Compare(%q,%q) err %v but reversed err %v", s, a, b, errx, erry)
			}
			if errx == nil && x != -y {
				t.Fatalf("%s: Compare(%q,%q)=%d, reversed %d", s, a, b, x, y)
			}
		}
	})
}
