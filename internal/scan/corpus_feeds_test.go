package scan

// The corpus test's own readers of the corpus feeds. They are deliberately
// separate from lading's parsers (internal/vulndb/feed/...): each reads its
// feed's published format as its publisher documents it, keeps only what
// the expected findings need, and shares no code with the database build.
//
//   - Alpine secdb (feeds/alpine-secdb/vX.Y/{main,community}.yaml): per
//     origin package, fixed version -> IDs; a fixed version "0" means the
//     package was never affected.
//   - Ubuntu CVE tracker (active/ and retired/ CVE files): per CVE,
//     "<release>_<source>: <status> (<version or note>)" lines, "Priority:"
//     and per-package "Priority_<source>:". The status words mean what the
//     tracker's README says: released (fixed in the version given), needed
//     (vulnerable, no fix), needs-triage (not evaluated yet: no finding, as
//     Trivy reads it; its Ubuntu source keeps only needed, deferred and
//     released), pending (an
//     update with the fix in the version given is waiting to be published),
//     deferred (vulnerable, fix deferred), ignored (a firm decision not to
//     fix; the report may call it end of life when the note says so),
//     not-affected and DNE (no finding).
//   - Debian security tracker DSA and DLA lists: per advisory, its CVEs and
//     "[release] - source version" lines; each CVE is a vulnerability fixed
//     in that version, with the DSA or DLA as an alias.
//   - Node.js Security WG (vuln/npm/N.json): module_name, vulnerable_versions
//     and patched_versions (node-semver ranges), cves.
//   - OSV (feeds/osv/<Ecosystem>.zip; JSON, or YAML for PyPI): affected
//     packages with SEMVER, ECOSYSTEM (and GIT, which no version decides)
//     ranges and explicit versions lists; withdrawn records are skipped.

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/lading-dev/lading/internal/corpustest"
)

// advKind says how an advisory decides whether a version is affected.
type advKind int

const (
	// advDistro: a distribution's record. With fixed set, versions below
	// it are affected and fixed there (pending: affected, fix not yet
	// published); without, every version has status.
	advDistro advKind = iota
	// advNPM: a Node Security WG record, node-semver ranges.
	advNPM
	// advOSV: an OSV record's entries for the package.
	advOSV
)

// advisory is what one feed record says about one package.
type advisory struct {
	kind   advKind
	source string   // the feed it comes from
	ids    []string // the record's own ID first, then its aliases and CVEs

	// advDistro
	fixed    string // the version that fixes it, if any
	pending  bool   // the fix in fixed is not published yet
	status   string // without fixed: "affected", "will_not_fix" or "fix_deferred"; "a|b" when both words fit
	severity string // the distribution's rating, as the report words it; "" when none

	// advNPM
	vulnerable, patched string

	// advOSV
	ecosystem string // the OSV ecosystem, whose rules ECOSYSTEM ranges follow
	ranges    []osvRange
	versions  []string
}

func (a advisory) String() string { return a.source + " " + strings.Join(a.ids, "/") }

type osvRange struct {
	Type   string     `json:"type" yaml:"type"`
	Events []osvEvent `json:"events" yaml:"events"`
}

type osvEvent struct {
	Introduced   string `json:"introduced,omitempty" yaml:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty" yaml:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty" yaml:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty" yaml:"limit,omitempty"`
}

// feedIndex holds the advisories of one namespace by package name.
type feedIndex map[string][]advisory

// corpusFeeds reads the corpus feeds on demand, one namespace at a time:
// "alpine:v3.10", "ubuntu:bionic", "debian:bookworm", "npm", "PyPI", "Go",
// "crates.io", ... A namespace no corpus feed covers is empty.
type corpusFeeds struct {
	dir  string
	mu   sync.Mutex
	byNS map[string]feedIndex
	// records counts the records read per feed file (or secdb branch).
	records map[string]int
}

func newCorpusFeeds(dir string) *corpusFeeds {
	return &corpusFeeds{dir: dir, byNS: map[string]feedIndex{}, records: map[string]int{}}
}

// lookup returns the advisories about package name (spelled as the
// namespace's feeds key it) in namespace ns.
func (f *corpusFeeds) lookup(t *testing.T, ns, name string) []advisory {
	t.Helper()
	return f.index(t, ns)[feedName(ns, name)]
}

