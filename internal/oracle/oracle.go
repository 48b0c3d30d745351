// Package oracle asks the real tools of each ecosystem how they order
// versions, for tests that take those tools as the truth: dpkg for Debian
// and Ubuntu, apk for Alpine (run in a chroot of the Alpine 3.20 minirootfs
// taken from a corpus image; needs root), rpm's own labelCompare (python3-rpm),
// Python's packaging (PEP 440), node's semver package (compare, satisfies,
// minVersion), RubyGems' Gem::Version and Maven's ComparableVersion.
//
// A test collects its questions and each tool answers all of them in one
// process: Ask. A tool that is missing skips the test through
// internal/testenv (a failure under LADING_CI=1) with a message naming the
// Debian package that provides it; .ci/setup.d/40-vulndb.sh installs them.
//
//	o := oracle.New(t)
//	order := o.Compare(t, oracle.Dpkg, [][2]string{{"1.0-1", "1.0-1+deb12u1"}}) // [-1]
package oracle

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/testenv"
)

// Tool names a tool and the question it answers about a pair (a, b).
type Tool string

// The tools. Comparisons answer -1, 0 or 1 for a < b, a == b, a > b.
const (
	Dpkg   Tool = "dpkg"   // dpkg --compare-versions
	Apk    Tool = "apk"    // apk version -t, in an Alpine chroot (root)
	RPM    Tool = "rpm"    // rpm.labelCompare on [epoch:]version[-release]
	PEP440 Tool = "pep440" // packaging.version.Version
	Semver Tool = "semver" // node-semver compare
	Gem    Tool = "gem"    // Gem::Version <=>
	Maven  Tool = "maven"  // org.apache.maven.artifact.versioning.ComparableVersion
	// SemverSatisfies answers 1 when version a satisfies the node-semver
	// range b, else 0.
	SemverSatisfies Tool = "semver-satisfies"
	// SemverAny answers 1 when some version satisfies the node-semver
	// range a (b is ignored), else 0.
	SemverAny Tool = "semver-any"
)

// Compares reports whether the tool orders two versions (rather than
// answering about ranges).
func (t Tool) Compares() bool { return t != SemverSatisfies && t != SemverAny }

// Answer is a tool's answer to one question: N, or Err when the tool could
// not answer (a version it refuses).
type Answer struct {
	N   int
	Err string
}

// Oracle runs the tools. It keeps what is costly to make (the Alpine root)
// for the test that made it.
type Oracle struct {
	dir     string
	apkRoot string
}

// New returns an oracle whose files go when t ends.
func New(t testing.TB) *Oracle {
	return &Oracle{dir: t.TempDir()}
}

// Compare has tool answer every pair, and fails t when it cannot answer one.
func (o *Oracle) Compare(t testing.TB, tool Tool, pairs [][2]string) []int {
	t.Helper()
	answers := o.Ask(t, tool, pairs)
	out := make([]int, len(answers))
	for i, a := range answers {
		if a.Err != "" {
			t.Fatalf("%s cannot answer about %q and %q: %s", tool, pairs[i][0], pairs[i][1], a.Err)
		}
		out[i] = a.N
	}
	return out
}

// Ask has tool answer every pair, in order, in one process.
func (o *Oracle) Ask(t testing.TB, tool Tool, pairs [][2]string) []Answer {
	t.Helper()
	if len(pairs) == 0 {
		return nil
	}
	var out []string
	if tool == Maven {
		out = o.maven(t, pairs)
	} else {
		var in bytes.Buffer
		for _, p := range pairs {
			if strings.ContainsAny(p[0]+p[1], "\t\n") {
				t.Fatalf("%s: a version with a tab or a newline: %q", tool, p)
			}
			fmt.Fprintf(&in, "%s\t%s\n", p[0], p[1])
		}
		out = run(t, o.command(t, tool), &in)
	}
	if len(out) != len(pairs) {
		t.Fatalf("%s answered %d of %d questions: %q", tool, len(out), len(pairs), out)
	}
	answers := make([]Answer, len(out))
	for i, s := range out {
		answers[i] = parse(s)
	}
	return answers
}

