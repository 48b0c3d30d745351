package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/trust"
)

// verifyFlags are the trust flags of lading verify.
type verifyFlags struct {
	keys          []string
	trustedRoot   string
	identity      string
	identityRegex string
	issuer        string
	issuerRegex   string
	trustPolicy   string
	trustStore    string
	annotations   []string
	output        string
}

func newVerifyCommand(e *env) *cobra.Command {
	var (
		f  imageFlags
		vf verifyFlags
	)
	cmd := &cobra.Command{
		Use:   "verify IMAGE",
		Short: "Verify an image's signatures (cosign and Notation formats)",
		Long: `Verify the signatures of the manifest (or index) IMAGE names, in a registry, an
OCI layout (oci:DIR) or the local store (local:NAME), and print who signed what:
the key ID or certificate subject, the time, the signed annotations.

Trust, any combination:
  --key PUB                       cosign public keys (legacy tag layout and bundles)
  --trusted-root FILE             offline keyless: a Sigstore trusted_root.json, with
    --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]
  --trust-policy FILE             Notation: trustpolicy.json (or trustpolicy.oci.json)
    --trust-store DIR             and truststore/x509/{ca,signingAuthority}/NAME/*.pem

-a k=v requires an annotation in what was signed. lading verify exits 0 when at
least one trusted signature covers the digest, else 1, naming the reason each
signature was refused.`,
		Example: `  lading verify --key cosign.pub registry.example/app:1.0
  lading verify --trusted-root trusted_root.json --certificate-identity dev@example.com \
      --certificate-oidc-issuer https://accounts.example.com oci:./layout:app
  lading verify --trust-policy trustpolicy.json --trust-store ~/.config/notation/truststore \
      --output json registry.example/app:1.0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if vf.output != "text" && vf.output != "json" {
				return usageError{errorf("--output %q: want text or json", vf.output)}
			}
			p, err := vf.policy()
			if err != nil {
				return err
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
			res, err := trust.Verify(ctx, t.store, t.subject, p)
			if err != nil {
				return err
			}
			if vf.output == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else if len(res.Verified) > 0 {
				printVerified(e.stdout, t.display, res)
			}
			if err := res.Err(); err != nil {
				return &exitCodeError{code: exitError, err: fmt.Errorf("%s: %w", t.display, err)}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP and unverified TLS for registries")
	fl.StringArrayVar(&vf.keys, "key", nil, "cosign public key file (PEM; repeatable)")
	fl.StringVar(&vf.trustedRoot, "trusted-root", "", "Sigstore trusted_root.json for offline keyless verification")
	fl.StringVar(&vf.identity, "certificate-identity", "", "keyless: the signer's identity (certificate SAN: email or URI)")
	fl.StringVar(&vf.identityRegex, "certificate-identity-regexp", "", "keyless: a regular expression the signer's identity must match")
	fl.StringVar(&vf.issuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer of the identity")
	fl.StringVar(&vf.issuerRegex, "certificate-oidc-issuer-regexp", "", "keyless: a regular expression the OIDC issuer must match")
	fl.StringVar(&vf.trustPolicy, "trust-policy", "", "Notation trust policy file (trustpolicy.json)")
	fl.StringVar(&vf.trustStore, "trust-store", "", "Notation trust store directory (truststore/, or Notation's config directory)")
	fl.StringArrayVarP(&vf.annotations, "annotation", "a", nil, "annotation k=v the signature must carry (repeatable)")
	fl.StringVarP(&vf.output, "output", "o", "text", "output: text or json")
	return cmd
}

// policy builds the trust policy the flags describe.
func (vf *verifyFlags) policy() (*trust.Policy, error) {
	p := &trust.Policy{}
	var err error
	if p.Annotations, err = parseAnnotations(vf.annotations); err != nil {
		return nil, err
	}
	for _, k := range vf.keys {
		b, err := os.ReadFile(k)
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("--key: %w", err))
		}
		key, err := trust.ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("--key %s: %w", k, err)
		}
		p.Keys = append(p.Keys, key)
	}
	keyless := vf.identity != "" || vf.identityRegex != "" || vf.issuer != "" || vf.issuerRegex != ""
	switch {
	case vf.trustedRoot != "":
		b, err := os.ReadFile(vf.trustedRoot)
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("--trusted-root: %w", err))
		}
		id := trust.Identity{Subject: vf.identity, SubjectRegexp: vf.identityRegex, Issuer: vf.issuer, IssuerRegexp: vf.issuerRegex}
		if p.Keyless, err = trust.NewKeyless(b, id); err != nil {
			return nil, usageError{err}
		}
	case keyless:
		return nil, usageError{errorf("--certificate-identity and --certificate-oidc-issuer need --trusted-root (keyless verification is offline)")}
	}
	switch {
	case vf.trustPolicy != "" && vf.trustStore != "":
		b, err := os.ReadFile(vf.trustPolicy)
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("--trust-policy: %w", err))
		}
		st, err := trust.NotationTrustStoreDir(vf.trustStore)
		if err != nil {
			return nil, usageError{err}
		}
		if p.Notation, err = trust.NewNotation(b, st, trust.NotationOptions{}); err != nil {
			return nil, usageError{err}
		}
	case vf.trustPolicy != "" || vf.trustStore != "":
		return nil, usageError{errorf("--trust-policy and --trust-store go together")}
	}
	if p.Empty() {
		return nil, usageError{errdefs.InvalidArgument(errors.New("nothing to trust: give --key, --trusted-root with an identity, or --trust-policy with --trust-store"))}
	}
	return p, nil
}

// printVerified prints the signatures that verified, one a line.
func printVerified(w io.Writer, name string, res *trust.Result) {
	fmt.Fprintf(w, "Verified %s@%s: %d trusted signature(s)\n", name, res.Subject.Digest, len(res.Verified))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FORMAT\tSIGNER\tTIME\tANNOTATIONS")
	for _, s := range res.Verified {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Format, signerText(s.Signer), timeText(s), annotationText(s.Annotations))
	}
	tw.Flush()
	if n := len(res.Rejected); n > 0 {
		fmt.Fprintf(w, "%d other signature(s) or referrers not trusted (--output json says why)\n", n)
	}
}

func signerText(s trust.Signer) string {
	var parts []string
	if s.Subject != "" {
		parts = append(parts, s.Subject)
		if s.Issuer != "" {
			parts = append(parts, "issuer "+s.Issuer)
		}
	} else if s.KeyID != "" {
		parts = append(parts, "key "+s.KeyID)
	}
	if s.TrustPolicy != "" {
		parts = append(parts, "policy "+s.TrustPolicy)
	}
	return strings.Join(parts, ", ")
}

func timeText(s trust.Signature) string {
	if s.Time.IsZero() {
		return "-"
	}
	t := s.Time.UTC().Format(time.RFC3339)
	if s.TimeSource != "" {
		t += " (" + s.TimeSource + ")"
	}
	return t
}

func annotationText(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%s", k, m[k])
	}
	return b.String()
}
