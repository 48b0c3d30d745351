package scan

// Version decisions for the corpus test, made by the real tools: dpkg for
// Debian and Ubuntu, apk (run in a chroot of the Alpine 3.20 minirootfs
// taken from a corpus image; needs root) for Alpine, node's semver package
// for npm ranges and for semantic versions (Go modules without their "v",
// crates.io), and python's packaging for PyPI. Questions are collected
// first and each tool answers all of its questions in one process; answers
// are kept for the rest of the test.

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/corpustest"
)

// The tools.
const (
	toolDpkg   = "dpkg"       // dpkg --compare-versions
	toolApk    = "apk"        // apk version -t
	toolSemver = "semver"     // node-semver compare
	toolRange  = "node-range" // node-semver satisfies(version, range)
	toolAny    = "node-any"   // does any version satisfy node-semver range a (minVersion)
	toolPEP440 = "pep440"     // python3 packaging.version.Version
)

// question is one question to a tool: compare a with b (-1, 0, 1); for
// toolRange, does version a satisfy range b (1, 0); for toolAny, does any
// version satisfy range a (1, 0).
type question struct{ tool, a, b string }

// compares says whether a tool compares two versions (rather than
// answering about ranges).
func compares(tool string) bool { return tool != toolRange && tool != toolAny }

type answer struct {
	n   int
	err string // the tool could not answer
}

// oracles asks the tools and remembers their answers.
type oracles struct {
	tmp     string // for the apk chroot
	answers map[question]answer
	asked   map[string]int // questions asked per tool
	batches map[string]int // processes run per tool
	apkRoot string
}

func newOracles(tmp string) *oracles {
	return &oracles{tmp: tmp, answers: map[question]answer{}, asked: map[string]int{}, batches: map[string]int{}}
}

// canonical orders a comparison's operands so that (a, b) and (b, a) are
// one question.
func canonical(q question) (question, bool) {
	if compares(q.tool) && q.a > q.b {
		return question{q.tool, q.b, q.a}, true
	}
	return q, false
}

// resolve has the tools answer every question not answered yet: one
// process per tool. A missing tool skips t with a message naming the
// package that provides it. It returns how many distinct questions qs
// holds.
func (o *oracles) resolve(t *testing.T, qs []question) int {
	t.Helper()
	byTool := map[string][]question{}
	seen := map[question]bool{}
	for _, q := range qs {
		q, _ = canonical(q)
		if compares(q.tool) && q.a == q.b || seen[q] {
			continue
		}
		seen[q] = true
		if _, ok := o.answers[q]; !ok {
			byTool[q.tool] = append(byTool[q.tool], q)
		}
	}
	tools := make([]string, 0, len(byTool))
	for tool := range byTool {
		tools = append(tools, tool)
	}
	sort.Strings(tools)
	for _, tool := range tools {
		batch := byTool[tool]
		var lines []string
		for _, q := range batch {
			lines = append(lines, q.a+"\t"+q.b)
		}
		out := o.run(t, tool, lines)
		if len(out) != len(batch) {
			t.Fatalf("%s answered %d of %d questions", tool, len(out), len(batch))
		}
		for i, q := range batch {
			o.answers[q] = parseAnswer(out[i])
		}
		o.asked[tool] += len(batch)
		o.batches[tool]++
	}
	return len(seen)
}

func parseAnswer(s string) answer {
	switch strings.TrimSpace(s) {
	case "<", "-1":
		return answer{n: -1}
	case "=", "0":
		return answer{n: 0}
	case ">", "1":
		return answer{n: 1}
	}
	return answer{err: strings.TrimSpace(s)}
}

// cmp answers a question resolve has had answered.
func (o *oracles) cmp(tool, a, b string) (int, error) {
	q, swapped := canonical(question{tool, a, b})
	if compares(q.tool) && q.a == q.b {
		return 0, nil
	}
	ans, ok := o.answers[q]
	if !ok {
		return 0, fmt.Errorf("%s was not asked about %q and %q", tool, a, b)
	}
	if ans.err != "" {
		return 0, fmt.Errorf("%s cannot compare %q with %q: %s", tool, a, b, ans.err)
	}
	if swapped {
		return -ans.n, nil
	}
	return ans.n, nil
}

