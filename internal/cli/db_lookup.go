package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/match"
	"github.com/lading-dev/lading/internal/vulndb"
)

func newDBLookupCommand(e *env, f *dbFlags) *cobra.Command {
	var (
		srcName, srcVersion string
		asJSON              bool
	)
	cmd := &cobra.Command{
		Use:   "lookup NAMESPACE NAME [VERSION]",
		Short: "Show a package's advisories, or its vulnerabilities at a version",
		Long: `Show what the database says about one package. NAMESPACE is an ecosystem (npm,
PyPI, Go, Maven, crates.io, RubyGems, ...) or a distribution release
(alpine:3.20, debian:12, ubuntu:22.04, almalinux:9; alpine:3.20.3 and
debian:bookworm are understood). Without VERSION, every advisory for NAME is
listed as stored; with it, the package is matched as a scan would match it.
Debian, Ubuntu and Alpine feeds are keyed by source package: give the binary
package's source with --source-name (and, for Debian and Ubuntu, its version
with --source-version).`,
		Example: `  lading db lookup npm lodash 4.17.4
  lading db lookup alpine:3.10 libcrypto1.1 1.1.1c-r0 --source-name openssl
  lading db lookup ubuntu:18.04 openssl`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			db, err := vulndb.Open(f.file())
			if err != nil {
				return err
			}
			defer db.Close()
			pkg := match.Package{Name: args[1], SourceName: srcName, SourceVersion: srcVersion, Namespace: args[0]}
			if len(args) == 3 {
				pkg.Version = args[2]
				ms, err := match.New(db, e.log).Match(ctx, pkg)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(e, ms)
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "VULNERABILITY\tSTATUS\tINSTALLED\tFIXED\tSEVERITY\tSOURCE\tTITLE")
				for _, m := range ms {
					sev := m.Severity.Rating.String()
					if m.Severity.Source != "" {
						sev += " (" + m.Severity.Source + ")"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.VulnerabilityID, m.Status, m.InstalledVersion,
						dash(strings.Join(m.FixedVersions, ", ")), sev, m.SourceID+" "+m.DataSource, oneLine(m.Title, 60))
				}
				w.Flush()
				if len(ms) == 0 {
					fmt.Fprintf(e.stdout, "no known vulnerabilities for %s %s in %s\n", pkg.Name, pkg.Version, pkg.Namespace)
				}
				return nil
			}
			ns, name, _ := match.Lookup(pkg)
			advs, err := db.Advisories(ctx, ns, name)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e, advs)
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VULNERABILITY\tSOURCE ID\tSOURCE\tSTATUS\tAFFECTED\tSEVERITY")
			for _, a := range advs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.VulnID, a.SourceID, a.Source, a.Status, affected(a), dash(a.Severity.Vector))
			}
			w.Flush()
			if len(advs) == 0 {
				fmt.Fprintf(e.stdout, "no advisories for %s in %s\n", name, ns)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&srcName, "source-name", "", "the source package (Debian, Ubuntu) or origin (Alpine)")
	fl.StringVar(&srcVersion, "source-version", "", "the source package's version (Debian, Ubuntu)")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max-3] + "..."
	}
	return s
}

// affected renders an advisory's ranges: "[0, 1.2.3)", "<=1.0.0", "all".
func affected(a vulndb.Advisory) string {
	var parts []string
	for _, r := range a.Ranges {
		if r.Kind == vulndb.RangeNPM {
			parts = append(parts, r.Expr)
			continue
		}
		var b strings.Builder
		for _, ev := range r.Events {
			switch ev.Kind {
			case vulndb.Introduced:
				fmt.Fprintf(&b, "[%s, ", ev.Version)
			case vulndb.Fixed:
				fmt.Fprintf(&b, "%s)", ev.Version)
			case vulndb.LastAffected:
				fmt.Fprintf(&b, "%s]", ev.Version)
			case vulndb.Limit:
				fmt.Fprintf(&b, " limit %s", ev.Version)
			}
		}
		s := b.String()
		if strings.HasSuffix(s, ", ") {
			s += "∞)"
		}
		parts = append(parts, s)
	}
	if len(a.Versions) > 0 {
		parts = append(parts, strings.Join(a.Versions, " "))
	}
	if len(parts) == 0 {
		if a.Status == vulndb.StatusNotAffected {
			return "none"
		}
		return "all"
	}
	return strings.Join(parts, " ")
}
