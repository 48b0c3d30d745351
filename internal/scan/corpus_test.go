package scan

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/pkg"
	"github.com/lading-dev/lading/internal/report"
	"github.com/lading-dev/lading/internal/vulndb"
	"github.com/lading-dev/lading/internal/vulndb/feed"
)

var corpusBuild struct {
	once   sync.Once
	dir    string
	db     *vulndb.DB
	dbPath string
	err    error
}

// corpusDB builds a database from the corpus feeds, once per test binary.
func corpusDB(t *testing.T) (*vulndb.DB, string) {
	t.Helper()
	feeds := filepath.Join(corpustest.Dir(t), "feeds")
	if testing.Short() {
		t.Skip("building the database from the corpus feeds takes about 20 seconds; not in -short mode")
	}
	corpusBuild.once.Do(func() {
		if corpusBuild.dir, corpusBuild.err = os.MkdirTemp("", "lading-scan-corpus-"); corpusBuild.err != nil {
			return
		}
		corpusBuild.dbPath = filepath.Join(corpusBuild.dir, vulndb.FileName)
		if _, corpusBuild.err = feed.Build(context.Background(), nil, corpusBuild.dbPath, []string{feeds}); corpusBuild.err != nil {
			return
		}
		corpusBuild.db, corpusBuild.err = vulndb.Open(corpusBuild.dbPath)
	})
	if corpusBuild.err != nil {
		t.Fatal(corpusBuild.err)
	}
	return corpusBuild.db, corpusBuild.dbPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if corpusBuild.db != nil {
		corpusBuild.db.Close()
	}
	if corpusBuild.dir != "" {
		os.RemoveAll(corpusBuild.dir)
	}
	os.Exit(code)
}

var update = flag.Bool("update", false, "rewrite testdata/golden from lading's findings (the expected findings are derived every run, never written)")

// corpusScans are the corpus image files and how to open them. Copies of
// one image (OCI layout and docker-archive) share a golden file; the
// multi-platform index is scanned once per platform.
var corpusScans = []struct {
	file, tag, platform, golden string
}{
	{"alpine-3.10.oci.tar", "3.10", "", "alpine-3.10"},
	{"alpine-3.10.docker-save.tar.gz", "", "", "alpine-3.10"},
	{"alpine-3.9.oci.tar", "3.9.6", "", "alpine-3.9"},
	{"alpine-3.9.docker.tar", "", "", "alpine-3.9"},
	{"alpine-3.20-app.oci.tar", "latest", "", "alpine-3.20-app"},
	{"alpine-3.20-app.docker.tar.gz", "", "", "alpine-3.20-app"},
	{"debian-12-app.oci.tar", "latest", "", "debian-12-app"},
	{"ubuntu-18.04-pkgdb.oci.tar", "latest", "", "ubuntu-18.04-pkgdb"},
	{"ubuntu-18.04-pkgdb.docker.tar", "", "", "ubuntu-18.04-pkgdb"},
	{"mariner-2.0-rpmdb.oci.tar", "latest", "", "mariner-2.0-rpmdb"},
	{"mariner-2.0-rpmdb.docker.tar", "", "", "mariner-2.0-rpmdb"},
	{"rhel-8-rpmdb-bdb.oci.tar", "latest", "", "rhel-8-rpmdb-bdb"},
	{"rhel-8-rpmdb-bdb.docker.tar", "", "", "rhel-8-rpmdb-bdb"},
	{"debian-12-distroless.oci.tar", "latest", "", "debian-12-distroless"},
	{"debian-12-distroless.docker.tar.gz", "", "", "debian-12-distroless"},
	{"alpine-3.20-multiarch.oci.tar", "latest", "linux/amd64", "alpine-3.20-multiarch.linux-amd64"},
	{"alpine-3.20-multiarch.oci.tar", "latest", "linux/arm64/v8", "alpine-3.20-multiarch.linux-arm64-v8"},
}

