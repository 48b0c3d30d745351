package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
)

func newLoginCommand(e *env) *cobra.Command {
	var (
		username, password string
		passwordStdin      bool
		insecure           bool
	)
	cmd := &cobra.Command{
		Use:   "login [SERVER]",
		Short: "Log in to a registry",
		Long: `Check the credentials against the registry (basic auth or the token flow it
asks for) and save them where docker keeps them: $DOCKER_CONFIG/config.json or
~/.docker/config.json, or the credential helper config.json names. SERVER
defaults to docker.io.`,
		Example: `  lading login -u alice localhost:5000
  echo "$TOKEN" | lading login -u bot --password-stdin registry.example.com`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			server := name.DefaultRegistry
			if len(args) == 1 {
				server = args[0]
			}
			reg, key, err := registryKey(server, insecure)
			if err != nil {
				return err
			}
			if passwordStdin {
				if password != "" {
					return usageError{errorf("--password and --password-stdin are exclusive")}
				}
				b, err := io.ReadAll(io.LimitReader(e.stdin, 1<<20))
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			if username == "" {
				return usageError{errorf("--username is required")}
			}
			if password == "" {
				fmt.Fprint(e.stderr, "Password: ")
				line, err := bufio.NewReader(e.stdin).ReadString('\n')
				if err != nil && line == "" {
					return usageError{errorf("no password given")}
				}
				password = strings.TrimRight(line, "\r\n")
			}
			auth := authn.FromConfig(authn.AuthConfig{Username: username, Password: password})
			if err := checkLogin(ctx, reg, auth, insecure); err != nil {
				return err
			}
			cf, err := dockerconfig.Load(dockerconfig.Dir())
			if err != nil {
				return err
			}
			if err := cf.GetCredentialsStore(key).Store(types.AuthConfig{Username: username, Password: password, ServerAddress: key}); err != nil {
				return fmt.Errorf("save credentials: %w", err)
			}
			if err := cf.Save(); err != nil {
				return fmt.Errorf("save %s: %w", cf.Filename, err)
			}
			fmt.Fprintln(e.stdout, "Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&username, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (prefer --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS")
	return cmd
}

// registryKey parses a server name and returns the key config.json files
// it under (docker.io's is its legacy index URL).
func registryKey(server string, insecure bool) (name.Registry, string, error) {
	server = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://"), "/")
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(server, opts...)
	if err != nil {
		return name.Registry{}, "", usageError{errdefs.InvalidArgument(fmt.Errorf("registry %q: %w", server, err))}
	}
	key := reg.RegistryStr()
	if key == name.DefaultRegistry {
		key = authn.DefaultAuthKey
	}
	return reg, key, nil
}

// checkLogin authenticates against the registry's /v2/ endpoint.
func checkLogin(ctx context.Context, reg name.Registry, auth authn.Authenticator, insecure bool) error {
	rt := http.DefaultTransport
	if insecure {
		rt = insecureTransport()
	}
	tr, err := transport.NewWithContext(ctx, reg, auth, rt, []string{reg.Scope("")})
	if err != nil {
		return loginError(reg, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", image.UserAgent)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return loginError(reg, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return errdefs.Unauthorized(fmt.Errorf("login to %s: %s", reg.RegistryStr(), resp.Status))
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("login to %s: GET /v2/: %s", reg.RegistryStr(), resp.Status)
	}
	return nil
}

func loginError(reg name.Registry, err error) error {
	var te *transport.Error
	if asTransportError(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return errdefs.Unauthorized(fmt.Errorf("login to %s: %w", reg.RegistryStr(), err))
	}
	return fmt.Errorf("login to %s: %w", reg.RegistryStr(), err)
}
