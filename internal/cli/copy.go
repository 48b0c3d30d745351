package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/image"
)

func newCopyCommand(e *env) *cobra.Command {
	var f imageFlags
	cmd := &cobra.Command{
		Use:   "copy SOURCE DESTINATION",
		Short: "Copy an image between any two transports",
		Long: `Copy an image between any two places. Each of SOURCE and DESTINATION is
[docker://]NAME (a registry), local:NAME (the local store), oci:DIR[:REF],
oci-archive:FILE[:REF], docker-archive:FILE[:NAME|@N], docker-daemon:NAME, or
(as a source only) dir:PATH. A bare NAME is a registry; as a source, the local
store is used first when it has the name.

Digests are preserved unless layers must change: registries get uncompressed
layers gzipped (--compress sets this), and a docker-archive always holds
uncompressed layers. A multi-platform index is copied whole with
--all-platforms, else the image for --platform.`,
		Example: `  lading copy alpine:3.20 oci:./alpine:3.20
  lading copy --all-platforms docker.io/library/alpine:3.20 localhost:5000/alpine:3.20
  lading copy docker-archive:app.tar oci-archive:app.oci.tar:latest`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, err := e.parseSource(args[0])
			if err != nil {
				return err
			}
			dst, err := parseDestination(args[1])
			if err != nil {
				return err
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
			fmt.Fprintf(e.stdout, "%s\n", desc.Digest)
			return nil
		},
	}
	f.register(cmd.Flags(), "all-platforms", "compress")
	return cmd
}
