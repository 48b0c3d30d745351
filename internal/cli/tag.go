package cli

import (
	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/image"
)

func newTagCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "tag SOURCE TARGET",
		Short:   "Give an image in the local store another name",
		Long:    `Point the name TARGET at the image SOURCE (a name or an image ID) in the local store.`,
		Example: `  lading tag alpine:3.20 localhost:5000/alpine:3.20`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, err := localName(args[0])
			if err != nil {
				return err
			}
			dst, err := localName(args[1])
			if err != nil {
				return err
			}
			if image.IsID(dst.Name) {
				return usageError{errorf("%q looks like an image ID, not a name", args[1])}
			}
			st, err := e.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			src.Transport = image.Local
			s, err := image.Open(ctx, src, image.WithStore(st))
			if err != nil {
				return err
			}
			defer s.Close()
			desc, err := s.Descriptor()
			if err != nil {
				return err
			}
			if s.Image != nil {
				if cf, err := s.Image.ConfigFile(); err == nil && cf.OS != "" {
					desc.Platform = platformOf(cf)
				}
			}
			return st.SetRef(ctx, dst.Name, desc)
		},
	}
}
