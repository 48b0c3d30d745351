// Package internal_test keeps the arrows between lading's packages honest:
// each rule says which packages may not depend on which, directly or
// through other packages. It reads the import lines of every Go file, so a
// rule breaks as soon as code does; the rules between packages are about
// non-test files, and test files are read for the rule on test-support
// packages.
package internal_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/lading-dev/lading/"

// rules: a package (and those below it) must not import any of the listed
// packages (or those below them).
var rules = []struct {
	pkg    string
	forbid []string
	why    string
	// except are packages under pkg the rule does not cover.
	except []string
}{
	{"internal/errdefs", []string{"internal/"}, "error classes are the bottom of the graph", nil},
	{"internal/verify", []string{"internal/image", "internal/store", "internal/layer", "internal/cli"}, "digest checks know no formats", nil},
	{"internal/layer", []string{"internal/image", "internal/store", "internal/cli", "internal/registry", "internal/analyze", "internal/rootfs", "internal/sandbox", "internal/container"}, "the tar walker knows nothing of images or stores", nil},
	{"internal/store", []string{"internal/image", "internal/layer", "internal/cli", "internal/registry"}, "the store holds blobs and references only", nil},
	{"internal/tarfs", []string{"internal/image", "internal/store", "internal/cli"}, "an archive reader knows no image formats", nil},
	{"internal/image", []string{"internal/cli", "internal/registry", "internal/analyze", "internal/scan", "internal/match", "internal/vulndb", "internal/report"}, "transports do not scan or serve", nil},
	{"internal/registry", []string{"internal/cli", "internal/analyze", "internal/scan", "internal/match", "internal/vulndb", "internal/report"}, "the registry reaches the scanner only through an interface", nil},
	{"internal/analyze", []string{"internal/cli", "internal/report", "internal/registry"}, "analyzers produce inventories, nothing more", nil},
	{"internal/vulndb", []string{"internal/cli", "internal/analyze", "internal/report", "internal/registry"}, "the database knows no scanner", nil},
	{"internal/match", []string{"internal/cli", "internal/report", "internal/registry"}, "matching knows no output", nil},
	{"internal/report", []string{"internal/cli", "internal/registry"}, "reports are written by commands", nil},
	{"internal/build", []string{"internal/cli", "internal/registry", "internal/analyze", "internal/scan", "internal/match", "internal/vulndb", "internal/report"}, "the builder makes images; it neither scans nor serves them", nil},
	{"internal/sandbox", []string{"internal/image", "internal/store", "internal/layer", "internal/rootfs", "internal/container", "internal/cli", "internal/registry", "internal/analyze", "internal/scan", "internal/vulndb"}, "the sandbox runs processes; it knows no images, layers or stores", nil},
	{"internal/rootfs", []string{"internal/image", "internal/store", "internal/cli", "internal/registry", "internal/analyze", "internal/sandbox", "internal/container"}, "a root file system is layers and a directory", nil},
	{"internal/container", []string{"internal/cli", "internal/registry", "internal/analyze", "internal/scan", "internal/report"}, "containers are run by commands, not by the scanner or the registry", nil},
	// Harbor's layer: the registry is the OCI protocol, asking a Gate and
	// telling Events; registry/server (the wiring) composes it with the
	// services. Each service imports only those below it:
	// access < audit < config < identity < project < artifact < api < core.
	{"internal/registry", []string{"internal/access", "internal/identity", "internal/project", "internal/artifact", "internal/audit", "internal/config", "internal/core", "internal/api", "internal/token"}, "the registry asks its Gate and tells its Events; registry/server composes the services", []string{"internal/registry/server", "internal/registry/interop"}},
	{"internal/actor", []string{"internal/"}, "who acts is a leaf every layer may import", nil},
	{"internal/syslog", []string{"internal/"}, "a syslog writer knows nothing of lading", nil},
	{"internal/sqldb", []string{"internal/registry", "internal/access", "internal/identity", "internal/project", "internal/artifact", "internal/audit", "internal/config", "internal/core", "internal/api", "internal/token", "internal/cli"}, "the database layer knows no service", []string{"internal/sqldb/sqldbtest"}},
	{"internal/query", []string{"internal/registry", "internal/access", "internal/identity", "internal/project", "internal/artifact", "internal/audit", "internal/config", "internal/core", "internal/api", "internal/token"}, "the listing language knows no service", nil},
	{"internal/access", []string{"internal/registry", "internal/sqldb", "internal/identity", "internal/project", "internal/artifact", "internal/audit", "internal/config", "internal/core", "internal/api", "internal/token"}, "access answers from the role matrix and a Directory interface", nil},
	{"internal/audit", []string{"internal/registry", "internal/identity", "internal/project", "internal/artifact", "internal/config", "internal/core", "internal/api", "internal/token"}, "every service records in the audit log, which depends on none", nil},
	{"internal/config", []string{"internal/registry", "internal/identity", "internal/project", "internal/artifact", "internal/core", "internal/api", "internal/token"}, "settings depend on no service but access and audit", nil},
	{"internal/identity", []string{"internal/registry", "internal/project", "internal/artifact", "internal/core", "internal/api", "internal/token"}, "identities know projects only through an interface", nil},
	{"internal/project", []string{"internal/registry", "internal/artifact", "internal/core", "internal/api", "internal/token"}, "projects know their content only through an interface", nil},
	{"internal/artifact", []string{"internal/registry", "internal/core", "internal/api", "internal/token"}, "the artifact view changes content only through an interface", nil},
	{"internal/token", []string{"internal/registry", "internal/identity", "internal/project", "internal/artifact", "internal/core", "internal/api"}, "the token service asks an Authenticator and access", nil},
	{"internal/api", []string{"internal/registry", "internal/core", "internal/token", "internal/cli"}, "handlers translate HTTP to service calls; the registry and the token service are elsewhere", nil},
	{"internal/core", []string{"internal/registry", "internal/cli"}, "Harbor's layer does not know the registry; registry/server composes them", nil},
	{"internal/ui", []string{"internal/registry", "internal/api", "internal/core", "internal/token", "internal/cli", "internal/analyze", "internal/scan", "internal/match", "internal/vulndb", "internal/report", "internal/sbom"}, "the web UI calls the services, as the API does; what is inside images comes through inspect's Analyzer", nil},
	{"internal/inspect", []string{"internal/registry", "internal/api", "internal/core", "internal/ui", "internal/cli", "internal/analyze", "internal/scan", "internal/match", "internal/vulndb", "internal/report"}, "inspect reads the registry's content through an interface and asks an Analyzer what is inside", []string{"internal/inspect/compute"}},
	{"internal/inspect/compute", []string{"internal/registry", "internal/api", "internal/core", "internal/ui", "internal/cli"}, "the analyzer behind inspect knows images, not the server", nil},
	// External identities: each source stands alone; the test servers
	// know nothing of lading's clients, so what they answer is the truth.
	{"internal/identity/ldap", []string{"internal/identity/oidc"}, "an identity source knows no other source", nil},
	{"internal/identity/oidc", []string{"internal/identity/ldap"}, "an identity source knows no other source", nil},
	{"internal/ldaptest", []string{"internal/identity", "internal/registry", "internal/core", "internal/api", "internal/harbortest"}, "the test directory is filled with OpenLDAP's tools, not lading's client", nil},
	{"internal/oidctest", []string{"internal/identity", "internal/registry", "internal/core", "internal/api", "internal/harbortest"}, "the test provider is zitadel's, not lading's relying party", nil},
	{"internal/testca", []string{"internal/"}, "a test CA knows nothing of lading", nil},
	{"internal/trust", []string{"internal/cli", "internal/registry", "internal/image", "internal/store", "internal/analyze", "internal/scan"}, "signatures are verified over any Source: the registry feeds trust its own storage", nil},
	{"internal/outbound", []string{"internal/access", "internal/sqldb", "internal/registry", "internal/api", "internal/core", "internal/cli"}, "the outbound gate is a dialer and a policy, below every service", nil},
	{"internal/jobs", []string{"internal/task", "internal/webhook", "internal/api", "internal/core", "internal/registry", "internal/cli", "internal/scan"}, "the job service runs functions it is given; it knows no kind of job", nil},
	{"internal/task", []string{"internal/webhook", "internal/api", "internal/core", "internal/registry", "internal/cli"}, "executions and tasks know no vendor", nil},
	{"internal/scanning/adapter", []string{"internal/access", "internal/registry", "internal/core", "internal/api", "internal/cli", "internal/analyze", "internal/match", "internal/vulndb", "internal/jobs"}, "the Pluggable Scanner API's wire knows neither side of it", nil},
	{"internal/scanning/scanapi", []string{"internal/registry", "internal/core", "internal/api", "internal/cli", "internal/analyze", "internal/scan", "internal/match", "internal/vulndb", "internal/jobs"}, "what the API asks of scanning holds no scanner", nil},
	{"internal/scanning", []string{"internal/cli"}, "scanning is plugged into lading serve; the CLI plugs it in, not the other way", nil},
	{"internal/webhook", []string{"internal/api", "internal/core", "internal/registry", "internal/cli", "internal/scan"}, "webhooks are told of events; they do not reach into who raises them", nil},
	{"internal/secrets", []string{"internal/registry", "internal/access", "internal/identity", "internal/project", "internal/api", "internal/core", "internal/cli", "internal/replication", "internal/endpoint"}, "sealing secrets is below every service", nil},
	{"internal/endpoint", []string{"internal/sqldb", "internal/registry", "internal/access", "internal/project", "internal/api", "internal/core", "internal/cli", "internal/replication", "internal/proxycache", "internal/jobs"}, "a client of other registries knows no service and no database", nil},
	{"internal/replication", []string{"internal/registry", "internal/api", "internal/core", "internal/cli", "internal/proxycache", "internal/scan"}, "replication reaches lading's registry only through its Local interface; registry/server composes them", nil},
	{"internal/proxycache", []string{"internal/registry", "internal/api", "internal/core", "internal/cli", "internal/scan"}, "the registry does the caching; proxycache answers its Upstreams interface", nil},
	// The registry's lifecycle (immutable tags, labels, retention, GC,
	// purge): services under core, above artifact and the job service.
	{"internal/selector", []string{"internal/access", "internal/sqldb", "internal/registry", "internal/project", "internal/artifact", "internal/api", "internal/core", "internal/cli"}, "selectors match names; they know no service", nil},
	{"internal/immutable", []string{"internal/registry", "internal/artifact", "internal/retention", "internal/api", "internal/core", "internal/cli"}, "immutable rules are asked by the Gate, the artifact view and retention; they ask none of them", nil},
	{"internal/label", []string{"internal/registry", "internal/retention", "internal/api", "internal/core", "internal/cli"}, "labels mark the artifact view's artifacts; the registry knows nothing of them", nil},
	{"internal/retention", []string{"internal/registry", "internal/api", "internal/core", "internal/cli", "internal/scan"}, "retention deletes through the artifact view, never the registry directly", nil},
	{"internal/sysjob", []string{"internal/registry", "internal/api", "internal/core", "internal/cli", "internal/gc", "internal/purge"}, "system jobs run the functions their vendors give", nil},
	{"internal/gc", []string{"internal/registry", "internal/api", "internal/core", "internal/cli"}, "garbage collection reaches the registry's collector through an interface the wiring fills", nil},
	{"internal/purge", []string{"internal/registry", "internal/api", "internal/core", "internal/cli"}, "the audit log purge is a system job over the audit log", nil},
	{"internal/contenttrust", []string{"internal/registry", "internal/api", "internal/core", "internal/token", "internal/cli", "internal/image", "internal/store"}, "the signature policy reads the registry's content through its Content interface; trust verifies", nil},
}