// run feeds lines ("a\tb") to a tool and returns one answer per line.
func (o *oracles) run(t *testing.T, tool string, lines []string) []string {
	t.Helper()
	var cmd *exec.Cmd
	switch tool {
	case toolDpkg:
		need(t, "dpkg", "dpkg")
		cmd = exec.Command("sh", "-c", `while IFS='	' read -r a b; do
	if dpkg --compare-versions "$a" lt "$b" 2>/dev/null; then echo -1
	elif dpkg --compare-versions "$a" eq "$b" 2>/dev/null; then echo 0
	elif dpkg --compare-versions "$a" gt "$b" 2>/dev/null; then echo 1
	else echo "bad version"; fi
done`)
	case toolApk:
		root := o.alpineRoot(t)
		cmd = exec.Command("chroot", root, "/bin/sh", "-c", `while IFS='	' read -r a b; do
	r=$(/sbin/apk version -t "$a" "$b" 2>/dev/null); echo "${r:-no answer}"
done`)
	case toolSemver, toolRange, toolAny:
		node, mod := nodeSemver(t)
		cmd = exec.Command(node, "-e", fmt.Sprintf(`const semver = require(%q);
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
console.log(out.join("\n"));`, mod, map[string]string{toolSemver: "compare", toolRange: "satisfies", toolAny: "any"}[tool]))
		cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Dir(mod))
	case toolPEP440:
		cmd = exec.Command(python(t, "packaging.version", "python3-packaging"), "-c", `import sys
from packaging.version import Version, InvalidVersion
for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    try:
        x, y = Version(a), Version(b)
        print((x > y) - (x < y))
    except InvalidVersion:
        print("invalid")
`)
	default:
		t.Fatalf("no tool %q", tool)
	}
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, stderr.String())
	}
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
}

func need(t *testing.T, cmd, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(cmd)
	if err != nil {
		t.Skipf("%s not installed (Debian package %s; .ci/setup.d/40-vulndb.sh installs it)", cmd, pkg)
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
	t.Skipf("no python3 with module %s (Debian package %s; .ci/setup.d/40-vulndb.sh installs it)", module, pkg)
	return ""
}

// nodeSemver finds node and node's semver package where
// .ci/setup.d/40-vulndb.sh puts it (Debian's node-semver), or in the places
// the other tests look.
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
	dirs = append(dirs, "/usr/lib/node_modules/npm/node_modules", "/usr/share/nodejs")
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "semver", "package.json")); err != nil {
			continue
		}
		// Debian's node-semver needs its dependencies (node-lru-cache)
		// from the same directory, which a node not from Debian does not
		// search by itself: NODE_PATH.
		probe := exec.Command(node, "-e", `require(process.argv[1]).satisfies("1.0.0", "<2")`, filepath.Join(d, "semver"))
		probe.Env = append(os.Environ(), "NODE_PATH="+d)
		if probe.Run() == nil {
			return node, filepath.Join(d, "semver")
		}
	}
	t.Skipf("no working node semver package in %v (Debian package node-semver)", dirs)
	return "", ""
}

// alpineRoot unpacks the Alpine 3.20 minirootfs (layer 0 of the
// alpine-3.20-app corpus image) once, to run its apk with chroot.
func (o *oracles) alpineRoot(t *testing.T) string {
	t.Helper()
	if o.apkRoot != "" {
		return o.apkRoot
	}
	if os.Geteuid() != 0 {
		t.Skip("apk runs in a chroot of an Alpine minirootfs, which needs root")
	}
	need(t, "chroot", "coreutils")
	need(t, "tar", "tar")
	blob := ociLayerBlob(t, corpustest.Image(t, "alpine-3.20-app.oci.tar"), 0)
	root, err := os.MkdirTemp(o.tmp, "apk-root-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tar", "-xzf", "-", "-C", root)
	cmd.Stdin = bytes.NewReader(blob)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unpack the minirootfs layer: %v\n%s", err, out)
	}
	o.apkRoot = root
	return root
}

