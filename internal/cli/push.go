package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/image"
)

func newPushCommand(e *env) *cobra.Command {
	var f imageFlags
	cmd := &cobra.Command{
		Use:   "push NAME [DESTINATION]",
		Short: "Push an image from the local store to a registry",
		Long: `Push the image NAME from the local store to the registry it names, or to
DESTINATION (any transport; a bare name is a registry). Uncompressed layers are
gzipped on the way (see --compress); blobs the registry has are not sent.`,
		Example: `  lading push localhost:5000/alpine:3.20
  lading push alpine:3.20 localhost:5000/mirror/alpine:3.20`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, err := localName(args[0])
			if err != nil {
				return err
			}
			src.Transport = image.Local
			dst := image.Reference{Transport: image.Registry, Name: src.Name}
			if len(args) == 2 {
				if dst, err = parseDestination(args[1]); err != nil {
					return err
				}
			}
			if f.platform == "" {
				f.allPlatforms = true // push what the store holds, index and all
			}
			ss, err := e.begin(&f, true)
			if err != nil {
				return err
			}
			defer ss.Close()
			s, art, err := ss.open(ctx, src)
			if err != nil {
				return err
			}
			defer s.Close()
			desc, err := image.Write(ctx, dst, art, ss.opts...)
			if err != nil {
				return err
			}
			ss.p.Close()
			fmt.Fprintf(e.stdout, "%s: %s\n", image.FamiliarName(dst.Name), desc.Digest)
			return nil
		},
	}
	f.register(cmd.Flags(), "all-platforms", "compress")
	return cmd
}