// index returns the advisories of namespace ns, reading its feeds the
// first time.
func (f *corpusFeeds) index(t *testing.T, ns string) feedIndex {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	idx, ok := f.byNS[ns]
	if !ok {
		var err error
		if idx, err = f.load(ns); err != nil {
			t.Fatalf("reading the %s feed: %v", ns, err)
		}
		f.byNS[ns] = idx
	}
	return idx
}

// feedName spells a package name the way a namespace's feed keys it:
// PyPI names are compared normalized (PEP 503), others as they are.
func feedName(ns, name string) string {
	if ns == "PyPI" {
		return strings.ToLower(pep503.ReplaceAllString(name, "-"))
	}
	return name
}

var pep503 = regexp.MustCompile(`[-_.]+`)

func (f *corpusFeeds) load(ns string) (feedIndex, error) {
	distro, release, _ := strings.Cut(ns, ":")
	switch {
	case distro == "alpine" && release != "":
		return f.alpine(release)
	case distro == "ubuntu" && release != "":
		return f.ubuntu(release)
	case distro == "debian" && release != "":
		return f.debian(release)
	case ns == "npm":
		return f.nswg()
	case !strings.Contains(ns, ":"):
		return f.osv(ns)
	}
	return feedIndex{}, nil
}

// idPattern is what an advisory ID looks like: CVE-2019-1547, XSA-214,
// DSA-5380-1, GHSA-xxxx-xxxx-xxxx.
var idPattern = regexp.MustCompile(`^[A-Z][A-Za-z]*-[0-9A-Za-z][0-9A-Za-z.-]*$`)

// alpine reads feeds/alpine-secdb/<release>/*.yaml.
func (f *corpusFeeds) alpine(release string) (feedIndex, error) {
	idx := feedIndex{}
	n := 0
	defer func() { f.records["alpine-secdb "+release] = n }()
	files, _ := filepath.Glob(filepath.Join(f.dir, "alpine-secdb", release, "*.yaml"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var db struct {
			Packages []struct {
				Pkg struct {
					Name     string              `yaml:"name"`
					Secfixes map[string][]string `yaml:"secfixes"`
				} `yaml:"pkg"`
			} `yaml:"packages"`
		}
		if err := yaml.Unmarshal(b, &db); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, p := range db.Packages {
			n++
			for fixed, entries := range p.Pkg.Secfixes {
				if fixed == "0" { // never affected
					continue
				}
				for _, e := range entries {
					var ids []string
					// "CVE_2019-2426" (v3.10 community, openjdk7) is a
					// typing error for CVE-2019-2426.
					e = strings.ReplaceAll(e, "CVE_", "CVE-")
					for _, w := range strings.Fields(e) {
						if idPattern.MatchString(w) {
							ids = append(ids, w)
						}
					}
					if len(ids) == 0 {
						continue
					}
					idx[p.Pkg.Name] = append(idx[p.Pkg.Name], advisory{kind: advDistro, source: "alpine-secdb " + release, ids: ids, fixed: fixed})
				}
			}
		}
	}
	return idx, nil
}

// ubuntu reads the UCT tarball's CVE files for one release.
func (f *corpusFeeds) ubuntu(release string) (feedIndex, error) {
	idx := feedIndex{}
	file, err := os.Open(filepath.Join(f.dir, "ubuntu-cve-tracker", "active-retired.tar.gz"))
	if err != nil {
		if os.IsNotExist(err) {
			return idx, nil
		}
		return nil, err
	}
	defer file.Close()
	zr, err := gzip.NewReader(file)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	n := 0
	defer func() { f.records["ubuntu-cve-tracker"] = n }()
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg || !strings.HasPrefix(path.Base(h.Name), "CVE-") {
			continue // 00boilerplate*, Makefile, ...
		}
		n++
		for pkg, a := range uctFile(tr, path.Base(h.Name), release) {
			idx[pkg] = append(idx[pkg], a)
		}
	}
	return idx, nil
}