// TestCorpusFindings scans every corpus image with lading and compares the
// findings with findings the test derives on its own, from the raw feed
// records and the real tools' version decisions, never from lading's
// output or its feed parsers:
//
//   - the packages are lading's inventory of the image (name, version,
//     source package and version: Debian's and Ubuntu's Source, Alpine's
//     origin), which the analysis tests of issue 3 check against the real
//     tools (apk, dpkg-query, rpm, npm ls, go version -m);
//   - the advisories are read from the corpus feeds by the test's own small
//     parsers (corpus_feeds_test.go): the Alpine secdb of the image's
//     branch, the Ubuntu CVE tracker for its release, the Debian DSA and DLA
//     lists for its code name (they end before bookworm, so Debian 12
//     finds nothing), the Node Security WG advisories for npm, and the OSV
//     zips for PyPI, Go and crates.io; no corpus feed covers CBL-Mariner or
//     RHEL, and no image is AlmaLinux;
//   - whether a version is affected is decided by dpkg, apk, node-semver
//     and python's packaging (corpus_versions_test.go), each asked all of
//     its questions in one process.
//
// The set of (package, version, vulnerability) lading reports must equal
// the derived one, removed packages included, with the same status and,
// for fixed findings, the feed's fixed version; for Ubuntu, the severity
// is the tracker's priority. Records that share an ID are one
// vulnerability, unless each names a CVE the other does not. IDs match
// leniently: a finding is the derived vulnerability that has its
// VulnerabilityID, else its SourceID, else one of its Aliases. An npm
// lockfile with an installed node_modules tree beside it is not reported
// (the tree is what runs), so it gets no expectations either.
//
// Lading's findings are also compared with testdata/golden/<image>.json;
// go test ./internal/scan -run Corpus -update rewrites those files, never
// the derived expectations.
func TestCorpusFindings(t *testing.T) {
	corpus := corpustest.Dir(t)
	checkCorpusCovered(t, corpus)
	db, dbPath := corpusDB(t)
	feeds := newCorpusFeeds(filepath.Join(corpus, "feeds"))
	tools := newOracles(t)
	written := map[string]bool{} // golden files rewritten in this run
	for _, sc := range corpusScans {
		name := sc.file
		if sc.platform != "" {
			name += "@" + sc.platform
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			img := openCorpusImage(t, corpustest.Image(t, sc.file), sc.tag, sc.platform)
			r, inv, err := New(db, dbPath, nil).Image(ctx, img, ImageInfo{Name: sc.file, BaseLayers: -1})
			if err != nil {
				t.Fatal(err)
			}
			got := ladingFindings(t, inv, r)
			checkGolden(t, filepath.Join("testdata", "golden", sc.golden+".json"), got, written)

			before := tools.counts()
			want, st := deriveFindings(t, inv, feeds, tools)
			matched := "all matched"
			if diff := compareFindings(want, got); diff != "" {
				matched = "NOT matched"
				t.Errorf("lading's findings differ from those derived from the feeds and the tools (- derived only, + lading only, ~ different):\n%s", diff)
			}
			t.Logf("%d packages, %d advisories about them, %d version questions (new to the tools: %s); %d findings derived, %d reported by lading, %s",
				len(inv.Packages())+len(inv.Removed), st.advisories, st.questions, tools.since(before), len(want), len(got), matched)
		})
	}
}

