package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/progress"
	"github.com/lading-dev/lading/internal/vulndb"
	"github.com/lading-dev/lading/internal/vulndb/oci"
)

// dbFlags are the flags every db subcommand shares.
type dbFlags struct {
	path string
}

// file is the database file: --db, else $LADING_DB, else the default under
// the user's cache directory.
func (f *dbFlags) file() string {
	if f.path != "" {
		return f.path
	}
	if p := os.Getenv("LADING_DB"); p != "" {
		return p
	}
	return vulndb.DefaultPath()
}

func newDBCommand(e *env) *cobra.Command {
	f := &dbFlags{}
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Build, update, inspect and ship the vulnerability database",
		Long: `The vulnerability database is one file, by default
$XDG_CACHE_HOME/lading/db/vuln.db (~/.cache/lading/db/vuln.db), or --db, or
$LADING_DB. Scans read it; these commands make and move it:

  lading db update              download the public feeds and build it (or pull it,
                                when a repository is configured)
  lading db build --from FEEDS  build it from feeds on disk (air-gapped sites)
  lading db info                what it holds and where it comes from
  lading db push REF            ship it through a registry as an OCI artifact
  lading db pull REF            fetch it from a registry
  lading db lookup NS NAME [V]  the advisories of a package, or its findings at V`,
	}
	cmd.PersistentFlags().StringVar(&f.path, "db", "", "the database file (default $LADING_DB, else "+vulndb.DefaultPath()+")")
	cmd.AddCommand(
		newDBBuildCommand(e, f),
		newDBUpdateCommand(e, f),
		newDBInfoCommand(e, f),
		newDBPushCommand(e, f),
		newDBPullCommand(e, f),
		newDBLookupCommand(e, f),
	)
	return cmd
}

// builtBy names this lading in the databases it builds.
func builtBy() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return "lading " + v
}

// registryRef parses a database reference for push and pull.
func registryRef(s string, insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(s, opts...)
	if err != nil {
		return nil, usageError{errdefs.InvalidArgument(fmt.Errorf("%q: %v", s, err))}
	}
	return r, nil
}

// ociOptions are the registry options of push, pull and update.
func ociOptions(insecure bool) []oci.Option {
	opts := []oci.Option{oci.WithKeychain(authn.DefaultKeychain)}
	if insecure {
		opts = append(opts, oci.WithTransport(insecureTransport()))
	}
	return opts
}

// byteTask turns "done of total" callbacks into a progress task.
type byteTask struct {
	p      progress.Reporter
	id, op string
	t      progress.Task
	last   int64
}

func (b *byteTask) update(done, total int64) {
	if b.t == nil {
		b.t = b.p.Task(b.id, b.op, total)
	}
	if done > b.last {
		b.t.Add(done - b.last)
		b.last = done
	}
}

func (b *byteTask) done(err error) {
	if b.t != nil {
		b.t.Done(err)
	}
}

// summary is the line build, update and pull print.
func summary(path string, m vulndb.Metadata) string {
	return fmt.Sprintf("%s: %d vulnerabilities, %d advisories for %d packages in %d namespaces, from %d sources",
		path, m.Vulnerabilities, m.Advisories, m.Packages, len(m.Namespaces), len(m.Sources))
}

func newDBInfoCommand(e *env, f *dbFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show what the vulnerability database holds",
		Long: `Show the database's schema version, when and by what it was built, and per
data source the files read, the records and advisories kept and what was left
out and why; then the advisories per namespace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := f.file()
			db, err := vulndb.Open(path)
			if err != nil {
				return err
			}
			defer db.Close()
			m := db.Metadata()
			st, err := os.Stat(path)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Path string `json:"path"`
					Size int64  `json:"size"`
					vulndb.Metadata
				}{path, st.Size(), m})
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "Database:\t%s\n", path)
			fmt.Fprintf(w, "Schema:\t%d\n", m.Schema)
			fmt.Fprintf(w, "Built:\t%s by %s\n", m.BuiltAt.Format("2006-01-02 15:04:05 MST"), orUnknown(m.Builder))
			fmt.Fprintf(w, "Size:\t%s\n", progress.HumanSize(st.Size()))
			fmt.Fprintf(w, "Vulnerabilities:\t%d\n", m.Vulnerabilities)
			fmt.Fprintf(w, "Advisories:\t%d\n", m.Advisories)
			fmt.Fprintf(w, "Packages:\t%d\n", m.Packages)
			w.Flush()
			fmt.Fprintln(e.stdout, "\nSources:")
			w = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "  SOURCE\tFILES\tRECORDS\tADVISORIES\tLEFT OUT")
			for _, s := range m.Sources {
				fmt.Fprintf(w, "  %s\t%d\t%d\t%d\t%s\n", s.Name, s.Files, s.Records, s.Advisories, skipped(s.Skipped))
			}
			w.Flush()
			fmt.Fprintln(e.stdout, "\nNamespaces (advisories):")
			nss := make([]string, 0, len(m.Namespaces))
			for ns := range m.Namespaces {
				nss = append(nss, ns)
			}
			sort.Slice(nss, func(i, j int) bool { return nsLess(nss[i], nss[j]) })
			var line []string
			for _, ns := range nss {
				line = append(line, fmt.Sprintf("%s %d", ns, m.Namespaces[ns]))
				if len(line) == 6 {
					fmt.Fprintf(e.stdout, "  %s\n", strings.Join(line, ", "))
					line = nil
				}
			}
			if len(line) > 0 {
				fmt.Fprintf(e.stdout, "  %s\n", strings.Join(line, ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the metadata as JSON")
	return cmd
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// skipped renders "reason ×n" counts, largest first.
func skipped(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// nsLess orders namespaces: languages first, then distributions by name
// and release number.
func nsLess(a, b string) bool {
	da, db := vulndb.IsDistro(a), vulndb.IsDistro(b)
	if da != db {
		return db
	}
	an, ar, _ := strings.Cut(a, ":")
	bn, br, _ := strings.Cut(b, ":")
	if an != bn {
		return an < bn
	}
	pa, pb := strings.Split(ar, "."), strings.Split(br, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		var x, y int
		_, ex := fmt.Sscan(pa[i], &x)
		_, ey := fmt.Sscan(pb[i], &y)
		if ex == nil && ey == nil {
			return x < y
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}
