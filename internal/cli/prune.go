package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/progress"
	"github.com/lading-dev/lading/internal/store"
)

func newPruneCommand(e *env) *cobra.Command {
	var (
		dryRun bool
		wait   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete blobs no image in the local store uses",
		Long: `Delete every blob of the local store that no image reaches, and the leftovers
of interrupted writes. The images containers were made from are kept. Prune needs the store to itself: it waits up to --wait
for other lading processes to finish, then gives up without deleting anything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := e.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			rep, err := st.Prune(ctx, dryRun, store.KeepAlso(e.containerImages))
			if err != nil {
				return err
			}
			verb := "Deleted"
			if dryRun {
				verb = "Would delete"
			}
			for _, h := range rep.Blobs {
				fmt.Fprintf(e.stdout, "%s: %s\n", verb, h)
			}
			fmt.Fprintf(e.stdout, "%s %d blobs (%s) and %d temp files\n", verb, len(rep.Blobs), progress.HumanSize(rep.Bytes), rep.TempFiles)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only report what would be deleted")
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for other lading processes")
	return cmd
}