// uctFile reads one UCT CVE file and returns its advisory for each source
// package of release that is affected in some way.
func uctFile(r io.Reader, name, release string) map[string]advisory {
	id := name
	priority := ""
	pkgPriority := map[string]string{}
	type line struct{ status, note string }
	lines := map[string]line{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == ' ' || l[0] == '\t' || l[0] == '#' {
			continue // continuation lines, comments
		}
		key, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch {
		case key == "Candidate":
			if value != "" {
				id = value
			}
		case key == "Priority":
			priority = value
		case strings.HasPrefix(key, "Priority_"):
			pkgPriority[strings.TrimPrefix(key, "Priority_")] = value
		case strings.HasPrefix(key, release+"_"):
			status, note, _ := strings.Cut(value, " ")
			note = strings.TrimSpace(note)
			note = strings.TrimSuffix(strings.TrimPrefix(note, "("), ")")
			lines[strings.TrimPrefix(key, release+"_")] = line{status, strings.TrimSpace(note)}
		}
	}
	out := map[string]advisory{}
	for pkg, l := range lines {
		a := advisory{kind: advDistro, source: "ubuntu-cve-tracker", ids: []string{id}}
		p := priority
		if pp, ok := pkgPriority[pkg]; ok {
			p = pp
		}
		a.severity = map[string]string{"negligible": "LOW", "low": "LOW", "medium": "MEDIUM", "high": "HIGH", "critical": "CRITICAL"}[p]
		switch l.status {
		case "released":
			if !startsWithDigit(l.note) {
				continue // no version: nothing to compare with
			}
			a.fixed = l.note
		case "pending":
			if startsWithDigit(l.note) {
				a.fixed, a.pending = l.note, true
			} else {
				a.status = "affected"
			}
		case "needed", "active":
			a.status = "affected"
		case "needs-triage":
			// Not evaluated by Ubuntu: Trivy leaves it out (its Ubuntu
			// source keeps needed, deferred and released), and so does a
			// scan unless asked.
			continue
		case "deferred":
			a.status = "fix_deferred"
		case "ignored":
			a.status = "will_not_fix"
			if endOfLife.MatchString(l.note) {
				// Not fixed because the release or the package reached
				// its end of life: either word is right.
				a.status = "will_not_fix|end_of_life"
			}
		default: // not-affected, DNE
			continue
		}
		out[pkg] = a
	}
	return out
}

var endOfLife = regexp.MustCompile(`(?i)end[- ]of[- ]life|out of standard support`)

func startsWithDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

// debian reads the DSA and DLA lists for one release (its code name).
func (f *corpusFeeds) debian(release string) (feedIndex, error) {
	idx := feedIndex{}
	for _, list := range []string{"DSA", "DLA"} {
		file, err := os.Open(filepath.Join(f.dir, "debian", list, "list"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		source := "debian-" + strings.ToLower(list)
		n := 0
		var cur []string // the current advisory's IDs
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "["): // [29 Mar 2023] DSA-5380-1 xorg-server - security update
				n++
				cur = nil
				if _, rest, ok := strings.Cut(l, "] "); ok {
					if w := strings.Fields(rest); len(w) > 0 {
						cur = []string{w[0]}
					}
				}
			case strings.HasPrefix(strings.TrimSpace(l), "{"): // {CVE-2023-1393 ...}
				cur = append(cur, strings.Fields(strings.Trim(strings.TrimSpace(l), "{}"))...)
			case strings.HasPrefix(strings.TrimSpace(l), "["+release+"] - "): // [bookworm] - pkg version
				w := strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), "["+release+"] - "))
				if len(w) < 2 || strings.HasPrefix(w[1], "<") || len(cur) == 0 {
					continue // <not-affected>, <end-of-life>, <unfixed>: no fixed version
				}
				// One advisory per CVE the DSA or DLA fixes; the
				// advisory's own ID is an alias of each.
				if len(cur) == 1 {
					idx[w[0]] = append(idx[w[0]], advisory{kind: advDistro, source: source, ids: cur, fixed: w[1]})
				}
				for _, cve := range cur[1:] {
					idx[w[0]] = append(idx[w[0]], advisory{kind: advDistro, source: source, ids: []string{cve, cur[0]}, fixed: w[1]})
				}
			}
		}
		file.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
		f.records[source] = n
	}
	return idx, nil
}

