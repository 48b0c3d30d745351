package analyze

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/overlaytest"
	"github.com/lading-dev/lading/internal/pkg"
	"github.com/lading-dev/lading/internal/testenv"
)

// The accuracy tests compare lading's inventory of every corpus image with
// what the real tools report on the image's merged root filesystem, built
// by the kernel's overlayfs from the layers as GNU tar unpacks them:
//
//   - apk info -v, run in a chroot of the Alpine root (for an image of
//     another architecture, the apk of the same release's host-architecture
//     image, with --root);
//   - dpkg-query --admindir=… -W, the packages whose files are on disk (a
//     distroless status.d is given to dpkg-query as the status file dpkg
//     would have written: each control file with "Status: install ok
//     installed");
//   - rpm --root … -qa, with the sqlite backend or the read-only Berkeley DB
//     backend (bdb_ro), gpg-pubkey entries left out;
//   - npm ls --all --json in each application directory;
//   - go version -m over the whole tree, and go mod edit -json for go.mod;
//   - Python's importlib.metadata over each site-packages or dist-packages
//     directory;
//   - the pom.properties files of every jar, war and ear, read with unzip.
//
// Same names, same versions, nothing extra, nothing missing. A tool that is
// not installed skips its part with a message; the whole test needs root.

// corpusGroups maps each corpus OCI archive to the other archives of the
// same image (docker-archive, docker save).
func corpusGroups(t testing.TB) map[string][]string {
	dir := filepath.Join(corpustest.Dir(t), "images")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	stem := func(n string) string {
		for _, s := range []string{".oci.tar", ".docker.tar.gz", ".docker-save.tar.gz", ".docker.tar"} {
			if r, ok := strings.CutSuffix(n, s); ok {
				return r
			}
		}
		return ""
	}
	groups := map[string][]string{}
	oci := map[string]string{}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".oci.tar") {
			oci[stem(e.Name())] = e.Name()
			groups[e.Name()] = nil
		}
	}
	for _, e := range ents {
		if s := stem(e.Name()); s != "" && !strings.HasSuffix(e.Name(), ".oci.tar") && oci[s] != "" {
			groups[oci[s]] = append(groups[oci[s]], e.Name())
		}
	}
	return groups
}

func TestCorpusAccuracy(t *testing.T) {
	overlaytest.Require(t)
	groups := corpusGroups(t)
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var hostRoot string // a root of this image that runs here, for apk
			imgs := openCorpus(t, name)
			// The image of this machine's architecture first: its root
			// runs apk for the others.
			foreign := func(img imageOf) int {
				if archOf(t, img) == runtime.GOARCH {
					return 0
				}
				return 1
			}
			slices.SortStableFunc(imgs, func(a, b imageOf) int { return foreign(a) - foreign(b) })
			for _, img := range imgs {
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				arch := cf.Architecture
				inv, err := Image(context.Background(), img)
				if err != nil {
					t.Fatal(err)
				}
				if len(inv.Warnings) > 0 {
					t.Errorf("%s: warnings: %v", arch, inv.Warnings)
				}
				fs, err := Image(context.Background(), img, WithMode(ModeFS))
				if err != nil {
					t.Fatal(err)
				}
				root := mergedRoot(t, img)
				if arch == runtime.GOARCH {
					hostRoot = root
				}
				c := &checker{t: t, root: root, inv: inv, fs: fs, hostRoot: hostRoot, native: arch == runtime.GOARCH}
				t.Run(arch, c.run)
			}
			// The other archives of the image give the same inventory.
			want, err := Image(context.Background(), openCorpus(t, name)[0])
			if err != nil {
				t.Fatal(err)
			}
			for _, other := range groups[name] {
				got, err := Image(context.Background(), openCorpus(t, other)[0])
				if err != nil {
					t.Fatal(err)
				}
				ignore := cmpopts.IgnoreFields(LayerInfo{}, "Digest", "Cached")
				if diff := cmp.Diff(want, got, ignore); diff != "" {
					t.Errorf("%s differs from %s (-oci +other):\n%s", other, name, diff)
				}
			}
		})
	}
}