func parse(s string) Answer {
	switch s = strings.TrimSpace(s); s {
	case "<", "-1":
		return Answer{N: -1}
	case "=", "==", "0":
		return Answer{N: 0}
	case ">", "1":
		return Answer{N: 1}
	}
	if s == "" {
		s = "no answer"
	}
	return Answer{Err: s}
}

// run feeds in to cmd and returns its output lines.
func run(t testing.TB, cmd *exec.Cmd, in *bytes.Buffer) []string {
	t.Helper()
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd.Args[0], err, stderr.Bytes())
	}
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
}

// command is the process that answers tool's questions, one "a\tb" line
// in, one answer line out.
func (o *Oracle) command(t testing.TB, tool Tool) *exec.Cmd {
	t.Helper()
	switch tool {
	case Dpkg:
		testenv.Tool(t, "dpkg", "Debian's dpkg")
		return exec.Command("sh", "-c", `while IFS='	' read -r a b; do
	if dpkg --compare-versions "$a" lt "$b" 2>/dev/null; then echo -1
	elif dpkg --compare-versions "$a" eq "$b" 2>/dev/null; then echo 0
	elif dpkg --compare-versions "$a" gt "$b" 2>/dev/null; then echo 1
	else echo "bad version"; fi
done`)
	case Apk:
		return exec.Command("chroot", o.alpineRoot(t), "/bin/sh", "-c", `while IFS='	' read -r a b; do
	/sbin/apk version -t "$a" "$b" 2>/dev/null || echo "no answer"
done`)
	case RPM:
		return exec.Command(Python(t, "rpm", "python3-rpm"), "-c", `import sys, rpm
def evr(s):
    e = "0"
    if ":" in s:
        e, s = s.split(":", 1)
    v, r = s, None
    if "-" in s:
        v, r = s.rsplit("-", 1)
    return (e, v, r)
for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    print(rpm.labelCompare(evr(a), evr(b)))
`)
	case PEP440:
		return exec.Command(Python(t, "packaging.version", "python3-packaging"), "-c", `import sys
from packaging.version import Version, InvalidVersion
for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    try:
        x, y = Version(a), Version(b)
        print((x > y) - (x < y))
    except InvalidVersion:
        print("invalid")
`)
	case Semver, SemverSatisfies, SemverAny:
		return nodeSemver(t, tool)
	case Gem:
		ruby := testenv.Tool(t, "ruby", "Debian's ruby")
		return exec.Command(ruby, "-e", `STDIN.each_line { |l|
  a, b = l.chomp.split("\t")
  begin
    puts(Gem::Version.new(a) <=> Gem::Version.new(b))
  rescue ArgumentError => e
    puts("invalid: " + e.message)
  end
}`)
	}
	t.Fatalf("oracle: no tool %q", tool)
	return nil
}

// nodeSemver is node running one of node-semver's functions on each line.
func nodeSemver(t testing.TB, tool Tool) *exec.Cmd {
	t.Helper()
	node, mod := NodeSemver(t)
	fn := map[Tool]string{Semver: "compare", SemverSatisfies: "satisfies", SemverAny: "any"}[tool]
	cmd := exec.Command(node, "-e", fmt.Sprintf(`const semver = require(%q);
const out = [];
for (const l of require("fs").readFileSync(0, "utf8").split("\n")) {
	if (l === "") continue;
	const [a, b] = l.split("\t");
	try {
		switch (%q) {
		case "compare": out.push(String(semver.compare(a, b))); break;
		case "satisfies":
			if (semver.valid(a) === null || semver.validRange(b) === null) out.push("invalid");
			else out.push(semver.satisfies(a, b) ? "1" : "0");
			break;
		default:
			if (semver.validRange(a) === null) out.push("invalid");
			else out.push(semver.minVersion(a) === null ? "0" : "1");
		}
	} catch (e) { out.push("invalid: " + e.message); }
}
console.log(out.join("\n"));`, mod, fn))
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Dir(mod))
	return cmd
}