// testSupport are the packages made for tests: they skip or fail tests,
// start servers, run real tools. They may be imported only by _test.go
// files and by one another, never by code that ships in cmd/lading; and they
// are the only non-test packages that may import "testing".
var testSupport = []string{
	"internal/testenv",
	"internal/corpustest",
	"internal/oracle",
	"internal/overlaytest",
	"internal/dockertest",
	"internal/registrytest",
	"internal/registry/meta/metatest",
	"internal/registry/meta/pgtest",
	"internal/registry/storage/s3test",
	"internal/registry/storage/storagetest",
	"internal/vulndb/feed/feedtest",
	"internal/treetest",
	"internal/harbortest",
	"internal/sqldb/sqldbtest",
	"internal/ldaptest",
	"internal/oidctest",
	"internal/syslog/syslogtest",
	"internal/testca",
}

// importLine is one import of one Go file.
type importLine struct {
	file, pkg, path string // path: the imported package, module-relative or standard
	test            bool   // the file is a _test.go file
}

// readImports returns the imports of every Go file below dir (a path
// relative to internal/), with package names relative to the module.
func readImports(t *testing.T, dir string) []importLine {
	t.Helper()
	var out []importLine
	fset := token.NewFileSet()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != dir {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		abs, err := filepath.Abs(filepath.Dir(p))
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, abs)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if rest, ok := strings.CutPrefix(path, module); ok {
				path = rest
			}
			out = append(out, importLine{file: p, pkg: filepath.ToSlash(rel), path: path, test: strings.HasSuffix(p, "_test.go")})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTestSupportStaysInTests: the test-support packages are imported only
// by test files and by one another, and only they import "testing" outside
// test files.
func TestTestSupportStaysInTests(t *testing.T) {
	isSupport := func(p string) bool { return slices.Contains(testSupport, p) }
	lines := append(readImports(t, "."), readImports(t, filepath.Join("..", "cmd"))...)
	for _, l := range lines {
		switch {
		case l.test:
		case isSupport(l.path) && !isSupport(l.pkg):
			t.Errorf("%s imports the test-support package %s: only _test.go files and other test-support packages may (it would ship in cmd/lading)", l.file, l.path)
		case l.path == "testing" && !isSupport(l.pkg):
			t.Errorf("%s imports \"testing\" outside a test file: move it to a _test.go file, or list its package in testSupport", l.file)
		}
	}
	for _, p := range testSupport {
		if _, err := os.Stat(filepath.Join("..", p)); err != nil {
			t.Errorf("testSupport lists %s: %v", p, err)
		}
	}
}

func TestDependencies(t *testing.T) {
	imports := map[string][]string{} // package dir -> module-internal imports
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := "internal/" + filepath.ToSlash(filepath.Dir(p))
		if filepath.Dir(p) == "." {
			dir = "internal"
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if rest, ok := strings.CutPrefix(path, module); ok {
				imports[dir] = append(imports[dir], rest)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 5 {
		t.Fatalf("read only %d packages; is the test running in internal/?", len(imports))
	}
	under := func(p, prefix string) bool {
		prefix = strings.TrimSuffix(prefix, "/")
		return p == prefix || strings.HasPrefix(p, prefix+"/")
	}
	// deps returns every module package pkg depends on, with the package
	// that imports it (for the message).
	deps := func(pkg string) map[string]string {
		via := map[string]string{}
		queue := []string{pkg}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			for _, imp := range imports[p] {
				if _, ok := via[imp]; !ok {
					via[imp] = p
					queue = append(queue, imp)
				}
			}
		}
		return via
	}
	for pkg, imps := range imports {
		for _, r := range rules {
			if !under(pkg, r.pkg) || slices.ContainsFunc(r.except, func(e string) bool { return under(pkg, e) }) {
				continue
			}
			for dep, importer := range deps(pkg) {
				for _, f := range r.forbid {
					if under(dep, f) && !under(dep, r.pkg) {
						t.Errorf("%s depends on %s (imported by %s): %s", pkg, dep, importer, r.why)
					}
				}
			}
		}
		for _, imp := range imps {
			if under(imp, "internal/cli") {
				t.Errorf("%s imports internal/cli: only cmd/lading may", pkg)
			}
		}
	}
	// cmd/lading is main only: it imports the CLI and nothing else of ours.
	main, err := parser.ParseFile(fset, filepath.Join("..", "cmd", "lading", "main.go"), nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range main.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if rest, ok := strings.CutPrefix(path, module); ok && rest != "internal/cli" {
			t.Errorf("cmd/lading imports %s; it should only run internal/cli", rest)
		}
	}
	if _, err := os.Stat(filepath.Join("..", "cmd", "lading", "main.go")); err != nil {
		t.Fatal(err)
	}
}