// archOf returns the architecture in img's config.
func archOf(t *testing.T, img imageOf) string {
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.Architecture
}

// mergedRoot mounts the image's layers with overlayfs, writable (tools
// write lock files), and returns the merged directory.
func mergedRoot(t *testing.T, img imageOf) string {
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	st := overlaytest.New(t)
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		err = st.Add(rc, true)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	root, _ := st.Mount(true)
	return root
}

type checker struct {
	t        *testing.T
	root     string
	hostRoot string
	native   bool
	inv      *Inventory // image mode
	fs       *Inventory // filesystem mode: declarations too
}

func (c *checker) run(t *testing.T) {
	t.Run("os", c.os)
	t.Run("apk", c.apk)
	t.Run("dpkg", c.dpkg)
	t.Run("rpm", c.rpm)
	t.Run("npm", c.npm)
	t.Run("go", c.golang)
	t.Run("python", c.python)
	t.Run("java", c.java)
}

// exists reports whether p is in the root, symlinks resolved within it as
// a chroot would (openat2 with RESOLVE_IN_ROOT).
func (c *checker) exists(p string) bool {
	f, err := overlaytest.OpenInRoot(c.root, p)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// tool runs a command and returns its standard output; it skips t when
// the command is not installed.
func tool(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	return toolExit(t, dir, nil, name, args...)
}

// toolExit is tool for a command whose exit codes in ok are not failures.
func toolExit(t *testing.T, dir string, ok []int, name string, args ...string) string {
	t.Helper()
	testenv.Tool(t, name, "")
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && slices.Contains(ok, ee.ExitCode())) {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// targets returns the packages of the inventory's targets of a type, as
// "name version" lines, and the targets' paths.
func (c *checker) targets(typ string, line func(p pkg.Package) string) (map[string][]string, []string) {
	return targetsOf(c.inv, typ, line)
}

func targetsOf(inv *Inventory, typ string, line func(p pkg.Package) string) (map[string][]string, []string) {
	byPath := map[string][]string{}
	var all []string
	for _, tg := range inv.Targets {
		if tg.Type != typ {
			continue
		}
		for _, p := range tg.Packages {
			byPath[tg.Path] = append(byPath[tg.Path], line(p))
			all = append(all, line(p))
		}
	}
	slices.Sort(all)
	for _, v := range byPath {
		slices.Sort(v)
	}
	return byPath, all
}

func nameVersion(p pkg.Package) string { return p.Name + " " + p.Version }

func sortedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

func (c *checker) compare(t *testing.T, tool string, want, got []string) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("lading differs from %s (-%s +lading):\n%s", tool, tool, diff)
	} else {
		t.Logf("%d packages, the same as %s", len(got), tool)
	}
}

func (c *checker) os(t *testing.T) {
	rel := "etc/os-release"
	if !c.exists(rel) {
		rel = "usr/lib/os-release"
	}
	if !c.exists(rel) {
		if c.inv.OS != nil && !c.inv.OS.Distroless {
			t.Errorf("no os-release, but lading says %+v", c.inv.OS)
		}
		t.Log("no os-release, and lading finds none")
		return
	}
	out := tool(t, c.root, "sh", "-c", `. "$1" && echo "$ID" && echo "$VERSION_ID"`, "sh", filepath.Join(c.root, rel))
	f := strings.Split(strings.TrimSpace(out), "\n")
	if c.inv.OS == nil || c.inv.OS.ID != f[0] || len(f) > 1 && !strings.HasPrefix(c.inv.OS.VersionID, f[1]) {
		t.Errorf("os-release says %q, lading %+v", f, c.inv.OS)
	}
}