// maven asks ComparableVersion, whose main compares each argument with the
// next and prints "a OP b" lines: it gets a1 b1 a2 b2 ..., and the odd
// comparisons are the answers.
func (o *Oracle) maven(t testing.TB, pairs [][2]string) []string {
	t.Helper()
	java, jar := MavenArtifact(t)
	args := []string{"-cp", jar, "org.apache.maven.artifact.versioning.ComparableVersion"}
	for _, p := range pairs {
		args = append(args, p[0], p[1])
	}
	out, err := exec.Command(java, args...).Output()
	if err != nil {
		t.Fatalf("ComparableVersion: %v", err)
	}
	var ops []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 3 && strings.HasPrefix(l, "   ") {
			ops = append(ops, f[1])
		}
	}
	var odd []string
	for i := 0; i < len(ops); i += 2 {
		odd = append(odd, ops[i])
	}
	return odd
}

// Python returns a python3 that can import module, or skips t naming the
// Debian package pkg that provides the module.
func Python(t testing.TB, module, pkg string) string {
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
	testenv.Skip(t, "no python3 with module %s (Debian package %s; .ci/setup.d/40-vulndb.sh installs it)", module, pkg)
	return ""
}

// NodeSemver returns node and the directory of a node-semver package that
// works with it: in $LADING_NODE_MODULES, ~/.cache/lading-ci/node_modules,
// npm's own copy, or Debian's node-semver in /usr/share/nodejs (which needs
// its dependencies from the same directory: NODE_PATH, which the commands of
// this package set).
func NodeSemver(t testing.TB) (node, module string) {
	t.Helper()
	node = testenv.Tool(t, "node", "Debian's nodejs")
	var dirs []string
	if d := os.Getenv("LADING_NODE_MODULES"); d != "" {
		dirs = append(dirs, d)
	}
	if c, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, filepath.Join(c, "lading-ci", "node_modules"))
	}
	dirs = append(dirs, "/usr/lib/node_modules/npm/node_modules", "/usr/share/nodejs")
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "semver", "package.json")); err != nil {
			continue
		}
		probe := exec.Command(node, "-e", `require(process.argv[1]).satisfies("1.0.0", "<2")`, filepath.Join(d, "semver"))
		probe.Env = append(os.Environ(), "NODE_PATH="+d)
		if probe.Run() == nil {
			return node, filepath.Join(d, "semver")
		}
	}
	testenv.Skip(t, "no working node semver package in %v (Debian package node-semver)", dirs)
	return "", ""
}

// MavenArtifact returns java and the jar with Maven's ComparableVersion.
func MavenArtifact(t testing.TB) (java, jar string) {
	t.Helper()
	java = testenv.Tool(t, "java", "Debian's default-jre-headless")
	for _, j := range []string{os.Getenv("LADING_MAVEN_ARTIFACT_JAR"), "/usr/share/java/maven3-artifact.jar", "/usr/share/maven/lib/maven-artifact-3.x.jar"} {
		if j == "" {
			continue
		}
		if _, err := os.Stat(j); err == nil {
			return java, j
		}
	}
	testenv.Skip(t, "Maven's maven-artifact jar not found (Debian package libmaven3-core-java)")
	return "", ""
}

// alpineRoot unpacks the Alpine 3.20 minirootfs (layer 0 of the
// alpine-3.20-app corpus image) once per oracle, to run its apk with chroot.
func (o *Oracle) alpineRoot(t testing.TB) string {
	t.Helper()
	if o.apkRoot != "" {
		return o.apkRoot
	}
	testenv.Root(t, "apk runs in a chroot of an Alpine minirootfs")
	testenv.Tool(t, "chroot", "Debian's coreutils")
	testenv.Tool(t, "tar", "GNU tar")
	blob := corpustest.Layers(t, corpustest.Image(t, "alpine-3.20-app.oci.tar"))[0]
	root, err := os.MkdirTemp(o.dir, "apk-root-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tar", "-xzf", "-", "-C", root)
	cmd.Stdin = bytes.NewReader(blob)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unpack the Alpine minirootfs: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "sbin", "apk")); err != nil {
		t.Fatalf("no apk in the Alpine minirootfs: %v", err)
	}
	o.apkRoot = root
	return root
}
