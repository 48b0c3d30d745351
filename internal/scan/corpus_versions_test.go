package scan

// Version decisions for the corpus test, made by the real tools: dpkg for
// Debian and Ubuntu, apk (run in a chroot of the Alpine 3.20 minirootfs
// taken from a corpus image; needs root) for Alpine, node's semver package
// for npm ranges and for semantic versions (Go modules without their "v",
// crates.io), and python's packaging for PyPI. Questions are collected
// first and each tool answers all of its questions in one process; answers
// are kept for the rest of the test.

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/oracle"
)

// The tools (internal/oracle).
const (
	toolDpkg   = string(oracle.Dpkg)            // dpkg --compare-versions
	toolApk    = string(oracle.Apk)             // apk version -t
	toolSemver = string(oracle.Semver)          // node-semver compare
	toolRange  = string(oracle.SemverSatisfies) // node-semver satisfies(version, range)
	toolAny    = string(oracle.SemverAny)       // does any version satisfy node-semver range a (minVersion)
	toolPEP440 = string(oracle.PEP440)          // python3 packaging.version.Version
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
	tools   *oracle.Oracle
	answers map[question]answer
	asked   map[string]int // questions asked per tool
	batches map[string]int // processes run per tool
}

func newOracles(t *testing.T) *oracles {
	return &oracles{tools: oracle.New(t), answers: map[question]answer{}, asked: map[string]int{}, batches: map[string]int{}}
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
		pairs := make([][2]string, len(batch))
		for i, q := range batch {
			pairs[i] = [2]string{q.a, q.b}
		}
		for i, a := range o.tools.Ask(t, oracle.Tool(tool), pairs) {
			o.answers[batch[i]] = answer{n: a.N, err: a.Err}
		}
		o.asked[tool] += len(batch)
		o.batches[tool]++
	}
	return len(seen)
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
