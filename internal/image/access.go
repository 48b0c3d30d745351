package image

import (
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/lading-dev/lading/internal/errdefs"
)

// RegistryAccess is what it takes to reach a registry repository the way
// Open and Write do: the repository (plain HTTP allowed when the options
// say insecure), the credentials and the HTTP transport. Code that talks to
// a repository itself (signatures, referrers) uses it so that flags and
// credentials mean the same everywhere.
type RegistryAccess struct {
	Repository name.Repository
	Keychain   authn.Keychain
	Transport  http.RoundTripper
}

// Access returns how to reach the repository of a registry reference.
func Access(ref Reference, opts ...Option) (RegistryAccess, error) {
	if ref.Transport != Registry && ref.Transport != Auto {
		return RegistryAccess{}, errdefs.InvalidArgument(errorf("%s is not in a registry", ref))
	}
	o := makeOptions(opts)
	r, err := o.parseRemote(ref.Name)
	if err != nil {
		return RegistryAccess{}, err
	}
	return RegistryAccess{Repository: r.Context(), Keychain: o.keychain, Transport: o.transport}, nil
}