// TestCorpusFeedVersions goes past the images: every package the corpus
// feeds name, at every version their records name (fixed, introduced and
// last affected versions, the ends of OSV versions lists, the versions in
// npm ranges), is scanned by lading and decided by the same derivation as
// TestCorpusFindings. Boundaries are where version orders and range rules
// part ways.
func TestCorpusFeedVersions(t *testing.T) {
	corpus := corpustest.Dir(t)
	db, dbPath := corpusDB(t)
	feeds := newCorpusFeeds(filepath.Join(corpus, "feeds"))
	tools := newOracles(t)
	semverish := regexp.MustCompile(`\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?`)
	for _, tc := range []struct {
		ns   string
		os   *pkg.OS
		eco  pkg.Ecosystem
		vpfx string // what the ecosystem writes before versions the feed writes without ("v" for Go)
	}{
		{"alpine:v3.10", &pkg.OS{ID: "alpine", VersionID: "3.10.4"}, pkg.Apk, ""},
		{"ubuntu:bionic", &pkg.OS{ID: "ubuntu", VersionID: "18.04", Codename: "bionic"}, pkg.Deb, ""},
		{"debian:bullseye", &pkg.OS{ID: "debian", VersionID: "11.6", Codename: "bullseye"}, pkg.Deb, ""},
		{"npm", nil, pkg.Npm, ""},
		{"Go", nil, pkg.Go, "v"},
		{"PyPI", nil, pkg.PyPI, ""},
		{"crates.io", nil, pkg.Cargo, ""},
	} {
		t.Run(tc.ns, func(t *testing.T) {
			idx := feeds.index(t, tc.ns)
			names := slices.Sorted(maps.Keys(idx))
			var pkgs []pkg.Package
			seen := map[string]bool{}
			for _, name := range names {
				for _, a := range idx[name] {
					vs := []string{a.fixed}
					vs = append(vs, semverish.FindAllString(a.vulnerable+" "+a.patched, -1)...)
					for _, r := range a.ranges {
						if r.Type != "GIT" {
							for _, e := range r.Events {
								vs = append(vs, e.Introduced, e.Fixed, e.LastAffected)
							}
						}
					}
					if n := len(a.versions); n > 0 {
						vs = append(vs, a.versions[0], a.versions[n-1])
					}
					for _, v := range vs {
						if v == "" || v == "0" || seen[name+"@"+v] {
							continue
						}
						seen[name+"@"+v] = true
						pkgs = append(pkgs, pkg.Package{Name: name, Version: tc.vpfx + v, Ecosystem: tc.eco, Location: "/feed"})
					}
				}
			}
			class := analyze.ClassLang
			if tc.os != nil {
				class = analyze.ClassOS
			}
			inv := &analyze.Inventory{OS: tc.os, Targets: []analyze.Target{{Path: "/feed", Type: string(tc.eco), Class: class, Packages: pkgs}}}
			r, err := New(db, dbPath, nil).Inventory(context.Background(), inv, "sbom", ImageInfo{Name: tc.ns})
			if err != nil {
				t.Fatal(err)
			}
			got := ladingFindings(t, inv, r)
			want, st := deriveFindings(t, inv, feeds, tools)
			if diff := compareFindings(want, got); diff != "" {
				t.Errorf("lading's findings differ from those derived from the feeds and the tools (- derived only, + lading only, ~ different):\n%s", diff)
			}
			t.Logf("%d package versions, %d advisories about them, %d version questions; %d findings derived, %d reported by lading",
				len(pkgs), st.advisories, st.questions, len(want), len(got))
		})
	}
}

// checkCorpusCovered fails when a corpus image file is not in corpusScans.
func checkCorpusCovered(t *testing.T, corpus string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(corpus, "images"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.ContainsFunc(corpusScans, func(s struct{ file, tag, platform, golden string }) bool { return s.file == e.Name() }) {
			t.Errorf("corpus image %s is not in corpusScans", e.Name())
		}
	}
}

