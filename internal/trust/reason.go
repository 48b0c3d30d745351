package trust

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Reason says why a signature was not trusted. Each refusal has its own,
// so that a caller (a test, a registry's audit log, --output json) can
// tell them apart without reading messages.
type Reason string

// The reasons.
const (
	// ReasonNoSignatures: nothing next to the image looks like a signature.
	ReasonNoSignatures Reason = "no-signatures"
	// ReasonDigestMismatch: a valid signature, but over another digest (or a
	// referrer whose subject is another manifest).
	ReasonDigestMismatch Reason = "digest-mismatch"
	// ReasonBadSignature: the signature does not verify over its payload (the
	// payload or the signature was altered).
	ReasonBadSignature Reason = "bad-signature"
	// ReasonUntrustedKey: signed by a key or certificate chain the policy
	// does not trust.
	ReasonUntrustedKey Reason = "untrusted-key"
	// ReasonUntrustedIdentity: a trusted chain, but the certificate's
	// identity or issuer is not one the policy names.
	ReasonUntrustedIdentity Reason = "untrusted-identity"
	// ReasonExpired: the signing certificate (or the signature) was not valid
	// at the time that counts.
	ReasonExpired Reason = "expired"
	// ReasonRevoked: a certificate of the chain is revoked.
	ReasonRevoked Reason = "revoked"
	// ReasonAnnotations: the signed annotations lack or differ from those
	// required.
	ReasonAnnotations Reason = "annotation-mismatch"
	// ReasonNoPolicy: a signature in a format the policy has no trust for
	// (a Notation signature and only cosign keys, say).
	ReasonNoPolicy Reason = "no-policy"
	// ReasonMalformed: a manifest, bundle, envelope or payload that does not
	// parse or lacks what its format requires.
	ReasonMalformed Reason = "malformed"
	// ReasonTooLarge: a manifest or blob over the size limits.
	ReasonTooLarge Reason = "too-large"
	// ReasonUnsupported: a referrer or layer of a media type that is no
	// signature format this package knows.
	ReasonUnsupported Reason = "unsupported"
	// ReasonSelfReference: a signature that names the image itself as its
	// signature manifest.
	ReasonSelfReference Reason = "self-reference"
	// ReasonUnavailable: the signature could not be read (missing blob,
	// registry error).
	ReasonUnavailable Reason = "unavailable"
)

// A Rejection is a signature (or something stored as one) that was not
// trusted, and why.
type Rejection struct {
	Format   Format  `json:"format,omitempty"`
	Manifest v1.Hash `json:"manifest,omitzero"`
	Reason   Reason  `json:"reason"`
	Err      error   `json:"-"`
	// Message is Err's text, for JSON.
	Message string `json:"message"`
}

func reject(f Format, manifest v1.Hash, r Reason, err error) Rejection {
	return Rejection{Format: f, Manifest: manifest, Reason: r, Err: err, Message: err.Error()}
}

func (r Rejection) String() string {
	where := r.Manifest.String()
	if r.Format != "" {
		where = string(r.Format) + " signature " + where
	}
	return fmt.Sprintf("%s: %s: %v", where, r.Reason, r.Err)
}

// Error is what Result.Err returns when no trusted signature covers the
// digest: every rejection, each with its reason. Its error class is
// errdefs.ErrDenied (nothing trusted) or errdefs.ErrNotFound (no
// signatures at all).
type Error struct {
	Digest     v1.Hash
	Rejections []Rejection
}

func (e *Error) Error() string {
	if len(e.Rejections) == 0 {
		return fmt.Sprintf("%s: no signatures found", e.Digest)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: no trusted signature", e.Digest)
	for _, r := range e.Rejections {
		b.WriteString("\n  ")
		b.WriteString(r.String())
	}
	return b.String()
}

// Unwrap gives the error its class.
func (e *Error) Unwrap() error {
	if len(e.Rejections) == 0 {
		return errdefs.ErrNotFound
	}
	return errdefs.ErrDenied
}

// Reasons returns the distinct reasons, sorted.
func (e *Error) Reasons() []Reason {
	seen := map[Reason]bool{}
	var out []Reason
	for _, r := range e.Rejections {
		if !seen[r.Reason] {
			seen[r.Reason] = true
			out = append(out, r.Reason)
		}
	}
	if len(e.Rejections) == 0 {
		out = append(out, ReasonNoSignatures)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// HasReason reports whether err is an *Error with a rejection for reason r.
func HasReason(err error, r Reason) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	for _, x := range e.Reasons() {
		if x == r {
			return true
		}
	}
	return false
}

// failure is an internal error that carries its reason up to the place
// that records the rejection.
type failure struct {
	reason Reason
	err    error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

func fail(r Reason, format string, args ...any) error {
	return &failure{reason: r, err: fmt.Errorf(format, args...)}
}

// reasonOf returns the reason err carries, or def.
func reasonOf(err error, def Reason) Reason {
	var f *failure
	if errors.As(err, &f) {
		return f.reason
	}
	if errors.Is(err, errdefs.ErrTooLarge) {
		return ReasonTooLarge
	}
	return def
}
