package contenttrust

import (
	"context"
	"errors"
	"strings"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/trust"
)

// Status is an artifact's signatures as its project's policy sees them:
// what the web UI shows as a signed badge, and why a pull is refused.
type Status struct {
	Digest string `json:"digest"`
	// CosignRequired and NotationRequired are the project's demands
	// (enable_content_trust_cosign, enable_content_trust).
	CosignRequired   bool `json:"cosign_required"`
	NotationRequired bool `json:"notation_required"`
	// PolicyVersion is the version of the project's trust policy ("" when
	// it names no signers).
	PolicyVersion string `json:"policy_version,omitempty"`
	// PullAllowed is whether the policy serves the artifact to those who
	// may not push to its repository; Message says why not.
	PullAllowed bool   `json:"pull_allowed"`
	Message     string `json:"message,omitempty"`
	// Signatures are those that verified against the project's signers
	// (Verified) and, for formats it names no signer of, those present.
	Signatures []SignatureStatus `json:"signatures"`
	// Rejected are what is stored as signatures and did not count, with
	// the reason.
	Rejected []trust.Rejection `json:"rejected"`
}

// SignatureStatus is one signature of an artifact.
type SignatureStatus struct {
	trust.Signature
	// Verified: it verified against a signer the project trusts (else it
	// is only present: the project names no signer of its format).
	Verified bool `json:"verified"`
}

// Status returns the signatures of an artifact under its project's policy.
// The subject must be allowed to read the artifact.
func (s *Service) Status(ctx context.Context, who access.Subject, ref project.Ref, repoName, reference string) (Status, error) {
	a, err := s.artifacts.Artifact(ctx, who, ref, repoName, reference)
	if err != nil {
		return Status{}, err
	}
	repo := a.RepositoryName
	name, _, _ := strings.Cut(repo, "/")
	pid, md, err := s.projects.MetadataByName(ctx, name, MetaCosign, MetaNotation)
	if err != nil {
		return Status{}, err
	}
	req := required{cosign: md[MetaCosign] == "true", notation: md[MetaNotation] == "true"}
	var version int64
	if err := s.db.QueryRow(ctx, `SELECT COALESCE((SELECT version FROM content_trust_policies WHERE project_id = ?), 0)`, pid).Scan(&version); err != nil {
		return Status{}, s.db.Wrap("trust policy", err)
	}
	pol, err := s.policyOf(ctx, pid, name, version)
	if err != nil {
		return Status{}, err
	}
	box := s.content.Load()
	if box == nil {
		return Status{}, errdefs.Unavailable(errors.New("the signature policy is not connected to the registry yet"))
	}
	desc, _, err := box.c.Manifest(ctx, repo, a.Digest, 0)
	if err != nil {
		return Status{}, err
	}
	st := Status{Digest: a.Digest, CosignRequired: req.cosign, NotationRequired: req.notation, PullAllowed: true,
		Signatures: []SignatureStatus{}, Rejected: []trust.Rejection{}}
	if pol != nil && pol.policy != nil {
		st.PolicyVersion = pol.version
	}
	if err := s.CheckPull(ctx, repo, a.Digest); err != nil {
		var r *Refusal
		if !errors.As(err, &r) {
			return Status{}, err
		}
		st.PullAllowed, st.Message = false, r.msg
	}
	ev, err := s.evaluate(ctx, box.c.Source(repo), repo, desc, req, pol, true)
	if err != nil {
		return Status{}, err
	}
	if ev.verified != nil {
		for _, sig := range ev.verified.Verified {
			st.Signatures = append(st.Signatures, SignatureStatus{Signature: sig, Verified: true})
		}
		st.Rejected = append(st.Rejected, ev.verified.Rejected...)
	}
	for _, sig := range ev.present.Verified {
		if (isCosign(sig.Format) && pol.hasCosign()) || (isNotation(sig.Format) && pol.hasNotation()) {
			continue // verified or rejected above
		}
		st.Signatures = append(st.Signatures, SignatureStatus{Signature: sig})
	}
	if ev.verified == nil {
		st.Rejected = append(st.Rejected, ev.present.Rejected...)
	}
	return st, nil
}
