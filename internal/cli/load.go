package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/image"
)

func newLoadCommand(e *env) *cobra.Command {
	var (
		f     imageFlags
		input string
	)
	cmd := &cobra.Command{
		Use:   "load [-i FILE]",
		Short: "Load images from an archive into the local store",
		Long: `Load every image of a docker-archive (docker save format, plain or gzipped) or
an oci-archive into the local store, under the names the archive gives them.
Reads standard input unless -i is given. Layers are stored as they are in the
archive and verified against the config's diffIDs.`,
		Example: `  lading load -i images.tar
  gunzip -c images.tar.gz | lading load`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ss, err := e.begin(&f, true)
			if err != nil {
				return err
			}
			defer ss.Close()
			srcs, err := image.OpenAll(ctx, image.Reference{Transport: image.DockerArchive, Path: input}, ss.opts...)
			if err != nil {
				return err
			}
			defer func() {
				for _, s := range srcs {
					s.Close()
				}
			}()
			var loaded []string
			for _, s := range srcs {
				names := s.Names
				if len(names) == 0 {
					names = []string{""}
				}
				for _, n := range names {
					if n != "" {
						if nn, err := image.NormalizeName(n); err == nil {
							n = nn
						}
					}
					desc, err := image.Write(ctx, image.Reference{Transport: image.Local, Name: n}, s.Artifact, ss.opts...)
					if err != nil {
						return err
					}
					if n == "" {
						id := desc.Digest.String()
						if s.Image != nil {
							if cn, err := s.Image.ConfigName(); err == nil {
								id = cn.String()
							}
						}
						loaded = append(loaded, "Loaded image ID: "+id)
					} else {
						loaded = append(loaded, "Loaded image: "+image.FamiliarName(n))
					}
				}
			}
			ss.p.Close()
			for _, l := range loaded {
				fmt.Fprintln(e.stdout, l)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "-", "archive to read (default: standard input)")
	f.register(cmd.Flags())
	return cmd
}
