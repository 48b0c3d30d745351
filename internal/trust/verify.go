package trust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/verify"
)

// Subject is the manifest whose signatures are verified.
type Subject struct {
	// Descriptor is the signed manifest's media type, digest and size.
	Descriptor v1.Descriptor
	// Name is the repository the image is known by ("registry.example/app"),
	// which Notation trust policies match their registry scopes against. An
	// image outside a registry goes by "local/NAME", as Notation names OCI
	// layouts.
	Name string
}

// Signature is a signature that verified.
type Signature struct {
	Format Format `json:"format"`
	// Manifest is the signature manifest (the legacy .sig manifest holds
	// several signatures).
	Manifest v1.Hash `json:"manifest"`
	Signer   Signer  `json:"signer"`
	// Time is when it was signed, and TimeSource how that is known: a
	// "signed timestamp" or the "transparency log" (verified), or the
	// signer's "claimed" time.
	Time        time.Time         `json:"time,omitzero"`
	TimeSource  string            `json:"timeSource,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Signer is who signed: a key (KeyID) or a certificate (Subject and
// Issuer: the certificate's subject alternative name and OIDC issuer for
// Sigstore, its subject and issuer names for Notation).
type Signer struct {
	KeyID   string `json:"keyId,omitempty"`
	Subject string `json:"subject,omitempty"`
	Issuer  string `json:"issuer,omitempty"`
	// TrustPolicy is the Notation trust policy that accepted it.
	TrustPolicy string `json:"trustPolicy,omitempty"`
}

// Result is what Verify found.
type Result struct {
	Subject  v1.Descriptor `json:"subject"`
	Name     string        `json:"name,omitempty"`
	Verified []Signature   `json:"verified"`
	Rejected []Rejection   `json:"rejected"`
}

// Err is nil when a trusted signature covers the subject, else an *Error
// listing every rejection with its reason.
func (r *Result) Err() error {
	if len(r.Verified) > 0 {
		return nil
	}
	return &Error{Digest: r.Subject.Digest, Rejections: r.Rejected}
}

// Verify finds the signatures of subj in src (referrers and cosign's legacy
// tag) and verifies each against p. It fails only when src cannot list
// what is stored (or p trusts nobody); a signature that does not verify is
// a Rejection in the Result.
func Verify(ctx context.Context, src Source, subj Subject, p *Policy) (*Result, error) {
	if p.Empty() {
		return nil, errdefs.InvalidArgument(errors.New("no trusted keys, identities or trust policy given"))
	}
	if err := verify.CheckHash(subj.Descriptor.Digest); err != nil {
		return nil, err
	}
	base := verification{src: src, subj: subj, p: p}
	// The legacy tag and the referrers are looked up at once, and up to
	// verifyJobs referrers verified at once: over a network each is a few
	// round trips. Each task fills a Result of its own; they are merged in
	// listing order, so the outcome does not depend on timing.
	legacy := base.task()
	legacyDone := make(chan struct{})
	go func() {
		defer close(legacyDone)
		legacy.legacy(ctx)
	}()
	refs, err := src.Referrers(ctx, subj.Descriptor.Digest)
	if err != nil {
		<-legacyDone
		return nil, fmt.Errorf("list the signatures of %s: %w", subj.Descriptor.Digest, err)
	}
	n := min(len(refs), MaxSignatures)
	parts := make([]*verification, n)
	sem := make(chan struct{}, verifyJobs)
	var wg sync.WaitGroup
	for i, d := range refs[:n] {
		parts[i] = base.task()
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			parts[i].referrer(ctx, d)
		}()
	}
	wg.Wait()
	<-legacyDone
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &Result{Subject: subj.Descriptor, Name: subj.Name, Verified: []Signature{}, Rejected: []Rejection{}}
	merge := func(r *Result) {
		res.Verified = append(res.Verified, r.Verified...)
		res.Rejected = append(res.Rejected, r.Rejected...)
	}
	for _, part := range parts {
		merge(part.res)
	}
	if len(refs) > n {
		res.Rejected = append(res.Rejected, reject("", refs[n].Digest, ReasonTooLarge,
			fmt.Errorf("%d referrers: only the first %d were examined", len(refs), MaxSignatures)))
	}
	merge(legacy.res)
	return res, nil
}

// verifyJobs is how many referrers one Verify checks at once.
const verifyJobs = 4

// verification is one task of a Verify call: what it checks against and
// the part of the result it found.
type verification struct {
	src  Source
	subj Subject
	p    *Policy
	res  *Result
}

// task returns a copy of v with a result of its own.
func (v verification) task() *verification {
	v.res = &Result{}
	return &v
}

func (v *verification) reject(f Format, manifest v1.Hash, err error) {
	v.res.Rejected = append(v.res.Rejected, reject(f, manifest, reasonOf(err, ReasonMalformed), err))
}

func (v *verification) accept(s Signature) { v.res.Verified = append(v.res.Verified, s) }

// referrer verifies one referrer of the subject.
func (v *verification) referrer(ctx context.Context, d v1.Descriptor) {
	format := formatOf(d.ArtifactType)
	if d.Digest == v.subj.Descriptor.Digest {
		v.reject(format, d.Digest, fail(ReasonSelfReference, "the image is listed as its own referrer"))
		return
	}
	m, _, err := fetchManifest(ctx, v.src, d)
	if err != nil {
		v.reject(format, d.Digest, err)
		return
	}
	format = formatOf(m.artifactType())
	if m.Subject == nil || m.Subject.Digest != v.subj.Descriptor.Digest {
		got := "none"
		if m.Subject != nil {
			got = m.Subject.Digest.String()
		}
		v.reject(format, d.Digest, fail(ReasonDigestMismatch, "listed as a referrer, but its subject is %s", got))
		return
	}
	var s Signature
	switch format {
	case Notation:
		s, err = v.notation(ctx, d.Digest, m)
	case CosignBundle:
		s, err = v.bundle(ctx, d.Digest, m)
	default:
		err = fail(ReasonUnsupported, "artifact type %q is not a signature format lading verifies", m.artifactType())
	}
	if err != nil {
		v.reject(format, d.Digest, err)
		return
	}
	v.accept(s)
}

// formatOf maps an artifact type to a format ("" when unknown).
func formatOf(artifactType string) Format {
	switch {
	case artifactType == NotationArtifactType:
		return Notation
	case strings.HasPrefix(artifactType, "application/vnd.dev.sigstore.bundle"):
		return CosignBundle
	}
	return ""
}

// legacy verifies the signatures in cosign's sha256-<hex>.sig manifest.
func (v *verification) legacy(ctx context.Context) {
	tag := legacyTag(v.subj.Descriptor.Digest)
	d, err := v.src.Resolve(ctx, tag)
	if errdefs.IsNotFound(err) {
		return
	}
	if err != nil {
		v.reject(Cosign, v1.Hash{}, fail(ReasonUnavailable, "tag %s: %v", tag, err))
		return
	}
	if d.Digest == v.subj.Descriptor.Digest {
		v.reject(Cosign, d.Digest, fail(ReasonSelfReference, "tag %s points at the image itself", tag))
		return
	}
	m, _, err := fetchManifest(ctx, v.src, d)
	if err != nil {
		v.reject(Cosign, d.Digest, err)
		return
	}
	for i, l := range m.Layers {
		if i == MaxSignatures {
			v.reject(Cosign, d.Digest, fail(ReasonTooLarge, "%d signature layers: only the first %d were examined", len(m.Layers), MaxSignatures))
			return
		}
		if l.MediaType != SimpleSigningMediaType {
			v.reject(Cosign, d.Digest, fail(ReasonUnsupported, "layer %s: media type %q is not %s", l.Digest, l.MediaType, SimpleSigningMediaType))
			continue
		}
		s, err := v.legacyLayer(ctx, d.Digest, l)
		if err != nil {
			v.reject(Cosign, d.Digest, fmt.Errorf("layer %s: %w", l.Digest, err))
			continue
		}
		v.accept(s)
	}
}

// checkAnnotations reports whether have holds every annotation p requires.
func (v *verification) checkAnnotations(have map[string]string) error {
	var missing []string
	for k, want := range v.p.Annotations {
		got, ok := have[k]
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("%s is not signed", k))
		case got != want:
			missing = append(missing, fmt.Sprintf("%s is %q, not %q", k, got, want))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fail(ReasonAnnotations, "annotations: %s", strings.Join(missing, "; "))
	}
	return nil
}

// stringMap renders signed annotation values as strings (JSON for those
// that are not strings).
func stringMap(m map[string]any) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
			continue
		}
		b, _ := json.Marshal(v)
		out[k] = string(b)
	}
	return out
}

// claimedTime parses a manifest's creation annotation, which the signer
// wrote and nobody verified.
func claimedTime(m *manifest) (time.Time, string) {
	if s := m.Annotations["org.opencontainers.image.created"]; s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, "claimed"
		}
	}
	return time.Time{}, ""
}
