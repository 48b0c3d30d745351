package version

// The comparators against the real tools (internal/oracle): dpkg, apk (in an
// Alpine chroot made from a corpus image), rpm (python3-rpm), node-semver,
// python's packaging, Maven's ComparableVersion and RubyGems. Each tool
// answers for the pairs in testdata/pairs.txt and for pairs generated from a
// fixed seed; a tool that is not installed skips its test (fails under
// LADING_CI=1) with a message naming the package to install
// (.ci/setup.d/40-vulndb.sh installs them in CI).

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/oracle"
)

// checkAgainst compares scheme s with the tool on the hand-written and the
// generated pairs.
func checkAgainst(t *testing.T, s Scheme, tool oracle.Tool, gen func(*rand.Rand) string) {
	t.Helper()
	var pairs [][2]string
	for _, p := range pairsOf(readPairs(t), s) {
		pairs = append(pairs, [2]string{p.a, p.b})
	}
	if gen != nil {
		r := rand.New(rand.NewPCG(4, uint64(len(s))))
		for len(pairs) < 400 {
			a, b := gen(r), gen(r)
			if _, err := For(s).Compare(a, b); err == nil {
				pairs = append(pairs, [2]string{a, b})
			}
		}
	}
	want := oracle.New(t).Compare(t, tool, pairs)
	bad := 0
	for i, p := range pairs {
		got, err := For(s).Compare(p[0], p[1])
		if err != nil {
			t.Errorf("Compare(%q, %q): %v", p[0], p[1], err)
			continue
		}
		if got != want[i] {
			bad++
			t.Errorf("%s: Compare(%q, %q) = %d, the tool says %d", s, p[0], p[1], got, want[i])
		}
	}
	t.Logf("%s: %d pairs, %d disagreements", s, len(pairs), bad)
}

func TestDpkgAgainstDpkg(t *testing.T)    { checkAgainst(t, Dpkg, oracle.Dpkg, genDpkg) }
func TestAPKAgainstApk(t *testing.T)      { checkAgainst(t, APK, oracle.Apk, genAPK) }
func TestRPMAgainstRpm(t *testing.T)      { checkAgainst(t, RPM, oracle.RPM, genRPM) }
func TestRubyGemsAgainstGem(t *testing.T) { checkAgainst(t, RubyGems, oracle.Gem, genGem) }
func TestPEP440AgainstPackaging(t *testing.T) {
	checkAgainst(t, PEP440, oracle.PEP440, genPEP440)
}
func TestMavenAgainstComparableVersion(t *testing.T) {
	checkAgainst(t, Maven, oracle.Maven, genMaven)
}

func TestSemVerAgainstNode(t *testing.T) {
	t.Run("npm", func(t *testing.T) { checkAgainst(t, NPM, oracle.Semver, genSemVer) })
	t.Run("semver", func(t *testing.T) { checkAgainst(t, SemVer, oracle.Semver, genSemVer) })
}

func TestNPMSatisfiesAgainstNode(t *testing.T) {
	var pairs [][2]string
	for _, r := range npmRanges {
		pairs = append(pairs, [2]string{r.v, r.rng})
	}
	answers := oracle.New(t).Compare(t, oracle.SemverSatisfies, pairs)
	for i, r := range npmRanges {
		want := answers[i] == 1
		if got, err := NPMSatisfies(r.rng, r.v); err != nil || got != want {
			t.Errorf("NPMSatisfies(%q, %q) = %v, %v; node says %v", r.rng, r.v, got, err, want)
		}
	}
}

// Generators of plausible versions, from small alphabets so that pairs
// often share prefixes and meet the interesting rules.

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func nums(r *rand.Rand, min, max int, sep string) string {
	n := min + r.IntN(max-min+1)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = pick(r, "0", "1", "2", "9", "10", "01")
	}
	return strings.Join(parts, sep)
}

func genDpkg(r *rand.Rand) string {
	v := nums(r, 1, 3, ".")
	if v[0] == '0' && len(v) > 1 && v[1] != '.' {
		v = "1" + v
	}
	v += pick(r, "", "", "a", "~rc1", "~", "+dfsg", "+b1", "~~")
	if r.IntN(2) == 0 {
		v += "-" + pick(r, "1", "2", "1ubuntu1", "1+deb12u1", "1~deb12u2", "0.1", "1.1~bpo1")
	}
	if r.IntN(5) == 0 {
		v = pick(r, "0", "1", "2") + ":" + v
	}
	return v
}

func genAPK(r *rand.Rand) string {
	v := pick(r, "0", "1", "2", "10") + "." + nums(r, 0, 2, ".")
	v = strings.TrimSuffix(v, ".")
	v += pick(r, "", "", "", "a", "b")
	for i := r.IntN(3); i > 0; i-- {
		v += "_" + pick(r, "alpha", "beta", "pre", "rc", "p", "git", "cvs", "svn", "hg")
		v += pick(r, "", "1", "2", "10", "20190101")
	}
	if r.IntN(2) == 0 {
		v += "-r" + pick(r, "0", "1", "2", "10")
	}
	return v
}

func genRPM(r *rand.Rand) string {
	v := nums(r, 1, 3, pick(r, ".", ".", "_")) + pick(r, "", "", "a", "~rc1", "^git1", "~", "^")
	v += "-" + pick(r, "1", "2", "1.el8", "1.el8_8", "10.cm2", "2.el10_0.2", "0.1")
	if r.IntN(5) == 0 {
		v = pick(r, "0", "1", "2") + ":" + v
	}
	return v
}

func genPEP440(r *rand.Rand) string {
	v := nums(r, 1, 3, ".")
	v += pick(r, "", "", "a1", "b2", "rc1", "c1", "a", "rc")
	v += pick(r, "", "", ".post1", ".post0", "-1")
	v += pick(r, "", "", ".dev0", ".dev1")
	if r.IntN(6) == 0 {
		v += "+" + pick(r, "local", "abc.2", "abc.10", "1")
	}
	if r.IntN(8) == 0 {
		v = "1!" + v
	}
	return v
}

func genSemVer(r *rand.Rand) string {
	v := pick(r, "0", "1", "2", "10") + "." + pick(r, "0", "1", "2", "10") + "." + pick(r, "0", "1", "9", "10")
	if r.IntN(2) == 0 {
		v += "-" + pick(r, "alpha", "beta", "rc", "0", "1", "alpha.1", "alpha.beta", "beta.11", "beta.2", "rc.1", "x.7.z.92")
	}
	if r.IntN(6) == 0 {
		v += "+" + pick(r, "build.1", "001", "sha.5114f85")
	}
	return v
}

func genMaven(r *rand.Rand) string {
	v := nums(r, 1, 4, ".")
	if r.IntN(2) == 0 {
		v += pick(r, "-", ".") + pick(r, "SNAPSHOT", "alpha", "beta", "rc", "cr", "milestone", "m", "ga", "final", "release", "sp", "xyz", "1", "RELEASE", "Final", "jre")
		if r.IntN(2) == 0 {
			v += pick(r, "", "-") + pick(r, "1", "2", "10")
		}
	}
	return v
}

func genGem(r *rand.Rand) string {
	v := nums(r, 1, 4, ".")
	if r.IntN(3) == 0 {
		v += "." + pick(r, "pre", "rc1", "rc.1", "a", "b", "beta", "alpha2")
	}
	return v
}