// ociLayerBlob returns layer n of the (single) image of an OCI layout tar.
func ociLayerBlob(t *testing.T, ociTar string, n int) []byte {
	t.Helper()
	f, err := os.Open(ociTar)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "./")] = b
	}
	blob := func(digest string) []byte { return files["blobs/"+strings.Replace(digest, ":", "/", 1)] }
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	var manifest struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) == 0 {
		t.Fatalf("%s: index.json: %v", ociTar, err)
	}
	if err := json.Unmarshal(blob(index.Manifests[0].Digest), &manifest); err != nil || len(manifest.Layers) <= n {
		t.Fatalf("%s: manifest: %v", ociTar, err)
	}
	return blob(manifest.Layers[n].Digest)
}

// verdict is what an advisory says about a version.
type verdict struct {
	affected bool
	status   string   // fixed, affected, will_not_fix, fix_deferred
	fixed    []string // the versions that fix it, for status fixed
}

// questions lists what the tools must answer to decide a for version v.
func (a advisory) questions(v string) []question {
	switch a.kind {
	case advDistro:
		if a.fixed != "" {
			return []question{{a.tool(), v, a.fixed}}
		}
	case advNPM:
		qs := []question{{toolRange, v, a.vulnerable}}
		if a.patched != "" {
			qs = append(qs, question{toolRange, v, a.patched}, question{toolAny, a.patched, ""})
		}
		return qs
	case advOSV:
		var qs []question
		if tool := a.rangeTool(osvRange{Type: "ECOSYSTEM"}); tool != "" {
			for _, x := range a.versions {
				qs = append(qs, question{tool, v, x})
			}
		}
		for _, r := range a.ranges {
			tool := a.rangeTool(r)
			if tool == "" {
				continue
			}
			vs := []string{v}
			for _, e := range r.Events {
				for _, x := range []string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
					if x != "" && x != "0" && x != "*" && !slices.Contains(vs, x) {
						vs = append(vs, x)
					}
				}
			}
			// Every pair: the events are sorted by the tool's order.
			for i := range vs {
				for j := i + 1; j < len(vs); j++ {
					qs = append(qs, question{tool, vs[i], vs[j]})
				}
			}
		}
		return qs
	}
	return nil
}

// tool is the tool that orders a distribution's versions.
func (a advisory) tool() string {
	if strings.HasPrefix(a.source, "alpine") {
		return toolApk
	}
	return toolDpkg
}

// rangeTool is the tool that orders the versions of an OSV range: semver
// for SEMVER ranges, the ecosystem's own for ECOSYSTEM ranges; "" for GIT
// ranges, which no version decides.
func (a advisory) rangeTool(r osvRange) string {
	switch r.Type {
	case "SEMVER":
		return toolSemver
	case "ECOSYSTEM":
		switch a.ecosystem {
		case "PyPI":
			return toolPEP440
		case "Go", "npm", "crates.io":
			return toolSemver
		}
	}
	return ""
}

