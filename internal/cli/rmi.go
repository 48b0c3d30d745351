package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/store"
)

func newRmiCommand(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove images from the local store",
		Long: `Remove names from the local store. An image ID removes every name of that
image. Blobs no remaining image uses are then deleted, unless another lading
process has the store open; then ` + "`lading prune`" + ` deletes them later.
The last name of an image a container was made from is kept unless --force;
with it the name goes, and the image stays for the container until it is
removed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := e.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			used, err := e.imagesInUse(ctx, st, args)
			if err != nil {
				return err
			}
			if len(used) > 0 && !force {
				return errdefs.Conflict(fmt.Errorf("%s (use --force to remove the name; the image stays for the container)", strings.Join(used, "; ")))
			}
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
			rep, err := st.Prune(gctx, false, store.KeepAlso(e.containerImages))
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
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove the names even of images containers were made from")
	return cmd
}

// imagesInUse says, for each argument that would take the last name off an
// image a container was made from, which container uses it.
func (e *env) imagesInUse(ctx context.Context, st *store.Store, args []string) ([]string, error) {
	list, err := e.containers()
	if err != nil || len(list) == 0 {
		return nil, err
	}
	idx, err := st.Index(ctx)
	if err != nil {
		return nil, err
	}
	left := map[string]map[string]bool{} // digest -> names that stay
	for _, m := range idx.Manifests {
		d := m.Digest.String()
		if left[d] == nil {
			left[d] = map[string]bool{}
		}
		left[d][m.Annotations[store.RefNameAnnotation]] = true
	}
	gone := map[string]string{} // digest -> the argument that removes a name of it
	for _, a := range args {
		ref, err := localName(a)
		if err != nil {
			return nil, err
		}
		names := []string{ref.Name}
		if image.IsID(ref.Name) {
			if names, err = namesOfID(ctx, st, ref.Name); err != nil {
				return nil, err
			}
		}
		for _, m := range idx.Manifests {
			if n := m.Annotations[store.RefNameAnnotation]; slices.Contains(names, n) {
				delete(left[m.Digest.String()], n)
				gone[m.Digest.String()] = a
			}
		}
	}
	var used []string
	for _, c := range list {
		d := c.Manifest.Digest.String()
		if a, ok := gone[d]; ok && len(left[d]) == 0 {
			used = append(used, fmt.Sprintf("unable to remove %s: container %s (%s) uses its image", a, c.ShortID(), c.Name))
			delete(gone, d)
		}
	}
	return used, nil
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
