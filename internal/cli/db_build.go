package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/progress"
	"github.com/lading-dev/lading/internal/vulndb/feed"
)

func newDBBuildCommand(e *env, f *dbFlags) *cobra.Command {
	var (
		from    []string
		out     string
		format  string
		maxFile int64
	)
	cmd := &cobra.Command{
		Use:   "build --from PATH... [-o FILE]",
		Short: "Build the vulnerability database from feeds on disk",
		Long: `Build the vulnerability database from advisory feeds on disk, for sites without
access to the feeds' servers. Each --from is a file, a directory (read
recursively) or an archive (.zip, .tar, .tar.gz, .tgz); a single gzipped file
(.gz) is read too. The format of each file is recognized from its content:

  OSV JSON and YAML (osv.dev's per-ecosystem zips, golang/vulndb, PyPI, RustSec, ...)
  Alpine secdb, YAML and JSON (v3.20/main.json)
  Debian security tracker: the DSA and DLA lists, the JSON export
  Ubuntu CVE tracker files (active/, retired/)
  Node.js Security WG npm advisories (vuln/npm/*.json)

Malformed records are left out, counted per source and reason (see
lading db info) and logged as warnings naming the file. The database is
written to a temporary file and renamed over FILE (default: --db), so a
failed build leaves the previous database in place.`,
		Example: `  lading db build --from feeds/ -o vuln.db
  lading db build --from Go.zip --from PyPI.zip --from alpine-secdb/ --from debian/DSA/list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(from) == 0 {
				return usageError{errdefs.InvalidArgument(fmt.Errorf("--from: name at least one feed file, directory or archive"))}
			}
			if out == "" {
				out = f.file()
			}
			p := e.reporter()
			tasks := map[string]progress.Task{}
			opts := []feed.Option{
				feed.WithBuiltBy(builtBy()),
				feed.WithFormat(feed.Format(format)),
				feed.WithProgress(func(pr feed.Progress) {
					t, ok := tasks[pr.Input]
					if !ok {
						t = p.Task(filepath.Base(pr.Input), "read", -1)
						tasks[pr.Input] = t
					}
					if pr.Done {
						t.Done(nil)
					}
				}),
			}
			if maxFile > 0 {
				opts = append(opts, feed.WithMaxFileSize(maxFile))
			}
			w := p.Task(filepath.Base(out), "write", -1)
			meta, err := feed.Build(cmd.Context(), e.log, out, from, opts...)
			w.Done(err)
			p.Close()
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, summary(out, meta))
			return nil
		},
	}
	var formats []string
	for _, f := range feed.Formats() {
		formats = append(formats, string(f))
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&from, "from", nil, "a feed file, directory or archive (repeatable)")
	fl.StringVarP(&out, "output", "o", "", "the database file to write (default: --db)")
	fl.StringVar(&format, "format", "", "read every file as this format instead of recognizing it: "+strings.Join(formats, ", "))
	fl.Int64Var(&maxFile, "max-file-size", 0, "leave out feed files larger than this many bytes, in archives too (default 2 GiB)")
	return cmd
}