func openCorpusImage(t *testing.T, file, tag, platform string) v1.Image {
	t.Helper()
	ref := image.Reference{Transport: image.DockerArchive, Path: file}
	if strings.Contains(filepath.Base(file), ".oci.") {
		ref = image.Reference{Transport: image.OCIArchive, Path: file, Name: tag}
	}
	src, err := image.Open(context.Background(), ref, image.WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	var p *v1.Platform
	if platform != "" {
		if p, err = image.ParsePlatform(platform); err != nil {
			t.Fatal(err)
		}
	}
	img, err := src.Select(p)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pkgKey names a package of an inventory: its target (index in
// Inventory.Targets, -1 for removed packages), declaring file, name and
// version.
type pkgKey struct {
	target        int
	path          string
	name, version string
}

func (k pkgKey) String() string {
	t := fmt.Sprintf("target %d", k.target)
	if k.target < 0 {
		t = "removed"
	}
	return fmt.Sprintf("%s %s %s@%s", t, k.path, k.name, k.version)
}

// found is one of lading's findings.
type found struct {
	key     pkgKey
	target  string // the report's target
	f       report.Finding
	removed bool
}

// ladingFindings lists the findings of r, keyed by the inventory's
// packages: r's results are inv's reported targets, in order.
func ladingFindings(t *testing.T, inv *analyze.Inventory, r *report.Report) []found {
	t.Helper()
	var targets []int
	for i := range inv.Targets {
		if reported(inv.Targets, i) {
			targets = append(targets, i)
		}
	}
	if len(r.Results) != len(targets) {
		t.Fatalf("%d results for %d targets to report", len(r.Results), len(targets))
	}
	var out []found
	for j, res := range r.Results {
		i := targets[j]
		tg := inv.Targets[i]
		if res.Packages != len(tg.Packages) || res.Class != string(tg.Class) || tg.Class == analyze.ClassLang && res.Target != tg.Path {
			t.Fatalf("result %d (%s, %d packages) is not target %s (%d packages)", j, res.Target, res.Packages, tg.Path, len(tg.Packages))
		}
		for _, f := range res.Vulnerabilities {
			out = append(out, found{pkgKey{i, f.PkgPath, f.PkgName, f.InstalledVersion}, res.Target, f, false})
		}
	}
	for _, rp := range r.Removed {
		for _, f := range rp.Vulnerabilities {
			out = append(out, found{pkgKey{-1, rp.PkgPath, rp.PkgName, rp.Version}, "removed", f, true})
		}
	}
	return out
}

// reported says whether a scan reports target i: every target but an npm
// lockfile with an installed node_modules tree beside it, which is what
// runs in the image (the lockfile repeats it, or names packages never
// installed).
func reported(ts []analyze.Target, i int) bool {
	switch path.Base(ts[i].Path) {
	case "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml":
		modules := path.Join(path.Dir(ts[i].Path), "node_modules")
		return !slices.ContainsFunc(ts, func(t analyze.Target) bool { return t.Path == modules && t.Type == "node_modules" })
	}
	return true
}

// goldenFinding is the part of a finding the golden files keep.
type goldenFinding struct {
	Target   string `json:"target"`
	Path     string `json:"path,omitempty"`
	Package  string `json:"package"`
	Version  string `json:"version"`
	ID       string `json:"id"`
	Status   string `json:"status"`
	Fixed    string `json:"fixed,omitempty"`
	Severity string `json:"severity"`
	Layer    int    `json:"layer"`
	Removed  bool   `json:"removed,omitempty"`
}

// checkGolden compares lading's findings with a golden file, or writes it
// with -update (once per run: the copies of an image then compare with
// what the first wrote).
func checkGolden(t *testing.T, file string, fs []found, written map[string]bool) {
	t.Helper()
	got := []goldenFinding{}
	for _, x := range fs {
		g := goldenFinding{Target: x.target, Path: x.f.PkgPath, Package: x.f.PkgName, Version: x.f.InstalledVersion,
			ID: x.f.VulnerabilityID, Status: x.f.Status, Fixed: x.f.FixedVersion, Severity: x.f.Severity, Layer: -1, Removed: x.removed}
		if x.f.Layer != nil {
			g.Layer = x.f.Layer.Index
		}
		got = append(got, g)
	}
	sort.Slice(got, func(i, j int) bool {
		a, b := got[i], got[j]
		return fmt.Sprint(a.Removed, a.Target, a.Path, a.Package, a.Version, a.ID) < fmt.Sprint(b.Removed, b.Target, b.Path, b.Package, b.Version, b.ID)
	})
	if *update && !written[file] {
		written[file] = true
		var b strings.Builder
		b.WriteString("[")
		if len(got) == 0 {
			b.WriteString("]\n")
		}
		for i, g := range got {
			line, err := json.Marshal(g)
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n  ")
			b.Write(line)
		}
		if len(got) > 0 {
			b.WriteString("\n]\n")
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (go test ./internal/scan -run Corpus -update writes it)", err)
	}
	var want []goldenFinding
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings differ from %s (-golden +lading; go test ./internal/scan -run Corpus -update rewrites it):\n%s", file, diff)
	}
}

// expected is a vulnerability the feeds say a package has: the advisories
// about it (records with overlapping IDs count as one vulnerability) and
// their verdicts.
type expected struct {
	key      pkgKey
	ids      []string
	status   []string // what the advisories say: fixed, affected, will_not_fix, fix_deferred
	fixed    []string
	severity []string // the distribution's ratings, when it gives one
	from     []string // the advisories, for messages
}

type deriveStats struct{ advisories, questions int }

// deriveFindings works out, for every package of inv (removed ones too),
// what the feeds say, with the tools deciding the versions. It returns the
// expected findings, and how many advisories and distinct version
// questions it took.
func deriveFindings(t *testing.T, inv *analyze.Inventory, feeds *corpusFeeds, tools *oracles) ([]expected, deriveStats) {
	t.Helper()
	type item struct {
		key pkgKey
		ver string // the version compared
		adv advisory
	}
	var items []item
	add := func(target int, p pkg.Package) {
		ns, name, ver := feedLookup(inv.OS, p)
		if ns == "" {
			return
		}
		for _, a := range feeds.lookup(t, ns, name) {
			items = append(items, item{pkgKey{target, p.Location, p.Name, p.Version}, ver, a})
		}
	}
	for i, tg := range inv.Targets {
		if !reported(inv.Targets, i) {
			continue
		}
		for _, p := range tg.Packages {
			add(i, p)
		}
	}
	for _, rm := range inv.Removed {
		add(-1, rm.Package)
	}
	var qs []question
	for _, it := range items {
		qs = append(qs, it.adv.questions(it.ver)...)
	}
	nq := tools.resolve(t, qs)

	// Group each package's affecting advisories into vulnerabilities:
	// advisories sharing an ID are one, unless each names a CVE the other
	// does not (records that alias one GHSA or XSA but are about different
	// CVEs).
	byKey := map[pkgKey][]*expected{}
	var keys []pkgKey
	for _, it := range items {
		v, err := it.adv.decide(it.ver, tools)
		if err != nil {
			t.Logf("%s: %s left out: %v", it.key, it.adv, err)
			continue
		}
		if !v.affected {
			continue
		}
		if _, ok := byKey[it.key]; !ok {
			keys = append(keys, it.key)
		}
		merged := &expected{key: it.key, ids: it.adv.ids, status: strings.Split(v.status, "|"), fixed: v.fixed, from: []string{it.adv.String()}}
		if it.adv.severity != "" {
			merged.severity = []string{it.adv.severity}
		}
		var rest []*expected
		for _, e := range byKey[it.key] {
			if overlap(e.ids, merged.ids) && nested(cves(e.ids), cves(merged.ids)) {
				merged.absorb(e)
			} else {
				rest = append(rest, e)
			}
		}
		byKey[it.key] = append(rest, merged)
	}
	var out []expected
	for _, k := range keys {
		for _, e := range byKey[k] {
			out = append(out, *e)
		}
	}
	return out, deriveStats{advisories: len(items), questions: nq}
}

func (e *expected) absorb(o *expected) {
	for _, id := range o.ids {
		e.ids = appendNew(e.ids, id)
	}
	for _, s := range o.status {
		e.status = appendNew(e.status, s)
	}
	for _, f := range o.fixed {
		e.fixed = appendNew(e.fixed, f)
	}
	for _, s := range o.severity {
		e.severity = appendNew(e.severity, s)
	}
	e.from = append(e.from, o.from...)
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// cves returns the distinct CVE IDs among ids.
func cves(ids []string) []string {
	var out []string
	for _, id := range ids {
		if strings.HasPrefix(id, "CVE-") {
			out = appendNew(out, id)
		}
	}
	return out
}

// nested reports whether one of two sets holds the other.
func nested(a, b []string) bool {
	sub := func(x, y []string) bool {
		for _, s := range x {
			if !slices.Contains(y, s) {
				return false
			}
		}
		return true
	}
	return sub(a, b) || sub(b, a)
}

func overlap(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// feedLookup says in which feed namespace, under which name and at which
// version the test looks a package up: distributions by source package
// (Alpine's origin; Debian's and Ubuntu's Source, whose version their
// trackers give), language packages by name in their ecosystem (Go
// versions without their "v", as OSV writes them).
func feedLookup(os *pkg.OS, p pkg.Package) (ns, name, ver string) {
	name, ver = p.Name, p.Version
	if p.Ecosystem.IsOS() {
		if os == nil {
			return "", "", ""
		}
		if p.Source != nil && p.Source.Name != "" {
			name = p.Source.Name
			if p.Source.Version != "" {
				ver = p.Source.Version
			}
		}
		switch os.ID {
		case "alpine":
			parts := strings.SplitN(os.VersionID, ".", 3)
			if len(parts) < 2 {
				return "", "", ""
			}
			return "alpine:v" + parts[0] + "." + parts[1], name, ver
		case "debian", "ubuntu":
			return os.ID + ":" + os.Codename, name, ver
		}
		return os.ID + ":" + os.VersionID, name, ver // no corpus feed: nothing found
	}
	if p.Ecosystem == pkg.Go {
		ver = strings.TrimPrefix(ver, "v")
	}
	return string(p.Ecosystem), name, ver
}

// compareFindings matches derived and reported findings package by
// package, and describes the differences.
func compareFindings(want []expected, got []found) string {
	var lines []string
	gotBy := map[pkgKey][]found{}
	for _, g := range got {
		gotBy[g.key] = append(gotBy[g.key], g)
	}
	// A finding is the derived vulnerability that has its
	// VulnerabilityID, else the one that has its SourceID (one DSA fixes
	// several CVEs), else the one that has one of its Aliases.
	used := map[*found]bool{}
	matches := map[int][]*found{}
	wantBy := map[pkgKey][]int{}
	for i, e := range want {
		wantBy[e.key] = append(wantBy[e.key], i)
	}
	for k, gs := range gotBy {
		for i := range gs {
			g := &gs[i]
			var cands []int
			for _, pass := range [][]string{{g.f.VulnerabilityID}, {g.f.SourceID}, g.f.Aliases} {
				for _, w := range wantBy[k] {
					if overlap(want[w].ids, pass) {
						cands = append(cands, w)
					}
				}
				if len(cands) > 0 {
					break
				}
			}
			switch len(cands) {
			case 0:
			case 1:
				used[g] = true
				matches[cands[0]] = append(matches[cands[0]], g)
			default:
				used[g] = true
				var ds []string
				for _, w := range cands {
					ds = append(ds, strings.Join(want[w].ids, "/"))
				}
				lines = append(lines, fmt.Sprintf("~ %s %s matches %d derived vulnerabilities: %s", k, g.f.VulnerabilityID, len(cands), strings.Join(ds, ", ")))
			}
		}
	}
	for i, e := range want {
		desc := fmt.Sprintf("%s %s", e.key, strings.Join(e.ids, "/"))
		switch len(matches[i]) {
		case 0:
			lines = append(lines, fmt.Sprintf("- %s %v fixed in %v (%s)", desc, e.status, e.fixed, strings.Join(e.from, "; ")))
			continue
		case 1:
		default:
			lines = append(lines, fmt.Sprintf("~ %s reported %d times", desc, len(matches[i])))
		}
		for _, g := range matches[i] {
			if msg := e.differs(g.f); msg != "" {
				lines = append(lines, fmt.Sprintf("~ %s: %s", desc, msg))
			}
		}
	}
	for k := range gotBy {
		for i := range gotBy[k] {
			g := &gotBy[k][i]
			if !used[g] {
				lines = append(lines, fmt.Sprintf("+ %s %s (%s %s) %s fixed in %q", k, g.f.VulnerabilityID, g.f.DataSource, g.f.SourceID, g.f.Status, g.f.FixedVersion))
			}
		}
	}
	sort.Strings(lines)
	if len(lines) > 60 {
		lines = append(lines[:60], fmt.Sprintf("... and %d more", len(lines)-60))
	}
	return strings.Join(lines, "\n")
}

// differs says how a finding differs from what the feeds say: its
// status, its fixed versions (those of the advisories that fix it), its
// severity when the distribution rates it.
func (e expected) differs(f report.Finding) string {
	var msgs []string
	want := "affected"
	switch {
	case slices.Contains(e.status, "fixed"):
		want = "fixed"
	case len(e.status) == 1:
		want = e.status[0]
	}
	if f.Status != want && !(len(e.status) > 1 && slices.Contains(e.status, f.Status) && want != "fixed") {
		msgs = append(msgs, fmt.Sprintf("status %s, the feeds say %v", f.Status, e.status))
	}
	var fixes []string
	if f.FixedVersion != "" {
		fixes = strings.Split(f.FixedVersion, ", ")
	}
	switch {
	case want == "fixed" && len(fixes) == 0:
		msgs = append(msgs, fmt.Sprintf("no fixed version, the feeds say %v", e.fixed))
	case want != "fixed" && len(fixes) > 0:
		msgs = append(msgs, fmt.Sprintf("fixed in %q, the feeds give no fix", f.FixedVersion))
	default:
		for _, x := range fixes {
			if !slices.Contains(e.fixed, x) {
				msgs = append(msgs, fmt.Sprintf("fixed in %q, the feeds say %v", f.FixedVersion, e.fixed))
				break
			}
		}
	}
	if len(e.severity) > 0 && !slices.Contains(e.severity, f.Severity) {
		msgs = append(msgs, fmt.Sprintf("severity %s, the distribution says %v", f.Severity, e.severity))
	}
	return strings.Join(msgs, "; ")
}