// nswg reads the Node.js Security WG advisories.
func (f *corpusFeeds) nswg() (feedIndex, error) {
	idx := feedIndex{}
	n := 0
	defer func() { f.records["nodejs-security-wg"] = n }()
	zips, _ := filepath.Glob(filepath.Join(f.dir, "npm", "*.zip"))
	for _, z := range zips {
		err := eachZipFile(z, func(name string, b []byte) error {
			if !strings.HasSuffix(name, ".json") || !strings.Contains(name, "vuln/npm/") {
				return nil
			}
			var r struct {
				ID         *int     `json:"id"`
				Module     string   `json:"module_name"`
				Vulnerable string   `json:"vulnerable_versions"`
				Patched    *string  `json:"patched_versions"`
				CVEs       []string `json:"cves"`
			}
			if json.Unmarshal(b, &r) != nil || r.ID == nil || r.Module == "" {
				return nil // vuln/npm/index.json lists the records; it is none
			}
			n++
			a := advisory{kind: advNPM, source: "nodejs-security-wg", ids: append([]string{fmt.Sprintf("NSWG-ECO-%d", *r.ID)}, r.CVEs...), vulnerable: r.Vulnerable}
			if r.Patched != nil {
				a.patched = *r.Patched
			}
			idx[r.Module] = append(idx[r.Module], a)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return idx, nil
}

// osvRecord is the part of an OSV record the test reads.
type osvRecord struct {
	ID        string   `json:"id" yaml:"id"`
	Aliases   []string `json:"aliases" yaml:"aliases"`
	Withdrawn string   `json:"withdrawn" yaml:"withdrawn"`
	Affected  []struct {
		Package struct {
			Ecosystem string `json:"ecosystem" yaml:"ecosystem"`
			Name      string `json:"name" yaml:"name"`
		} `json:"package" yaml:"package"`
		Ranges   []osvRange `json:"ranges" yaml:"ranges"`
		Versions []string   `json:"versions" yaml:"versions"`
	} `json:"affected" yaml:"affected"`
}

// osv reads feeds/osv/<ecosystem>.zip.
func (f *corpusFeeds) osv(ecosystem string) (feedIndex, error) {
	idx := feedIndex{}
	z := filepath.Join(f.dir, "osv", ecosystem+".zip")
	if _, err := os.Stat(z); os.IsNotExist(err) {
		return idx, nil
	}
	source := "osv:" + ecosystem
	n := 0
	defer func() { f.records[source] = n }()
	err := eachZipFile(z, func(name string, b []byte) error {
		var r osvRecord
		var err error
		switch path.Ext(name) {
		case ".json":
			err = json.Unmarshal(b, &r)
		case ".yaml", ".yml":
			err = yaml.Unmarshal(b, &r)
		default:
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		n++
		if r.Withdrawn != "" {
			return nil
		}
		byPkg := map[string]*advisory{}
		var order []string
		for _, af := range r.Affected {
			if af.Package.Ecosystem != ecosystem {
				continue
			}
			key := feedName(ecosystem, af.Package.Name)
			a := byPkg[key]
			if a == nil {
				a = &advisory{kind: advOSV, source: source, ids: append([]string{r.ID}, r.Aliases...), ecosystem: ecosystem}
				byPkg[key] = a
				order = append(order, key)
			}
			a.ranges = append(a.ranges, af.Ranges...)
			a.versions = append(a.versions, af.Versions...)
		}
		for _, k := range order {
			idx[k] = append(idx[k], *byPkg[k])
		}
		return nil
	})
	return idx, err
}

// eachZipFile calls fn with the name and content of every file in a zip.
func eachZipFile(file string, fn func(name string, b []byte) error) error {
	zr, err := zip.OpenReader(file)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", file, zf.Name, err)
		}
		if err := fn(zf.Name, b); err != nil {
			return err
		}
	}
	return nil
}

// TestCorpusFeedReaders checks the test's own feed readers against records
// read by hand from the corpus feeds and against the record counts of the
// corpus README, so that an image with nothing to find (Debian 12, Alpine
// 3.20) cannot owe it to a reader that reads nothing.
func TestCorpusFeedReaders(t *testing.T) {
	corpus := corpustest.Dir(t)
	if testing.Short() {
		t.Skip("reads every corpus feed; not in -short mode")
	}
	f := newCorpusFeeds(filepath.Join(corpus, "feeds"))
	describe := func(a advisory) string {
		return fmt.Sprintf("%s ids=%v fixed=%q pending=%v status=%q severity=%q vulnerable=%q patched=%q ranges=%v versions=%d",
			a.source, a.ids, a.fixed, a.pending, a.status, a.severity, a.vulnerable, a.patched, a.ranges, len(a.versions))
	}
	for _, tc := range []struct{ ns, name, id, want string }{
		{"alpine:v3.10", "openssl", "CVE-2019-1547",
			`alpine-secdb v3.10 ids=[CVE-2019-1547] fixed="1.1.1d-r0" pending=false status="" severity="" vulnerable="" patched="" ranges=[] versions=0`},
		{"alpine:v3.10", "xen", "XSA-182",
			`alpine-secdb v3.10 ids=[CVE-2016-6258 XSA-182] fixed="4.7.0-r0" pending=false status="" severity="" vulnerable="" patched="" ranges=[] versions=0`},
		{"ubuntu:bionic", "apt", "CVE-2019-3462",
			`ubuntu-cve-tracker ids=[CVE-2019-3462] fixed="1.6.6ubuntu0.1" pending=false status="" severity="HIGH" vulnerable="" patched="" ranges=[] versions=0`},
		{"debian:bullseye", "xorg-server", "CVE-2023-1393",
			`debian-dsa ids=[CVE-2023-1393 DSA-5380-1] fixed="2:1.20.11-1+deb11u6" pending=false status="" severity="" vulnerable="" patched="" ranges=[] versions=0`},
		{"npm", "lodash", "NSWG-ECO-368",
			`nodejs-security-wg ids=[NSWG-ECO-368 CVE-2018-3721] fixed="" pending=false status="" severity="" vulnerable="<4.17.5" patched=">=4.17.5" ranges=[] versions=0`},
		{"Go", "github.com/gin-gonic/gin", "GO-2023-1737",
			`osv:Go ids=[GO-2023-1737 CVE-2023-29401 GHSA-2c4m-59x9-fr2g] fixed="" pending=false status="" severity="" vulnerable="" patched="" ranges=[{SEMVER [{1.3.1-0.20190301021747-ccb9e902956d   } { 1.9.1  }]}] versions=0`},
		{"PyPI", "Requests", "PYSEC-2023-74",
			`osv:PyPI ids=[PYSEC-2023-74 CVE-2023-32681 GHSA-j8r2-6x86-q33q] fixed="" pending=false status="" severity="" vulnerable="" patched="" ranges=[{GIT [{0   } { 74ea7cf7a6a27a4eeb2ae24e162bcc942a6706d5  }]} {ECOSYSTEM [{2.3.0   } { 2.31.0  }]}] versions=66`},
		{"crates.io", "openssl", "RUSTSEC-2016-0001",
			`osv:crates.io ids=[RUSTSEC-2016-0001 CVE-2016-10931 GHSA-34p9-f4q3-c4r7] fixed="" pending=false status="" severity="" vulnerable="" patched="" ranges=[{SEMVER [{0.0.0-0   } { 0.9.0  }]}] versions=0`},
	} {
		got := "no advisory " + tc.id
		for _, a := range f.lookup(t, tc.ns, tc.name) {
			if slices.Contains(a.ids, tc.id) {
				got = describe(a)
			}
		}
		if got != tc.want {
			t.Errorf("%s %s %s:\ngot  %s\nwant %s", tc.ns, tc.name, tc.id, got, tc.want)
		}
	}
	// The DSA and DLA lists end before bookworm's release (corpus README).
	if idx := f.index(t, "debian:bookworm"); len(idx) != 0 {
		t.Errorf("the Debian lists name bookworm fixes for %d packages; the corpus README says none", len(idx))
	}
	// The secdb stops at v3.11.
	if idx := f.index(t, "alpine:v3.20"); len(idx) != 0 {
		t.Errorf("an Alpine v3.20 secdb was read; the corpus README says there is none")
	}
	if idx := f.index(t, "Maven"); len(idx) != 0 { // no Maven feed in the corpus
		t.Errorf("%d Maven packages have advisories", len(idx))
	}
	// Records read, as the corpus README counts them (PyPI.zip also holds
	// .id-allocator; the Node Security WG's vuln/npm/index.json is no
	// advisory).
	want := map[string]int{"alpine-secdb v3.10": 73 + 166, "alpine-secdb v3.20": 0, "ubuntu-cve-tracker": 6509 + 26422, "debian-dsa": 5406, "debian-dla": 3534,
		"nodejs-security-wg": 467, "osv:Go": 4291, "osv:PyPI": 2661, "osv:crates.io": 1206}
	if diff := cmp.Diff(want, f.records); diff != "" {
		t.Errorf("records read (-want +got):\n%s", diff)
	}
}