// decide says what a says of version v, with the tools' answers.
func (a advisory) decide(v string, o *oracles) (verdict, error) {
	switch a.kind {
	case advDistro:
		if a.fixed == "" {
			return verdict{affected: true, status: a.status}, nil
		}
		c, err := o.cmp(a.tool(), v, a.fixed)
		if err != nil || c >= 0 {
			return verdict{}, err
		}
		if a.pending {
			return verdict{affected: true, status: "affected"}, nil
		}
		return verdict{affected: true, status: "fixed", fixed: []string{a.fixed}}, nil
	case advNPM:
		in, err := o.cmp(toolRange, v, a.vulnerable)
		if err != nil || in == 0 {
			return verdict{}, err
		}
		if a.patched == "" {
			return verdict{affected: true, status: "affected"}, nil
		}
		if ok, err := o.cmp(toolRange, v, a.patched); err != nil || ok == 1 {
			return verdict{}, err // a patched version
		}
		// "<0.0.0", the working group's way of saying nothing is patched.
		if any, err := o.cmp(toolAny, a.patched, ""); err != nil || any == 0 {
			return verdict{affected: true, status: "affected"}, err
		}
		return verdict{affected: true, status: "fixed", fixed: []string{a.patched}}, nil
	case advOSV:
		// Listed versions: the same version, in the ecosystem's terms
		// (PEP 440 "1.0" is "1.0.0").
		var out verdict
		tool := a.rangeTool(osvRange{Type: "ECOSYSTEM"})
		for _, x := range a.versions {
			if x == v {
				out.affected = true
			} else if tool != "" {
				if c, err := o.cmp(tool, v, x); err == nil && c == 0 {
					out.affected = true
				}
			}
		}
		var rangeErr error
		for _, r := range a.ranges {
			tool := a.rangeTool(r)
			if tool == "" {
				continue
			}
			in, fix, err := osvIncludes(v, r, func(x, y string) (int, error) { return o.cmp(tool, x, y) })
			if err != nil {
				rangeErr = err
				continue
			}
			if in {
				out.affected = true
				if fix != "" && !slices.Contains(out.fixed, fix) {
					out.fixed = append(out.fixed, fix)
				}
			}
		}
		if !out.affected {
			// A range the tool cannot decide leaves the advisory out,
			// unless the version is listed.
			return verdict{}, rangeErr
		}
		out.status = "affected"
		if len(out.fixed) > 0 {
			out.status = "fixed"
		}
		return out, nil
	}
	return verdict{}, fmt.Errorf("advisory of unknown kind %d", a.kind)
}

// osvIncludes evaluates one OSV range for v as the OSV schema's evaluation
// algorithm does: below a limit (if any), walk the events sorted by
// version ("0" first) and let each introduced at or below v make it
// vulnerable, each fixed at or below v and each last_affected below v make
// it not. When v is in the range, fix is the first fixed event above v.
func osvIncludes(v string, r osvRange, cmp func(a, b string) (int, error)) (in bool, fix string, err error) {
	less := func(a, b string) bool { // order of event versions; "0" sorts first
		if a == "0" || b == "0" {
			return a == "0" && b != "0"
		}
		c, e := cmp(a, b)
		if e != nil && err == nil {
			err = e
		}
		return c < 0
	}
	vcmp := func(x string) int { // v compared with x
		c, e := cmp(v, x)
		if e != nil && err == nil {
			err = e
		}
		return c
	}
	type event struct{ kind, ver string }
	var evs []event
	var limits []string
	for _, e := range r.Events {
		switch {
		case e.Introduced != "":
			evs = append(evs, event{"introduced", e.Introduced})
		case e.Fixed != "":
			evs = append(evs, event{"fixed", e.Fixed})
		case e.LastAffected != "":
			evs = append(evs, event{"last_affected", e.LastAffected})
		case e.Limit != "":
			limits = append(limits, e.Limit)
		}
	}
	if len(limits) > 0 {
		below := false
		for _, l := range limits {
			if l == "*" || vcmp(l) < 0 {
				below = true
			}
		}
		if !below {
			return false, "", err
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return less(evs[i].ver, evs[j].ver) })
	for _, e := range evs {
		switch e.kind {
		case "introduced":
			if e.ver == "0" || vcmp(e.ver) >= 0 {
				in = true
			}
		case "fixed":
			if vcmp(e.ver) >= 0 {
				in = false
			}
		case "last_affected":
			if vcmp(e.ver) > 0 {
				in = false
			}
		}
	}
	if in {
		for _, e := range evs {
			if e.kind == "fixed" && vcmp(e.ver) < 0 {
				fix = e.ver
				break
			}
		}
	}
	return in, fix, err
}

// counts returns how many questions each tool has answered and in how
// many processes, for since.
func (o *oracles) counts() [2]map[string]int {
	return [2]map[string]int{maps.Clone(o.asked), maps.Clone(o.batches)}
}

// since says how many questions each tool answered since counts returned
// before, in how many processes.
func (o *oracles) since(before [2]map[string]int) string {
	var parts []string
	for tool, n := range o.asked {
		if n -= before[0][tool]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d in %d", tool, n, o.batches[tool]-before[1][tool]))
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "none, all answered before"
	}
	return strings.Join(parts, ", ")
}
