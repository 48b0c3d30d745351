package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/contenttrust"
	"github.com/lading-dev/lading/internal/core"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/trust"
)

// The signature policy, as the registry meets it: a Gate check on pulls
// (package contenttrust decides), the registry's storage as the source of
// signatures, and the projects' trusted signers from the configuration
// file.

// signatures is the pull check of the projects' signature policies.
type signatures struct {
	registry.AllowAll
	gate *gate
}

// CheckPull refuses what the project's policy refuses, except to those who
// may push to the repository: they read manifests to sign them (decided by
// permission, never by the client's User-Agent).
func (p signatures) CheckPull(ctx context.Context, s registry.Subject, repo, dgst, _ string) error {
	err := p.gate.core.Trust.CheckPull(ctx, repo, dgst)
	if err == nil || !errors.Is(err, errdefs.ErrFailedPrecondition) {
		return err
	}
	if acts, aerr := p.gate.Allowed(ctx, s, repo, []string{"push"}); aerr == nil && len(acts) > 0 {
		return nil
	}
	if s.Anonymous() && !s.Token {
		// A client that came without credentials (notation and cosign
		// try anonymously first on a public project) is asked for them:
		// with a token it is served or refused for who it is.
		return errdefs.Unauthorized(fmt.Errorf("%s@%s: the signature policy of the project serves it only to those who may push: authenticate (%v)", repo, dgst, err))
	}
	p.gate.core.Trust.Refused(ctx, err)
	return err
}

// trustContent is contenttrust.Content over the registry's storage.
type trustContent struct {
	meta *meta.SQL
	reg  *registry.Registry
}

var _ contenttrust.Content = trustContent{}

func (c trustContent) Source(repo string) trust.Source { return repoSource{c: c, repo: repo} }

func (c trustContent) Manifest(ctx context.Context, repo, dgst string, max int64) (v1.Descriptor, []byte, error) {
	m, err := c.meta.Manifest(ctx, repo, dgst)
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	d, err := descriptor(m.MediaType, m.Digest, m.Size)
	if err != nil || m.Size > max {
		return d, nil, err
	}
	b, err := c.reg.ReadContent(ctx, repo, dgst, true, max)
	return d, b, err
}

func (c trustContent) Parents(ctx context.Context, repo, dgst string) ([]string, error) {
	return c.meta.Parents(ctx, repo, dgst)
}

func descriptor(mediaType, dgst string, size int64) (v1.Descriptor, error) {
	h, err := v1.NewHash(dgst)
	if err != nil {
		return v1.Descriptor{}, errdefs.Corrupt(fmt.Errorf("stored digest %q: %w", dgst, err))
	}
	return v1.Descriptor{MediaType: types.MediaType(mediaType), Digest: h, Size: size}, nil
}

// repoSource is a trust.Source over one repository of the registry.
type repoSource struct {
	c    trustContent
	repo string
}

func (s repoSource) Referrers(ctx context.Context, dgst v1.Hash) ([]v1.Descriptor, error) {
	list, err := s.c.meta.Referrers(ctx, s.repo, dgst.String(), "")
	if err != nil {
		return nil, err
	}
	out := make([]v1.Descriptor, 0, len(list))
	for _, r := range list {
		d, err := descriptor(r.MediaType, r.Digest, r.Size)
		if err != nil {
			return nil, err
		}
		d.ArtifactType, d.Annotations = r.ArtifactType, r.Annotations
		out = append(out, d)
	}
	return out, nil
}

func (s repoSource) Resolve(ctx context.Context, tag string) (v1.Descriptor, error) {
	if err := registry.CheckTag(tag); err != nil {
		return v1.Descriptor{}, errdefs.NotFound(err)
	}
	m, err := s.c.meta.Tag(ctx, s.repo, tag)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return descriptor(m.MediaType, m.Digest, m.Size)
}

