package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/image"
)

func newPullCommand(e *env) *cobra.Command {
	var f imageFlags
	cmd := &cobra.Command{
		Use:   "pull SOURCE [NAME]",
		Short: "Copy an image into the local store",
		Long: `Copy an image into the local store from a registry or any other transport
(oci:DIR, oci-archive:FILE, docker-archive:FILE, dir:PATH, docker-daemon:REF).

The image is stored under NAME, or else under the name it has at its source: the
registry reference, or the name an archive or layout gives it. Blobs the store
already has are not transferred again. Only the image for --platform (default:
this machine's) is pulled from a multi-platform index unless --all-platforms.`,
		Example: `  lading pull alpine:3.20
  lading pull --platform linux/arm64 docker.io/library/alpine:3.20
  lading pull oci-archive:alpine.oci.tar:latest myalpine:latest`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, err := e.parseSource(args[0])
			if err != nil {
				return err
			}
			if src.Transport == image.Auto {
				src.Transport = image.Registry
			}
			name := ""
			if len(args) == 2 {
				dst, err := localName(args[1])
				if err != nil {
					return err
				}
				name = dst.Name
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
			if name == "" {
				switch {
				case src.Transport == image.Registry || src.Transport == image.Daemon:
					name = src.Name
				case len(s.Names) > 0:
					if n, err := image.NormalizeName(s.Names[0]); err == nil {
						name = n
					}
				}
			}
			desc, err := image.Write(ctx, image.Reference{Transport: image.Local, Name: name}, art, ss.opts...)
			if err != nil {
				return err
			}
			ss.p.Close()
			if name == "" {
				name = "(untagged)"
			}
			fmt.Fprintf(e.stdout, "%s: %s\n", image.FamiliarName(name), desc.Digest)
			return nil
		},
	}
	f.register(cmd.Flags(), "all-platforms")
	return cmd
}
