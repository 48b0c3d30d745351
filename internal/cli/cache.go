package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/cache"
	"github.com/lading-dev/lading/internal/progress"
)

func newCacheCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Show or empty the layer analysis cache",
		Long: `lading inventory and lading sbom keep each layer's analysis results under the
lading root (cache/layers), keyed by the digest of the layer blob as it was
read and verified (never by the config's diffIDs, which are only checked
against it) and the versions of the analyzers, and remove the least recently
used results beyond 1 GiB. dir: root filesystems are never cached.
"cache info" shows what the cache holds, "cache clean" empties it.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "info",
			Short: "Show how many layers the cache holds and its size",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := cache.Open(e.cacheDir())
				if err != nil {
					return err
				}
				st, err := c.Stat(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s: %d layers, %d entries, %s\n", c.Dir(), st.Layers, st.Entries, progress.HumanSize(st.Size))
				return nil
			},
		},
		&cobra.Command{
			Use:   "clean",
			Short: "Remove every cached layer result",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := cache.Open(e.cacheDir())
				if err != nil {
					return err
				}
				st, err := c.Clean(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "Removed the results of %d layers (%s)\n", st.Layers, progress.HumanSize(st.Size))
				return nil
			},
		},
	)
	return cmd
}
