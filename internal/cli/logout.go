package cli

import (
	"errors"
	"fmt"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/spf13/cobra"
)

func newLogoutCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Forget the credentials saved for a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := name.DefaultRegistry
			if len(args) == 1 {
				server = args[0]
			}
			_, key, err := registryKey(server, false)
			if err != nil {
				return err
			}
			cf, err := dockerconfig.Load(dockerconfig.Dir())
			if err != nil {
				return err
			}
			if _, ok := cf.AuthConfigs[key]; !ok && cf.CredentialsStore == "" && cf.CredentialHelpers[key] == "" {
				fmt.Fprintf(e.stdout, "Not logged in to %s\n", key)
				return nil
			}
			if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
				return fmt.Errorf("remove credentials: %w", err)
			}
			if err := cf.Save(); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Removing login credentials for %s\n", key)
			return nil
		},
	}
}

func asTransportError(err error, te **transport.Error) bool { return errors.As(err, te) }
