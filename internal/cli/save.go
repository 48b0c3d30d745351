package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
)

func newSaveCommand(e *env) *cobra.Command {
	var (
		f      imageFlags
		output string
		format string
	)
	cmd := &cobra.Command{
		Use:   "save IMAGE... -o FILE",
		Short: "Write one or more images into one archive",
		Long: `Write images into a docker-archive (the format of docker save and docker load;
the default) or an oci-archive (--format oci). IMAGE is a name in the local
store or any transport reference. Layers shared by several images are written
once. A docker-archive holds uncompressed layers, as docker save writes them,
and the same file is also an OCI image layout.`,
		Example: `  lading save -o images.tar alpine:3.20 debian:12
  lading save --format oci -o alpine.oci.tar alpine:3.20
  lading save alpine:3.20 > alpine.tar`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var t image.Transport
			switch format {
			case "docker", "docker-archive":
				t = image.DockerArchive
			case "oci", "oci-archive":
				t = image.OCIArchive
			default:
				return usageError{errdefs.InvalidArgument(fmt.Errorf("--format %q: want docker or oci", format))}
			}
			if output == "" {
				if isTerminal(e.stdout) {
					return usageError{errdefs.InvalidArgument(fmt.Errorf("refusing to write an archive to a terminal; use -o FILE or redirect"))}
				}
				output = "-"
			}
			if t == image.DockerArchive {
				f.allPlatforms = false // a docker-archive holds single images
			}
			ss, err := e.begin(&f, true)
			if err != nil {
				return err
			}
			defer ss.Close()
			var items []image.Item
			for _, a := range args {
				ref, err := e.parseSource(a)
				if err != nil {
					return err
				}
				s, art, err := ss.open(ctx, ref)
				if err != nil {
					return err
				}
				defer s.Close()
				it := image.Item{Artifact: art}
				it.Names = s.Names
				switch ref.Transport {
				case image.Auto, image.Registry, image.Local:
					if !image.IsID(ref.Name) {
						it.Names = []string{ref.Name}
					}
				}
				items = append(items, it)
			}
			return image.Save(ctx, image.Reference{Transport: t, Path: output}, items, ss.opts...)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "archive file to write (default: standard output)")
	cmd.Flags().StringVar(&format, "format", "docker", "archive format: docker or oci")
	f.register(cmd.Flags(), "all-platforms", "compress")
	return cmd
}
