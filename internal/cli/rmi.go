package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/store"
)

func newRmiCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove images from the local store",
		Long: `Remove names from the local store. An image ID removes every name of that
image. Blobs no remaining image uses are then deleted, unless another lading
process has the store open; then ` + "`lading prune`" + ` deletes them later.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := e.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			for _, a := range args {
				ref, err := localName(a)
				if err != nil {
					return err
				}
				names := []string{ref.Name}
				if image.IsID(ref.Name) {
					if names, err = namesOfID(ctx, st, ref.Name); err != nil {
						return err
					}
				}
				for _, n := range names {
					if _, err := st.RemoveRef(ctx, n); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "Untagged: %s\n", image.FamiliarName(n))
				}
			}
			// Free space now if no other process holds the store.
			gctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			rep, err := st.Prune(gctx, false)
			if err != nil {
				e.log.Info("blobs not deleted now", "reason", err)
				fmt.Fprintln(e.stderr, "another lading process has the store open; run `lading prune` to delete unused blobs")
				return nil
			}
			for _, h := range rep.Blobs {
				fmt.Fprintf(e.stdout, "Deleted: %s\n", h)
			}
			return nil
		},
	}
}

// namesOfID returns every name in the store of the image with that ID (or
// manifest digest prefix).
func namesOfID(ctx context.Context, st *store.Store, id string) ([]string, error) {
	s, err := image.Open(ctx, image.Reference{Transport: image.Local, Name: id}, image.WithStore(st))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	d, err := s.Descriptor()
	if err != nil {
		return nil, err
	}
	idx, err := st.Index(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range idx.Manifests {
		if m.Digest == d.Digest {
			names = append(names, m.Annotations[store.RefNameAnnotation])
		}
	}
	return names, nil
}
