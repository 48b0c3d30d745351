package version

// The comparators against the real tools: dpkg, apk (in an Alpine chroot made
// from a corpus image), rpm (python3-rpm), node-semver, python's packaging,
// Maven's ComparableVersion and RubyGems. Each tool answers for the pairs in
// testdata/pairs.txt and for pairs generated from a fixed seed; a tool that is
// not installed skips its test with a message naming the package to install
// (.ci/setup.d/40-vulndb.sh installs them in CI).

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/corpustest"
)

// oracle answers -1, 0 or +1 for each pair, in order.
type oracle func(t *testing.T, pairs [][2]string) []int

// checkAgainst compares scheme s with the tool on the hand-written and the
// generated pairs.
func checkAgainst(t *testing.T, s Scheme, tool oracle, gen func(*rand.Rand) string) {
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
	want := tool(t, pairs)
	if len(want) != len(pairs) {
		t.Fatalf("tool answered %d of %d pairs", len(want), len(pairs))
	}
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

func sign(s string) (int, error) {
	switch strings.TrimSpace(s) {
	case "<", "-1":
		return -1, nil
	case "=", "==", "0":
		return 0, nil
	case ">", "1":
		return 1, nil
	}
	return 0, fmt.Errorf("unexpected answer %q", s)
}

// runLines feeds "a b" lines to a command and reads one answer per line.
func runLines(t *testing.T, pairs [][2]string, name string, args ...string) []int {
	t.Helper()
	var in bytes.Buffer
	for _, p := range pairs {
		fmt.Fprintf(&in, "%s %s\n", p[0], p[1])
	}
	cmd := exec.Command(name, args...)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, stderr.Bytes())
	}
	var res []int
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		n, err := sign(l)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		res = append(res, n)
	}
	return res
}

func need(t *testing.T, bin, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		t.Skipf("%s not installed (Debian package %s)", bin, pkg)
	}
	return p
}

func TestDpkgAgainstDpkg(t *testing.T) {
	need(t, "dpkg", "dpkg")
	script := `while read a b; do
	if dpkg --compare-versions "$a" lt "$b"; then echo "<"
	elif dpkg --compare-versions "$a" eq "$b"; then echo "="
	else echo ">"; fi
done`
	checkAgainst(t, Dpkg, func(t *testing.T, p [][2]string) []int {
		return runLines(t, p, "sh", "-c", script)
	}, genDpkg)
}

func TestAPKAgainstApk(t *testing.T) {
	root := alpineRoot(t)
	script := `while read a b; do /sbin/apk version -t "$a" "$b"; done`
	checkAgainst(t, APK, func(t *testing.T, p [][2]string) []int {
		return runLines(t, p, "chroot", root, "/bin/sh", "-c", script)
	}, genAPK)
}

// alpineRoot unpacks the Alpine 3.20 minirootfs layer of a corpus image into a
// temporary directory, to run its apk with chroot.
func alpineRoot(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("apk runs in an Alpine chroot, which needs root")
	}
	need(t, "chroot", "coreutils")
	need(t, "tar", "tar")
	img := corpustest.Image(t, "alpine-3.20-app.oci.tar")
	blob := firstLayer(t, img)
	root := t.TempDir()
	if out, err := exec.Command("tar", "-xzf", blob, "-C", root).CombinedOutput(); err != nil {
		t.Fatalf("unpack the minirootfs layer: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "sbin", "apk")); err != nil {
		t.Fatalf("no apk in the layer: %v", err)
	}
	return root
}

// firstLayer copies the first layer blob of the first image in an OCI layout
// tar to a temporary file.
func firstLayer(t *testing.T, ociTar string) string {
	t.Helper()
	read := func(name string) []byte {
		f, err := os.Open(ociTar)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err != nil {
				t.Fatalf("%s: %s: %v", ociTar, name, err)
			}
			if h.Name == name || h.Name == "./"+name {
				b, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}
	}
	blobPath := func(digest string) string { return "blobs/" + strings.Replace(digest, ":", "/", 1) }
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.Unmarshal(read("index.json"), &index); err != nil || len(index.Manifests) == 0 {
		t.Fatalf("index.json: %v", err)
	}
	var manifest struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.Unmarshal(read(blobPath(index.Manifests[0].Digest)), &manifest); err != nil || len(manifest.Layers) == 0 {
		t.Fatalf("manifest: %v", err)
	}
	p := filepath.Join(t.TempDir(), "layer.tar.gz")
	if err := os.WriteFile(p, read(blobPath(manifest.Layers[0].Digest)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// python returns a python3 that can import module, or skips.
func python(t *testing.T, module, pkg string) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		p, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		if exec.Command(p, "-c", "import "+module).Run() == nil {
			return p
		}
	}
	t.Skipf("no python3 with module %s (Debian package %s)", module, pkg)
	return ""
}

func TestRPMAgainstRpm(t *testing.T) {
	py := python(t, "rpm", "python3-rpm")
	script := `
import sys, rpm
def evr(s):
    e = "0"
    if ":" in s:
        e, s = s.split(":", 1)
    v, r = s, None
    if "-" in s:
        v, r = s.rsplit("-", 1)
    return (e, v, r)
for line in sys.stdin:
    a, b = line.split()
    print(rpm.labelCompare(evr(a), evr(b)))
`
	checkAgainst(t, RPM, func(t *testing.T, p [][2]string) []int {
		return runLines(t, p, py, "-c", script)
	}, genRPM)
}

func TestPEP440AgainstPackaging(t *testing.T) {
	py := python(t, "packaging.version", "python3-packaging")
	script := `
import sys
from packaging.version import Version
for line in sys.stdin:
    a, b = map(Version, line.split())
    print((a > b) - (a < b))
`
	checkAgainst(t, PEP440, func(t *testing.T, p [][2]string) []int {
		return runLines(t, p, py, "-c", script)
	}, genPEP440)
}

// nodeSemver finds node-semver: $LADING_NODE_MODULES/semver (what CI
// installs), then the copy bundled with npm.
func nodeSemver(t *testing.T) (node, module string) {
	t.Helper()
	node = need(t, "node", "nodejs")
	var dirs []string
	if d := os.Getenv("LADING_NODE_MODULES"); d != "" {
		dirs = append(dirs, d)
	}
	if c, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, filepath.Join(c, "lading-ci", "node_modules"))
	}
	if out, err := exec.Command("npm", "root", "-g").Output(); err == nil {
		dirs = append(dirs, filepath.Join(strings.TrimSpace(string(out)), "npm", "node_modules"))
	}
	dirs = append(dirs, "/usr/lib/node_modules/npm/node_modules", "/usr/share/nodejs")
	for _, d := range dirs {
		m := filepath.Join(d, "semver")
		if _, err := os.Stat(filepath.Join(m, "package.json")); err == nil {
			return node, m
		}
	}
	t.Skipf("node's semver package not found in %v (npm install --prefix ~/.cache/lading-ci semver)", dirs)
	return "", ""
}

