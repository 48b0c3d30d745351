package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/container"
	"github.com/lading-dev/lading/internal/errdefs"
)

// psEntry is one row of `lading ps`.
type psEntry struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Image    string    `json:"image"`
	Command  string    `json:"command"`
	Created  time.Time `json:"created"`
	Status   string    `json:"status"`
	ExitCode int       `json:"exitCode"`
	Runtime  string    `json:"runtime"`
}

func newPsCommand(e *env) *cobra.Command {
	var (
		all, quiet, noTrunc bool
		format              string
	)
	cmd := &cobra.Command{
		Use:   "ps [-a]",
		Short: "List containers",
		Long: `List the running containers, or with -a all of them, newest first, as docker ps
does. A container is running while a lading process runs it; one whose process
was killed shows as exited with code -1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := e.openContainers()
			if err != nil {
				return err
			}
			list, err := cs.List()
			if err != nil {
				return err
			}
			var rows []psEntry
			for _, c := range list {
				st := c.State()
				if !all && st.Status != container.Running {
					continue
				}
				rows = append(rows, psEntry{ID: c.ID, Name: c.Name, Image: c.Image, Command: quoteCommand(c.Args),
					Created: c.Created, Status: psStatus(st), ExitCode: st.ExitCode, Runtime: c.Runtime})
			}
			switch format {
			case "json":
				if rows == nil {
					rows = []psEntry{}
				}
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			case "table", "":
			default:
				return usageError{errdefs.InvalidArgument(fmt.Errorf("--format %q: want table or json", format))}
			}
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(e.stdout, r.ID[:12])
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAMES")
			for _, r := range rows {
				id, command := r.ID[:12], r.Command
				if noTrunc {
					id = r.ID
				} else if len(command) > 20 {
					command = command[:19] + "…"
				}
				fmt.Fprintf(tw, "%s\t%s\t%q\t%s\t%s\t%s\n", id, r.Image, command, humanAgo(r.Created), r.Status, r.Name)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all containers, not only running ones")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print container IDs only")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not shorten IDs and commands")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

// psStatus is docker's status column: "Up 3 minutes", "Exited (0) 2 hours
// ago", "Created".
func psStatus(st container.State) string {
	switch st.Status {
	case container.Running:
		return "Up " + strings.TrimSuffix(humanAgo(st.Started), " ago")
	case container.Exited:
		if st.Finished.IsZero() {
			return fmt.Sprintf("Exited (%d)", st.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s", st.ExitCode, humanAgo(st.Finished))
	}
	return "Created"
}

// quoteCommand joins a command line, quoting arguments with spaces.
func quoteCommand(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
