package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/lading-dev/lading/internal/errdefs"
)

// UserAgent is what lading calls itself to registries.
const UserAgent = "lading"

func (o *options) nameOptions() []name.Option {
	opts := []name.Option{name.WithDefaultTag("latest")}
	if o.insecure {
		opts = append(opts, name.Insecure)
	}
	return opts
}

func (o *options) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.keychain),
		remote.WithTransport(o.transport),
		remote.WithUserAgent(UserAgent),
		remote.WithJobs(o.jobs),
	}
}

// parseRemote parses a normalized name for go-containerregistry.
func (o *options) parseRemote(n string) (name.Reference, error) {
	r, err := name.ParseReference(n, o.nameOptions()...)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("image reference %q: %w", n, err))
	}
	return r, nil
}

func openRegistry(ctx context.Context, ref Reference, o *options) (*Source, error) {
	r, err := o.parseRemote(ref.Name)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(r, o.remoteOptions(ctx)...)
	if err != nil {
		return nil, registryError(ref.Name, err)
	}
	src := &Source{Ref: Reference{Transport: Registry, Name: ref.Name, Insecure: o.insecure}}
	if isIndexType(desc.MediaType) {
		src.Index, err = desc.ImageIndex()
	} else {
		src.Image, err = desc.Image()
	}
	if err != nil {
		return nil, registryError(ref.Name, err)
	}
	return src, nil
}

// registryError gives a registry failure its error class.
func registryError(ref string, err error) error {
	err = fmt.Errorf("%s: %w", ref, err)
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized:
			return errdefs.Unauthorized(err)
		case http.StatusForbidden:
			return errdefs.Denied(err)
		case http.StatusNotFound:
			return errdefs.NotFound(err)
		case http.StatusBadRequest:
			return errdefs.InvalidArgument(err)
		case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway:
			return errdefs.Unavailable(err)
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return errdefs.NotFound(err)
			case transport.UnauthorizedErrorCode:
				return errdefs.Unauthorized(err)
			case transport.DeniedErrorCode:
				return errdefs.Denied(err)
			}
		}
	}
	return err
}

// writeRegistry pushes art to a registry. Layers are compressed per
// o.compression (auto: uncompressed ones gzipped).
func writeRegistry(ctx context.Context, dst Reference, art Artifact, o *options) (v1.Descriptor, error) {
	r, err := o.parseRemote(dst.Name)
	if err != nil {
		return v1.Descriptor{}, err
	}
	c := o.compression
	if c == CompressAuto {
		c = compressUncompressed
	}
	art, cleanup, err := recompress(ctx, art, c, o)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer cleanup()

	updates := make(chan v1.Update, 16)
	task := o.progress.Task(FamiliarName(dst.Name), "push", -1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var last int64
		for u := range updates {
			if u.Complete > last {
				task.Add(u.Complete - last)
				last = u.Complete
			}
		}
	}()
	opts := append(o.remoteOptions(ctx), remote.WithProgress(updates))
	if art.Image != nil {
		err = remote.Write(r, art.Image, opts...)
	} else {
		err = remote.WriteIndex(r, art.Index, opts...)
	}
	<-done
	task.Done(err)
	if err != nil {
		return v1.Descriptor{}, registryError(dst.Name, err)
	}
	return art.Descriptor()
}
