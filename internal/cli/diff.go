package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newDiffCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "List the changes a container made to its image's file system",
		Long: `List the paths a container added (A), changed (C) or deleted (D), sorted, as
docker diff does. Each directory above a change is listed as changed; a deleted
directory is listed once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := e.openContainers()
			if err != nil {
				return err
			}
			c, err := cs.Get(args[0])
			if err != nil {
				return err
			}
			changes, err := c.Changes(cmd.Context())
			if err != nil {
				return err
			}
			for _, ch := range changes {
				fmt.Fprintln(e.stdout, ch)
			}
			return nil
		},
	}
}
