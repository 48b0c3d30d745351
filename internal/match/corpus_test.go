package match

// Matching the corpus images' real packages against a database built from
// the corpus feeds. The version decisions are checked against the
// distributions' own tools: dpkg for Ubuntu, apk (in a chroot of the Alpine
// 3.20 minirootfs) for Alpine, node-semver for npm ranges.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/oracle"
	"github.com/lading-dev/lading/internal/vulndb"
	"github.com/lading-dev/lading/internal/vulndb/feed"
)

var corpus struct {
	once sync.Once
	dir  string
	db   *vulndb.DB
	err  error
}

// corpusDB builds a database from the corpus feeds once per test binary.
func corpusDB(t *testing.T) *vulndb.DB {
	t.Helper()
	feeds := filepath.Join(corpustest.Dir(t), "feeds")
	if testing.Short() {
		t.Skip("building from the corpus feeds takes about 20 seconds; not in -short mode")
	}
	corpus.once.Do(func() {
		if corpus.dir, corpus.err = os.MkdirTemp("", "lading-match-corpus-"); corpus.err != nil {
			return
		}
		out := filepath.Join(corpus.dir, vulndb.FileName)
		if _, corpus.err = feed.Build(context.Background(), discard, out, []string{feeds}); corpus.err != nil {
			return
		}
		corpus.db, corpus.err = vulndb.Open(out)
	})
	if corpus.err != nil {
		t.Fatal(corpus.err)
	}
	return corpus.db
}

func TestMain(m *testing.M) {
	code := m.Run()
	if corpus.db != nil {
		corpus.db.Close()
	}
	if corpus.dir != "" {
		os.RemoveAll(corpus.dir)
	}
	os.Exit(code)
}

// expectation is what a source's advisory says about an installed
// version, decided by the distribution's tool.
type expectation struct {
	pkg, vuln string
	status    vulndb.Status
}

func (e expectation) String() string { return e.pkg + " " + e.vuln + " " + e.status.String() }