func TestSemVerAgainstNode(t *testing.T) {
	node, mod := nodeSemver(t)
	script := fmt.Sprintf(`
const semver = require(%q);
const lines = require("fs").readFileSync(0, "utf8").trim().split("\n");
for (const l of lines) { const [a, b] = l.split(" "); console.log(semver.compare(a, b)); }
`, mod)
	tool := func(t *testing.T, p [][2]string) []int { return runLines(t, p, node, "-e", script) }
	t.Run("npm", func(t *testing.T) { checkAgainst(t, NPM, tool, genSemVer) })
	t.Run("semver", func(t *testing.T) { checkAgainst(t, SemVer, tool, genSemVer) })
}

func TestNPMSatisfiesAgainstNode(t *testing.T) {
	node, mod := nodeSemver(t)
	var lines []string
	for _, r := range npmRanges {
		lines = append(lines, r.v+"\t"+r.rng)
	}
	script := fmt.Sprintf(`
const semver = require(%q);
const lines = require("fs").readFileSync(0, "utf8").trim().split("\n");
for (const l of lines) { const [v, r] = l.split("\t"); console.log(semver.satisfies(v, r) ? 1 : 0); }
`, mod)
	cmd := exec.Command(node, "-e", script)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	answers := strings.Fields(string(out))
	if len(answers) != len(npmRanges) {
		t.Fatalf("node answered %d of %d", len(answers), len(npmRanges))
	}
	for i, r := range npmRanges {
		want := answers[i] == "1"
		if got, err := NPMSatisfies(r.rng, r.v); err != nil || got != want {
			t.Errorf("NPMSatisfies(%q, %q) = %v, %v; node says %v", r.rng, r.v, got, err, want)
		}
	}
}

// mavenArtifactJar finds the jar with Maven's ComparableVersion.
func mavenArtifactJar(t *testing.T) (java, jar string) {
	t.Helper()
	java = need(t, "java", "default-jre-headless")
	for _, j := range []string{os.Getenv("LADING_MAVEN_ARTIFACT_JAR"), "/usr/share/java/maven3-artifact.jar", "/usr/share/maven/lib/maven-artifact-3.x.jar"} {
		if j == "" {
			continue
		}
		if _, err := os.Stat(j); err == nil {
			return java, j
		}
	}
	t.Skip("Maven's maven-artifact jar not found (Debian package libmaven3-core-java)")
	return "", ""
}

func TestMavenAgainstComparableVersion(t *testing.T) {
	java, jar := mavenArtifactJar(t)
	checkAgainst(t, Maven, func(t *testing.T, pairs [][2]string) []int {
		// ComparableVersion's main compares each argument with the next
		// and prints "a OP b" lines; give it a1 b1 a2 b2 ... and keep the
		// odd comparisons.
		args := []string{"-cp", jar, "org.apache.maven.artifact.versioning.ComparableVersion"}
		for _, p := range pairs {
			args = append(args, p[0], p[1])
		}
		out, err := exec.Command(java, args...).Output()
		if err != nil {
			t.Fatalf("ComparableVersion: %v", err)
		}
		var res []int
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) != 3 || !strings.HasPrefix(l, "   ") {
				continue
			}
			n, err := sign(f[1])
			if err != nil {
				continue
			}
			res = append(res, n)
		}
		var odd []int
		for i := 0; i < len(res); i += 2 {
			odd = append(odd, res[i])
		}
		return odd
	}, genMaven)
}

func TestRubyGemsAgainstGem(t *testing.T) {
	ruby := need(t, "ruby", "ruby")
	script := `STDIN.each_line { |l| a, b = l.split; puts(Gem::Version.new(a) <=> Gem::Version.new(b)) }`
	checkAgainst(t, RubyGems, func(t *testing.T, p [][2]string) []int {
		return runLines(t, p, ruby, "-e", script)
	}, genGem)
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