func (s repoSource) Fetch(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	manifest := d.MediaType == "" || d.MediaType.IsImage() || d.MediaType.IsIndex()
	max := int64(trust.MaxBlobSize)
	if manifest {
		max = trust.MaxManifestSize
	}
	b, err := s.c.reg.ReadContent(ctx, s.repo, d.Digest.String(), manifest, max)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// trustChanged tells the signature policy, in the metadata store's
// transaction, of a change that can change a verdict in repo: a manifest
// with a subject (a signature, an SBOM), an index (it trusts its images),
// cosign's legacy signature tags.
func trustChanged(m meta.Manifest, tags []string) bool {
	if m.Subject != "" || len(m.Manifests) > 0 {
		return true
	}
	for _, t := range tags {
		if artifact.LegacySubject(t) != "" {
			return true
		}
	}
	return false
}

// TrustConfig names, by project, the signers a project trusts (the
// configuration file's trust: section); they win over the API's:
//
//	trust:
//	  projects:
//	    prod:
//	      cosign_keys: [/etc/lading/keys/release.pub]      # PEM public keys, named by file
//	      notation:
//	        trust_policy: /etc/lading/notation/trustpolicy.json
//	        trust_store: /etc/lading/notation/truststore  # x509/{ca,signingAuthority,tsa}/NAME/*.pem
type TrustConfig struct {
	Projects map[string]TrustProject `yaml:"projects"`
}

// TrustProject is one project's trusted signers, as files.
type TrustProject struct {
	CosignKeys []string `yaml:"cosign_keys"`
	Notation   struct {
		TrustPolicy string `yaml:"trust_policy"`
		TrustStore  string `yaml:"trust_store"`
	} `yaml:"notation"`
}

// setTrust gives the signature policy the trust: section's signers.
func setTrust(c *core.Core, tc TrustConfig) error {
	ps, err := trustPolicies(tc)
	if err != nil {
		return err
	}
	return c.Trust.SetFixed(ps)
}

// trustPolicies reads the files the trust: section names.
func trustPolicies(c TrustConfig) (map[string]contenttrust.Policy, error) {
	out := map[string]contenttrust.Policy{}
	for name, p := range c.Projects {
		var pol contenttrust.Policy
		for _, f := range p.CosignKeys {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("trust.projects.%s.cosign_keys: %w", name, err)
			}
			key := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
			pol.CosignKeys = append(pol.CosignKeys, contenttrust.CosignKey{Name: key, PublicKey: string(b)})
		}
		n := p.Notation
		if n.TrustPolicy != "" || n.TrustStore != "" {
			if n.TrustPolicy == "" || n.TrustStore == "" {
				return nil, fmt.Errorf("trust.projects.%s.notation: both trust_policy and trust_store are needed", name)
			}
			doc, err := os.ReadFile(n.TrustPolicy)
			if err != nil {
				return nil, fmt.Errorf("trust.projects.%s.notation.trust_policy: %w", name, err)
			}
			store, err := readTrustStore(n.TrustStore)
			if err != nil {
				return nil, fmt.Errorf("trust.projects.%s.notation.trust_store: %w", name, err)
			}
			pol.Notation = &contenttrust.NotationTrust{TrustPolicy: doc, TrustStore: store}
		}
		out[name] = pol
	}
	return out, nil
}

// readTrustStore reads a trust store in Notation's layout,
// DIR/x509/{ca,signingAuthority,tsa}/NAME/*.{pem,crt,cer} (DIR may also be
// Notation's configuration directory, holding truststore/), into PEM text
// by "type:name".
func readTrustStore(dir string) (map[string]string, error) {
	if _, err := os.Stat(filepath.Join(dir, "truststore", "x509")); err == nil {
		dir = filepath.Join(dir, "truststore")
	}
	root := filepath.Join(dir, "x509")
	out := map[string]string{}
	for _, typ := range []string{"ca", "signingAuthority", "tsa"} {
		stores, err := os.ReadDir(filepath.Join(root, typ))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, st := range stores {
			if !st.IsDir() {
				continue
			}
			files, err := os.ReadDir(filepath.Join(root, typ, st.Name()))
			if err != nil {
				return nil, err
			}
			var names []string
			for _, f := range files {
				if !f.IsDir() {
					names = append(names, f.Name())
				}
			}
			sort.Strings(names)
			var b strings.Builder
			for _, f := range names {
				pem, err := os.ReadFile(filepath.Join(root, typ, st.Name(), f))
				if err != nil {
					return nil, err
				}
				b.Write(pem)
				b.WriteString("\n")
			}
			out[typ+":"+st.Name()] = b.String()
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no certificates (want DIR/x509/{ca,signingAuthority,tsa}/NAME/*.pem)", dir)
	}
	return out, nil
}