// decide works out, with the real tool's less-than, what each advisory of
// source says about each package, and compares with the matcher's matches
// from that source.
func decide(t *testing.T, db *vulndb.DB, pkgs []Package, source string, less func(pairs [][2]string) []bool) []expectation {
	t.Helper()
	ctx := context.Background()
	type q struct {
		pkg  string
		vuln string
		a    vulndb.Advisory
		ver  string
	}
	var qs []q
	var pairs [][2]string
	for _, p := range pkgs {
		ns, name, ver := Lookup(p)
		advs, err := db.Advisories(ctx, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range advs {
			if a.Source != source {
				continue
			}
			qs = append(qs, q{p.Name, a.VulnID, a, ver})
			for _, r := range a.Ranges {
				for _, e := range r.Events {
					if e.Kind == vulndb.Fixed {
						pairs = append(pairs, [2]string{ver, e.Version})
					}
				}
			}
		}
	}
	answers := map[[2]string]bool{}
	if len(pairs) > 0 {
		for i, lt := range less(pairs) {
			answers[pairs[i]] = lt
		}
	}
	var want []expectation
	for _, x := range qs {
		if x.a.Status == vulndb.StatusNotAffected {
			continue
		}
		if len(x.a.Ranges) == 0 {
			want = append(want, expectation{x.pkg, x.vuln, x.a.Status})
			continue
		}
		for _, r := range x.a.Ranges { // distribution ranges: introduced 0, fixed
			if fix := r.Events[len(r.Events)-1]; fix.Kind == vulndb.Fixed && answers[[2]string{x.ver, fix.Version}] {
				want = append(want, expectation{x.pkg, x.vuln, vulndb.StatusFixed})
				break
			}
		}
	}
	return dedupe(want)
}

func dedupe(es []expectation) []expectation {
	sort.Slice(es, func(i, j int) bool { return es[i].String() < es[j].String() })
	return slices.CompactFunc(es, func(a, b expectation) bool { return a.String() == b.String() })
}

func got(ms []Match, source string) []expectation {
	var out []expectation
	for _, m := range ms {
		if m.DataSource == source {
			out = append(out, expectation{m.Package.Name, m.VulnerabilityID, m.Status})
		}
	}
	return dedupe(out)
}

// lessBy returns a function that asks tool "is a less than b" for every
// pair.
func lessBy(t *testing.T, o *oracle.Oracle, tool oracle.Tool) func([][2]string) []bool {
	return func(pairs [][2]string) []bool {
		order := o.Compare(t, tool, pairs)
		less := make([]bool, len(order))
		for i, n := range order {
			less[i] = n < 0
		}
		return less
	}
}

func TestCorpusUbuntu(t *testing.T) {
	img := corpustest.Image(t, "ubuntu-18.04-pkgdb.oci.tar")
	db := corpusDB(t)
	id, v := osRelease(t, img)
	ns := vulndb.DistroNamespace(id, v)
	if ns != "ubuntu:18.04" {
		t.Fatalf("namespace %q", ns)
	}
	pkgs := dpkgPackages(t, img, ns)
	if len(pkgs) != 90 {
		t.Fatalf("%d installed packages, the corpus README says 90", len(pkgs))
	}
	ms, err := New(db, discard).Match(context.Background(), pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	want := decide(t, db, pkgs, "ubuntu-cve-tracker", lessBy(t, oracle.New(t), oracle.Dpkg))
	if diff := cmpExpectations(want, got(ms, "ubuntu-cve-tracker")); diff != "" {
		t.Errorf("matches differ from dpkg's decisions:\n%s", diff)
	}
	statuses := map[vulndb.Status]int{}
	for _, m := range ms {
		statuses[m.Status]++
		if m.Severity.Rating == vulndb.RatingUnknown && m.Severity.Source != "" {
			t.Errorf("%s %s: severity %+v", m.Package.Name, m.VulnerabilityID, m.Severity)
		}
	}
	t.Logf("%d matches: %v", len(ms), statuses)
	if statuses[vulndb.StatusFixed] == 0 || statuses[vulndb.StatusAffected] == 0 {
		t.Errorf("statuses %v: want fixed and affected matches", statuses)
	}
	// The deinstalled git (a Debian version in an Ubuntu status file) is
	// not a package.
	for _, p := range pkgs {
		if p.Name == "git" {
			t.Error("deinstalled git listed")
		}
	}
}

func TestCorpusAlpine(t *testing.T) {
	db := corpusDB(t)
	apkLess := lessBy(t, oracle.New(t), oracle.Apk)
	for _, name := range []string{"alpine-3.10.oci.tar", "alpine-3.9.oci.tar"} {
		t.Run(name, func(t *testing.T) {
			img := corpustest.Image(t, name)
			id, v := osRelease(t, img)
			pkgs := apkPackages(t, img, vulndb.DistroNamespace(id, v))
			if len(pkgs) != 14 {
				t.Fatalf("%d packages, the corpus README says 14", len(pkgs))
			}
			ms, err := New(db, discard).Match(context.Background(), pkgs...)
			if err != nil {
				t.Fatal(err)
			}
			want := decide(t, db, pkgs, "alpine-secdb", apkLess)
			if diff := cmpExpectations(want, got(ms, "alpine-secdb")); diff != "" {
				t.Errorf("matches differ from apk's decisions:\n%s", diff)
			}
			t.Logf("%s: %d matches (the images carry every fix their release's secdb lists)", name, len(ms))
		})
	}
	// Every package of the 3.10 secdb, at each version the secdb names,
	// against each of its advisories: the matcher and apk agree.
	t.Run("secdb v3.10 versions", func(t *testing.T) {
		var pkgs []Package
		ctx := context.Background()
		db.Keys(func(ns, name string) bool {
			if ns != "alpine:3.10" {
				return true
			}
			advs, _ := db.Advisories(ctx, ns, name)
			seen := map[string]bool{}
			for _, a := range advs {
				for _, r := range a.Ranges {
					for _, e := range r.Events {
						if e.Kind == vulndb.Fixed && !seen[e.Version] {
							seen[e.Version] = true
							pkgs = append(pkgs, Package{Name: name, Version: e.Version, Namespace: ns})
						}
					}
				}
			}
			return len(pkgs) < 120
		})
		ms, err := New(db, discard).Match(ctx, pkgs...)
		if err != nil {
			t.Fatal(err)
		}
		// The matcher reports per package name; key by name and version.
		key := func(name, ver string) string { return name + "@" + ver }
		var gotE []expectation
		for _, m := range ms {
			gotE = append(gotE, expectation{key(m.Package.Name, m.Package.Version), m.VulnerabilityID, m.Status})
		}
		// Ask apk about every pair at once, then decide per package.
		var pairs [][2]string
		for _, p := range pkgs {
			advs, _ := db.Advisories(ctx, p.Namespace, p.Name)
			for _, a := range advs {
				for _, r := range a.Ranges {
					for _, e := range r.Events {
						if e.Kind == vulndb.Fixed {
							pairs = append(pairs, [2]string{p.Version, e.Version})
						}
					}
				}
			}
		}
		answers := map[[2]string]bool{}
		for i, lt := range apkLess(pairs) {
			answers[pairs[i]] = lt
		}
		known := func(ps [][2]string) []bool {
			out := make([]bool, len(ps))
			for i, p := range ps {
				out[i] = answers[p]
			}
			return out
		}
		var wantE []expectation
		for _, p := range pkgs {
			for _, e := range decide(t, db, []Package{p}, "alpine-secdb", known) {
				wantE = append(wantE, expectation{key(p.Name, p.Version), e.vuln, e.status})
			}
		}
		if diff := cmpExpectations(dedupe(wantE), dedupe(gotE)); diff != "" {
			t.Errorf("matches differ from apk's decisions:\n%s", diff)
		}
		t.Logf("%d package versions, %d comparisons by apk, %d matches", len(pkgs), len(pairs), len(ms))
	})
}

func cmpExpectations(want, got []expectation) string {
	w, g := map[string]bool{}, map[string]bool{}
	for _, e := range want {
		w[e.String()] = true
	}
	for _, e := range got {
		g[e.String()] = true
	}
	var lines []string
	for k := range w {
		if !g[k] {
			lines = append(lines, "- "+k)
		}
	}
	for k := range g {
		if !w[k] {
			lines = append(lines, "+ "+k)
		}
	}
	sort.Strings(lines)
	if len(lines) > 40 {
		lines = append(lines[:40], fmt.Sprintf("... %d more", len(lines)-40))
	}
	return strings.Join(lines, "\n")
}

func TestCorpusApplicationPackages(t *testing.T) {
	db := corpusDB(t)
	ctx := context.Background()
	// The alpine-3.20-app image's npm direct dependencies and Go modules,
	// and the debian-12-app image's Python packages, as the corpus README
	// lists them.
	pkgs := []Package{
		{Name: "express", Version: "4.16.0", Namespace: "npm"},
		{Name: "lodash", Version: "4.17.4", Namespace: "npm"},
		{Name: "minimist", Version: "0.0.8", Namespace: "npm"},
		{Name: "handlebars", Version: "4.0.11", Namespace: "npm"},
		{Name: "morgan", Version: "1.9.0", Namespace: "npm"},
		{Name: "moment", Version: "2.11.1", Namespace: "npm"},
		{Name: "github.com/gin-gonic/gin", Version: "v1.8.1", Namespace: "Go"},
		{Name: "golang.org/x/text", Version: "v0.3.6", Namespace: "Go"},
		{Name: "golang.org/x/net", Version: "v0.0.0-20211112202133-69e39bad7dc2", Namespace: "Go"},
		{Name: "gopkg.in/yaml.v2", Version: "v2.4.0", Namespace: "Go"},
		{Name: "requests", Version: "2.28.1", Namespace: "PyPI"},
		{Name: "urllib3", Version: "1.26.12", Namespace: "PyPI"},
	}
	ms, err := New(db, discard).Match(ctx, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string][]string{}
	for _, m := range ms {
		found[m.Package.Name] = append(found[m.Package.Name], m.SourceID)
		t.Logf("%s %s: %s (%s) fixed in %v, %s %s", m.Package.Name, m.InstalledVersion, m.VulnerabilityID, m.SourceID, m.FixedVersions, m.Severity.Rating, m.Status)
	}
	for pkg, ids := range map[string][]string{
		"github.com/gin-gonic/gin": {"GO-2023-1737"},
		"golang.org/x/text":        {"GO-2021-0113", "GO-2022-1059"},
		"requests":                 {"PYSEC-2023-74"},
	} {
		for _, id := range ids {
			if !slices.Contains(found[pkg], id) {
				t.Errorf("%s: no %s among %v", pkg, id, found[pkg])
			}
		}
	}
	// The npm decisions, against node-semver (which says no to what it
	// cannot parse).
	var lines []string
	var pairs [][2]string
	for _, p := range pkgs[:6] {
		advs, _ := db.Advisories(ctx, "npm", p.Name)
		for _, a := range advs {
			for _, r := range a.Ranges {
				if r.Kind == vulndb.RangeNPM {
					lines = append(lines, p.Version+"\t"+r.Expr+"\t"+p.Name+"\t"+a.SourceID)
					pairs = append(pairs, [2]string{p.Version, r.Expr})
				}
			}
		}
	}
	var decisions []bool
	for _, a := range oracle.New(t).Ask(t, oracle.SemverSatisfies, pairs) {
		decisions = append(decisions, a.N == 1 && a.Err == "")
	}
	nodeSays := map[string]bool{}
	for i, l := range lines {
		f := strings.Split(l, "\t")
		if decisions[i] {
			nodeSays[f[2]+" "+f[3]] = true
		}
	}
	weSay := map[string]bool{}
	for _, m := range ms {
		if m.DataSource == "nodejs-security-wg" {
			weSay[m.Package.Name+" "+m.SourceID] = true
		}
	}
	if len(nodeSays) == 0 {
		t.Error("node found no npm advisory")
	}
	for k := range nodeSays {
		if !weSay[k] {
			t.Errorf("node-semver says %s, the matcher does not", k)
		}
	}
	for k := range weSay {
		if !nodeSays[k] {
			t.Errorf("the matcher says %s, node-semver does not", k)
		}
	}
	for _, want := range []string{"lodash", "handlebars", "morgan", "moment"} {
		if len(found[want]) == 0 {
			t.Errorf("%s: no match; the corpus README says feeds/npm has advisories for it", want)
		}
	}
}

func TestCorpusDebian(t *testing.T) {
	img := corpustest.Image(t, "debian-12-app.oci.tar")
	db := corpusDB(t)
	id, v := osRelease(t, img)
	ns := vulndb.DistroNamespace(id, v)
	if ns != "debian:12" {
		t.Fatalf("namespace %q", ns)
	}
	pkgs := dpkgPackages(t, img, ns)
	if len(pkgs) != 96 {
		t.Fatalf("%d packages, the corpus README says 96", len(pkgs))
	}
	ms, err := New(db, discard).Match(context.Background(), pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	// The DSA and DLA lists end before bookworm's release: nothing to find
	// (the corpus README says so), and nothing is found.
	if len(ms) != 0 {
		t.Errorf("%d matches: %+v", len(ms), ms[0])
	}
	// The same packages as bullseye's find the DSAs that name them.
	for i := range pkgs {
		pkgs[i].Namespace = "debian:11"
	}
	ms, _ = New(db, discard).Match(context.Background(), pkgs...)
	want := decide(t, db, pkgs, "debian-dsa", lessBy(t, oracle.New(t), oracle.Dpkg))
	if diff := cmpExpectations(want, got(ms, "debian-dsa")); diff != "" {
		t.Errorf("bullseye matches differ from dpkg's decisions:\n%s", diff)
	}
	t.Logf("as bullseye: %d matches", len(ms))
}
