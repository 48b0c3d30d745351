package cli

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/store"
	"github.com/lading-dev/lading/internal/trust"
)

func newSignCommand(e *env) *cobra.Command {
	var (
		f           imageFlags
		key         string
		annotations []string
		format      string
		envelope    string
		certFile    string
	)
	cmd := &cobra.Command{
		Use:   "sign IMAGE --key KEY",
		Short: "Sign an image (cosign or Notation format)",
		Long: `Sign the manifest (or index) IMAGE names, in a registry, an OCI layout (oci:DIR)
or the local store (local:NAME), and store the signature next to it.

Formats (--format):
  cosign-bundle  a Sigstore bundle stored as an OCI 1.1 referrer (cosign v3's default)
  cosign         cosign's legacy layout: tag sha256-<digest>.sig, simple-signing payload
  notation       a Notary Project signature referrer, JWS or COSE (--envelope)

KEY is a PEM private key: cosign's encrypted key (password in COSIGN_PASSWORD),
or PKCS#8 / EC / RSA. Notation also needs the signing certificate chain
(--cert, leaf first). -a k=v annotations are signed with the digest and can be
required by lading verify -a, cosign verify -a and notation verify -m.`,
		Example: `  COSIGN_PASSWORD=... lading sign --key cosign.key registry.example/app:1.0
  lading sign --format cosign --key key.pem -a env=prod oci:./layout:app
  lading sign --format notation --envelope cose --key leaf.key --cert chain.pem registry.example/app:1.0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if key == "" {
				return usageError{errorf("--key is required")}
			}
			fm, err := trust.ParseFormat(format)
			if err != nil {
				return usageError{err}
			}
			ann, err := parseAnnotations(annotations)
			if err != nil {
				return err
			}
			o := trust.SignOptions{Format: fm, Annotations: ann}
			if o.Envelope, err = envelopeType(envelope); err != nil {
				return err
			}
			if o.Key, err = readPrivateKey(key); err != nil {
				return err
			}
			if certFile != "" {
				if o.Chain, err = readCertificates(certFile); err != nil {
					return err
				}
			}
			ref, err := parseRef(args[0])
			if err != nil {
				return err
			}
			ss, err := e.begin(&f, false)
			if err != nil {
				return err
			}
			defer ss.Close()
			t, err := openTrustTarget(ctx, ss, ref)
			if err != nil {
				return err
			}
			defer t.Close()
			d, err := trust.Sign(ctx, t.store, t.store, t.subject, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Signed %s@%s: %s signature %s\n", t.display, t.subject.Descriptor.Digest, fm, d.Digest)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP and unverified TLS for registries")
	fl.StringVar(&key, "key", "", "private key file (PEM; cosign's encrypted format reads COSIGN_PASSWORD)")
	fl.StringArrayVarP(&annotations, "annotation", "a", nil, "annotation k=v to sign with the digest (repeatable)")
	fl.StringVar(&format, "format", string(trust.CosignBundle), "signature format: cosign-bundle, cosign or notation")
	fl.StringVar(&envelope, "envelope", "jws", "Notation envelope: jws or cose")
	fl.StringVar(&certFile, "cert", "", "certificate chain (PEM, leaf first): required for notation; with cosign-bundle, signs with the certificate instead of a key hint")
	return cmd
}

// trustTarget is an opened image as trust sees it: the subject, and where
// its signatures are read and written.
type trustTarget struct {
	subject trust.Subject
	store   interface {
		trust.Source
		trust.Sink
	}
	display string
	closers []func()
}

func (t *trustTarget) Close() {
	for _, c := range t.closers {
		c()
	}
}

// openTrustTarget resolves ref through the image core and returns the
// manifest it names with its signature store: the registry repository, the
// OCI layout, or the local store.
func openTrustTarget(ctx context.Context, ss *session, ref image.Reference) (*trustTarget, error) {
	src, err := image.Open(ctx, ref, ss.opts...)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	desc, err := src.Artifact.Descriptor()
	if err != nil {
		return nil, err
	}
	t := &trustTarget{subject: trust.Subject{Descriptor: desc}, display: ref.String()}
	switch src.Ref.Transport {
	case image.Registry:
		acc, err := image.Access(src.Ref, ss.opts...)
		if err != nil {
			return nil, err
		}
		t.subject.Name = acc.Repository.Name()
		t.display = acc.Repository.Name()
		t.store = trust.NewRemote(acc.Repository, acc.Keychain, acc.Transport)
	case image.Local:
		repo := localRepository(src)
		if repo == "" {
			return nil, errdefs.InvalidArgument(fmt.Errorf("%s: sign and verify need an image with a name in the local store, not an ID", ref))
		}
		t.subject.Name = repo
		t.display = "local:" + image.FamiliarName(repo)
		t.store = trust.NewLayout(ss.st, repo+":")
	case image.OCI:
		st, err := store.Open(ref.Path, store.AsLayout())
		if err != nil {
			return nil, err
		}
		t.closers = append(t.closers, func() { st.Close() })
		t.subject.Name = layoutScope(src, ref.Path)
		t.store = trust.NewLayout(st, "")
	default:
		return nil, errdefs.Unsupported(fmt.Errorf("%s: signatures live in a registry, an OCI layout (oci:) or the local store (local:), not in %s", ref, src.Ref.Transport))
	}
	return t, nil
}

// localRepository is the repository of a local store image.
func localRepository(src *image.Source) string {
	for _, n := range append([]string{src.Ref.Name}, src.Names...) {
		if n == "" || image.IsID(n) {
			continue
		}
		if repo, _ := image.SplitName(n); repo != "" {
			return repo
		}
	}
	return ""
}

var notScope = regexp.MustCompile(`[^a-z0-9._-]+`)

// layoutScope names an image in an OCI layout as Notation does: its
// repository when the layout records one, else local/<directory name>.
func layoutScope(src *image.Source, path string) string {
	for _, n := range src.Names {
		if repo, _ := image.SplitName(n); repo != "" {
			return repo
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	base := strings.Trim(notScope.ReplaceAllString(strings.ToLower(filepath.Base(abs)), "-"), "-._")
	if base == "" {
		base = "layout"
	}
	return "local/" + base
}

// parseAnnotations parses -a k=v flags.
func parseAnnotations(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{errorf("annotation %q: want key=value", kv)}
		}
		m[k] = v
	}
	return m, nil
}

func envelopeType(s string) (string, error) {
	switch strings.ToLower(s) {
	case "jws", "", trust.NotationJWS:
		return trust.NotationJWS, nil
	case "cose", trust.NotationCOSE:
		return trust.NotationCOSE, nil
	}
	return "", usageError{errorf("--envelope %q: want jws or cose", s)}
}

// readPrivateKey reads a PEM private key; cosign's encrypted keys are
// opened with $COSIGN_PASSWORD.
func readPrivateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("--key: %w", err))
	}
	return trust.ParsePrivateKey(b, func() ([]byte, error) {
		p, ok := os.LookupEnv("COSIGN_PASSWORD")
		if !ok {
			return nil, errdefs.InvalidArgument(errors.New("--key is encrypted: set COSIGN_PASSWORD"))
		}
		return []byte(p), nil
	})
}

// readCertificates reads a PEM certificate chain.
func readCertificates(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("--cert: %w", err))
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEMLimited(b, 16)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("--cert %s: %w", path, err))
	}
	if len(certs) == 0 {
		return nil, errdefs.InvalidArgument(fmt.Errorf("--cert %s: no certificates", path))
	}
	return certs, nil
}