func (c *checker) apk(t *testing.T) {
	if !c.exists("lib/apk/db/installed") {
		if _, got := c.targets("apk", nameVersion); len(got) > 0 {
			t.Errorf("no apk database, but lading lists %v", got)
		}
		t.Log("no apk database, and lading finds none")
		return
	}
	var out string
	if c.native {
		out = tool(t, c.root, "chroot", c.root, "/sbin/apk", "info", "-v")
	} else {
		if c.hostRoot == "" {
			t.Fatal("no Alpine root of this machine's architecture to run apk from (the native image is checked first)")
		}
		mnt := filepath.Join(c.hostRoot, "mnt", "lading-target")
		if err := os.MkdirAll(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount(c.root, mnt, "", unix.MS_BIND, ""); err != nil {
			t.Fatalf("bind mount: %v", err)
		}
		defer unix.Unmount(mnt, unix.MNT_DETACH)
		out = tool(t, c.hostRoot, "chroot", c.hostRoot, "/sbin/apk", "--root", "/mnt/lading-target", "info", "-v")
	}
	// "name-version-rN": the version is the last two dash-separated parts.
	var want []string
	for _, l := range sortedLines(out) {
		parts := strings.Split(l, "-")
		if len(parts) < 3 {
			t.Fatalf("apk info line %q", l)
		}
		n := len(parts)
		want = append(want, strings.Join(parts[:n-2], "-")+" "+parts[n-2]+"-"+parts[n-1])
	}
	slices.Sort(want)
	_, got := c.targets("apk", nameVersion)
	c.compare(t, "apk info -v", want, got)
}

func (c *checker) dpkg(t *testing.T) {
	admin := filepath.Join(c.root, "var/lib/dpkg")
	line := func(p pkg.Package) string {
		return strings.Join([]string{p.Name, p.Version, p.Arch, p.Source.Name, p.Source.Version}, " ")
	}
	switch {
	case c.exists("var/lib/dpkg/status"):
	case c.exists("var/lib/dpkg/status.d"):
		// Give dpkg-query the status file dpkg would have written.
		admin = t.TempDir()
		files, _ := filepath.Glob(filepath.Join(c.root, "var/lib/dpkg/status.d/*"))
		var status strings.Builder
		for _, f := range files {
			if strings.HasSuffix(f, ".md5sums") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.SplitAfter(string(b), "\n") {
				status.WriteString(l)
				if strings.HasPrefix(l, "Package:") {
					status.WriteString("Status: install ok installed\n")
				}
			}
			status.WriteString("\n")
		}
		os.WriteFile(filepath.Join(admin, "status"), []byte(status.String()), 0o644)
		os.MkdirAll(filepath.Join(admin, "info"), 0o755)
		os.WriteFile(filepath.Join(admin, "available"), nil, 0o644)
	default:
		if _, got := c.targets("dpkg", nameVersion); len(got) > 0 {
			t.Errorf("no dpkg database, but lading lists %v", got)
		}
		t.Log("no dpkg database, and lading finds none")
		return
	}
	out := tool(t, c.root, "dpkg-query", "--admindir="+admin, "-W",
		"-f=${db:Status-Status} ${Package} ${Version} ${Architecture} ${source:Package} ${source:Version}\n")
	var want []string
	for _, l := range sortedLines(out) {
		status, rest, _ := strings.Cut(l, " ")
		switch status {
		case "not-installed", "config-files":
			continue // no files on disk
		}
		want = append(want, rest)
	}
	slices.Sort(want)
	_, got := c.targets("dpkg", line)
	c.compare(t, "dpkg-query -W", want, got)
}

func (c *checker) rpm(t *testing.T) {
	line := func(p pkg.Package) string {
		src := "(none)"
		if p.Source != nil {
			// rpm prints the source RPM's file name, which has no epoch.
			v := p.Source.Version
			if _, after, ok := strings.Cut(v, ":"); ok {
				v = after
			}
			src = p.Source.Name + "-" + v + ".src.rpm"
		}
		return strings.Join([]string{p.Name, p.Version, p.Arch, src}, " ")
	}
	args := []string{"--root", c.root, "--dbpath", "/var/lib/rpm"}
	switch {
	case c.exists("var/lib/rpm/rpmdb.sqlite"):
	case c.exists("var/lib/rpm/Packages"):
		args = append(args, "--define", "_db_backend bdb_ro")
	default:
		if _, got := c.targets("rpm", nameVersion); len(got) > 0 {
			t.Errorf("no rpm database, but lading lists %v", got)
		}
		t.Log("no rpm database, and lading finds none")
		return
	}
	out := tool(t, c.root, "rpm", append(args, "-qa", "--qf", "%{NAME} %{EVR} %{ARCH} %{SOURCERPM}\n")...)
	var want []string
	for _, l := range sortedLines(out) {
		if !strings.HasPrefix(l, "gpg-pubkey ") {
			want = append(want, l)
		}
	}
	_, got := c.targets("rpm", line)
	c.compare(t, "rpm -qa", want, got)
}

// appDirs returns the directories of the tree (relative) that hold a
// package-lock.json or a node_modules directory, not inside node_modules.
func (c *checker) appDirs(t *testing.T) []string {
	seen := map[string]bool{}
	filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(c.root, p)
		if d.IsDir() && d.Name() == "node_modules" {
			if !strings.Contains(rel, "node_modules/") {
				seen[filepath.Dir(rel)] = true
			}
			return fs.SkipDir
		}
		if d.Name() == "package-lock.json" {
			seen[filepath.Dir(rel)] = true
		}
		return nil
	})
	var out []string
	for d := range seen {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

func (c *checker) npm(t *testing.T) {
	byPath, _ := c.targets("node_modules", nameVersion)
	if locks, _ := c.targets("npm", nameVersion); len(locks) > 0 {
		t.Errorf("an image scan lists lockfiles: %v", locks)
	}
	locks, _ := targetsOf(c.fs, "npm", nameVersion)
	dirs := c.appDirs(t)
	if len(dirs) == 0 {
		if len(byPath)+len(locks) > 0 {
			t.Errorf("no node application, but lading lists %v %v", byPath, locks)
		}
		t.Log("no node application, and lading finds none")
		return
	}
	for _, d := range dirs {
		out := tool(t, filepath.Join(c.root, d), "npm", "ls", "--all", "--json")
		var tree struct {
			Dependencies map[string]json.RawMessage `json:"dependencies"`
		}
		if err := json.Unmarshal([]byte(out), &tree); err != nil {
			t.Fatal(err)
		}
		set := map[string]bool{}
		var walk func(deps map[string]json.RawMessage)
		walk = func(deps map[string]json.RawMessage) {
			for name, raw := range deps {
				var n struct {
					Version      string                     `json:"version"`
					Dependencies map[string]json.RawMessage `json:"dependencies"`
				}
				json.Unmarshal(raw, &n)
				set[name+" "+n.Version] = true
				walk(n.Dependencies)
			}
		}
		walk(tree.Dependencies)
		var want []string
		for k := range set {
			want = append(want, k)
		}
		slices.Sort(want)
		// npm ls shows each name@version once, however many copies.
		installed := slices.Compact(slices.Clone(byPath["/"+filepath.Join(d, "node_modules")]))
		c.compare(t, "npm ls --all (node_modules of /"+d+")", want, installed)
		c.compare(t, "npm ls --all (package-lock.json of /"+d+")", want, locks["/"+filepath.Join(d, "package-lock.json")])
	}
}

func (c *checker) golang(t *testing.T) {
	bins, _ := c.targets("gobinary", nameVersion)
	out := tool(t, c.root, "go", "version", "-m", c.root)
	want := map[string][]string{}
	var cur string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "\t")
		switch {
		case len(f) == 1 && strings.Contains(l, ": go"):
			file, v, _ := strings.Cut(l, ": go")
			cur = "/" + strings.TrimPrefix(strings.TrimPrefix(file, c.root), "/")
			v, _, _ = strings.Cut(v, " ")
			want[cur] = append(want[cur], "stdlib v"+v)
		case len(f) >= 4 && f[1] == "dep":
			want[cur] = append(want[cur], f[2]+" "+f[3])
		case len(f) >= 4 && f[1] == "=>":
			// A replacement: the last dep is replaced.
			deps := want[cur]
			if len(f[3]) > 0 && f[3] != "(devel)" {
				deps[len(deps)-1] = f[2] + " " + f[3]
			} else {
				deps = deps[:len(deps)-1]
			}
			want[cur] = deps
		case len(f) >= 4 && f[1] == "mod" && f[3] != "(devel)" && f[3] != "":
			want[cur] = append(want[cur], f[2]+" "+f[3])
		}
	}
	for _, v := range want {
		slices.Sort(v)
	}
	if len(want)+len(bins) == 0 {
		t.Log("no Go binaries, as go version -m says")
	} else {
		c.compare(t, "go version -m", flatten(want), flatten(bins))
	}

	if mods, _ := c.targets("gomod", nameVersion); len(mods) > 0 {
		t.Errorf("an image scan lists go.mod files: %v", mods)
	}
	mods, _ := targetsOf(c.fs, "gomod", nameVersion)
	for path, got := range mods {
		out := tool(t, c.root, "go", "mod", "edit", "-json", filepath.Join(c.root, path))
		var mf struct {
			Require []struct{ Path, Version string }
			Replace []struct {
				Old, New struct{ Path, Version string }
			}
		}
		if err := json.Unmarshal([]byte(out), &mf); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, r := range mf.Require {
			want = append(want, r.Path+" "+r.Version)
		}
		slices.Sort(want)
		c.compare(t, "go mod edit -json "+path, want, got)
	}
}

