package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newRmCommand(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [-f] CONTAINER...",
		Short: "Remove containers",
		Long: `Remove containers (by name, ID or unique ID prefix) with their changes, as docker
rm does. A running container is refused unless -f, which stops the lading
process running it first. A mount a killed lading run left behind is detached.
Images are removed with lading rmi.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cs, err := e.openContainers()
			if err != nil {
				return err
			}
			var errs []error
			for _, a := range args {
				c, err := cs.Get(a)
				if err == nil {
					err = cs.Remove(ctx, c, force)
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(e.stdout, a)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "stop a running container and remove it")
	return cmd
}