// flatten lists "target: line" for comparing groups.
func flatten(m map[string][]string) []string {
	var out []string
	for k, v := range m {
		for _, l := range v {
			out = append(out, k+": "+l)
		}
	}
	slices.Sort(out)
	return out
}

func (c *checker) python(t *testing.T) {
	byPath, _ := c.targets("python-packages", nameVersion)
	var dirs []string
	filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && (d.Name() == "site-packages" || d.Name() == "dist-packages") {
			rel, _ := filepath.Rel(c.root, p)
			dirs = append(dirs, rel)
			return fs.SkipDir
		}
		return nil
	})
	if len(dirs) == 0 {
		if len(byPath) > 0 {
			t.Errorf("no site-packages, but lading lists %v", byPath)
		}
		t.Log("no site-packages or dist-packages directory, and lading finds none")
		return
	}
	want := map[string][]string{}
	got := map[string][]string{}
	for _, d := range dirs {
		out := tool(t, c.root, "python3", "-c", `import importlib.metadata as m, sys
for d in m.distributions(path=[sys.argv[1]]):
    print(d.metadata["Name"], d.version)`, filepath.Join(c.root, d))
		if l := sortedLines(out); len(l) > 0 {
			want["/"+d] = l
		}
		if l := byPath["/"+d]; len(l) > 0 {
			got["/"+d] = l
		}
	}
	c.compare(t, "importlib.metadata", flatten(want), flatten(got))
}

func (c *checker) java(t *testing.T) {
	byPath, _ := c.targets("jar", nameVersion)
	want := map[string][]string{}
	filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".jar", ".war", ".ear":
		default:
			return nil
		}
		rel, _ := filepath.Rel(c.root, p)
		out := toolExit(t, c.root, []int{11}, "unzip", "-p", p, "META-INF/maven/*/*/pom.properties") // 11: no such entry
		props := map[string]string{}
		var lines []string
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), "=")
			if !ok {
				continue
			}
			props[k] = v
			if g, a, ver := props["groupId"], props["artifactId"], props["version"]; g != "" && a != "" && ver != "" {
				lines = append(lines, g+":"+a+" "+ver)
				clear(props)
			}
		}
		if len(lines) > 0 {
			slices.Sort(lines)
			want["/"+rel] = lines
		}
		return nil
	})
	if len(want)+len(byPath) == 0 {
		t.Log("no Java archives, and lading finds none")
		return
	}
	c.compare(t, "the jars' pom.properties", flatten(want), flatten(byPath))
}
