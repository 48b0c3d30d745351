package contenttrust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/trust"
)

// required are the signature formats a project demands.
type required struct{ cosign, notation bool }

func (r required) any() bool { return r.cosign || r.notation }

// Refusal is the error of a pull the policy refuses: of class
// errdefs.ErrFailedPrecondition (the registry answers 412
// PROJECTPOLICYVIOLATION), with Harbor's message followed by why.
type Refusal struct {
	ProjectID int64
	Repo      string
	Digest    string
	msg       string
}

func (r *Refusal) Error() string { return r.msg }

// Unwrap gives the refusal its class.
func (r *Refusal) Unwrap() error { return errdefs.ErrFailedPrecondition }

// verdict is a cached decision: err (nil or a *Refusal) under the
// repository's generation and the project's policy key.
type verdict struct {
	gen int64
	key string
	err error
}

// CheckPull decides whether the manifest dgst of repo may be served under
// its project's signature policy: nil, or a *Refusal. Any other error is a
// failure to decide (the database, the storage), never a verdict.
func (s *Service) CheckPull(ctx context.Context, repo, dgst string) error {
	name, _, ok := strings.Cut(repo, "/")
	if !ok {
		return nil
	}
	pid, md, err := s.projects.MetadataByName(ctx, name, MetaCosign, MetaNotation)
	if errdefs.IsNotFound(err) {
		return nil // the registry answers for a repository outside any project
	}
	if err != nil {
		return err
	}
	req := required{cosign: md[MetaCosign] == "true", notation: md[MetaNotation] == "true"}
	if !req.any() {
		return nil
	}
	var version, gen int64
	err = s.db.QueryRow(ctx, `SELECT COALESCE((SELECT version FROM content_trust_policies WHERE project_id = ?), 0),
		COALESCE((SELECT generation FROM content_trust_repos WHERE repo = ?), 0)`, pid, repo).Scan(&version, &gen)
	if err != nil {
		return s.db.Wrap("signature policy", err)
	}
	pol, err := s.policyOf(ctx, pid, name, version)
	if err != nil {
		return err
	}
	key := policyKey(pid, req, pol)
	id := repo + "@" + dgst
	if v, ok := s.cache.get(id); ok && v.gen == gen && v.key == key {
		return v.err
	}
	// One verification per digest at a time; the others wait for it.
	flight := id + "|" + key + "|" + strconv.FormatInt(gen, 16)
	out, err, _ := s.flight.Do(flight, func() (any, error) {
		vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		refusal, err := s.decide(vctx, pid, repo, dgst, req, pol)
		if err != nil {
			return nil, err
		}
		s.cache.put(id, verdict{gen: gen, key: key, err: refusal})
		return refusal, nil
	})
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return out.(error)
}

// policyKey names what a verdict depends on besides the repository's
// content: the project, the formats it demands, its policy's version.
func policyKey(pid int64, req required, pol *compiled) string {
	v := "-"
	if pol != nil {
		v = pol.version
	}
	return fmt.Sprintf("%d/%t/%t/%s", pid, req.cosign, req.notation, v)
}

// maxParents bounds the indexes through which an image may be trusted.
const maxParents = 16

// decide computes a verdict: nil, or a *Refusal.
func (s *Service) decide(ctx context.Context, pid int64, repo, dgst string, req required, pol *compiled) (error, error) {
	box := s.content.Load()
	if box == nil {
		return nil, errdefs.Unavailable(errors.New("the signature policy is not connected to the registry yet"))
	}
	c := box.c
	desc, body, err := c.Manifest(ctx, repo, dgst, trust.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	if body != nil && inert(body) {
		return nil, nil
	}
	src := c.Source(repo)
	ev, err := s.evaluate(ctx, src, repo, desc, req, pol, false)
	if err != nil {
		return nil, err
	}
	refusal := ev.refusal(req, pol)
	if refusal == "" {
		return nil, nil
	}
	parents, err := c.Parents(ctx, repo, dgst)
	if err != nil {
		return nil, err
	}
	for i, p := range parents {
		if i == maxParents {
			break
		}
		pd, _, err := c.Manifest(ctx, repo, p, 0)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		pev, err := s.evaluate(ctx, src, repo, pd, req, pol, false)
		if err != nil {
			return nil, err
		}
		if pev.refusal(req, pol) == "" {
			return nil, nil
		}
	}
	return &Refusal{ProjectID: pid, Repo: repo, Digest: dgst, msg: refusal}, nil
}

// evaluation is what was found next to one manifest: the signatures that
// verified against the project's signers (verified, when it names any)
// and those merely present (present, for formats it names no signer of,
// or always when all is set).
type evaluation struct {
	subject  string
	verified *trust.Result
	present  *trust.Result
}

// evaluate verifies and looks for the signatures of desc in repo.
func (s *Service) evaluate(ctx context.Context, src trust.Source, repo string, desc v1.Descriptor, req required, pol *compiled, all bool) (evaluation, error) {
	subj := trust.Subject{Descriptor: desc, Name: s.opt.Host + "/" + repo}
	ev := evaluation{subject: repo + "@" + desc.Digest.String()}
	var err error
	if pol != nil && pol.policy != nil && (all || (req.cosign && pol.hasCosign()) || (req.notation && pol.hasNotation())) {
		if ev.verified, err = trust.Verify(ctx, src, subj, pol.policy); err != nil {
			return ev, err
		}
	}
	if all || (req.cosign && !pol.hasCosign()) || (req.notation && !pol.hasNotation()) {
		if ev.present, err = trust.Present(ctx, src, subj); err != nil {
			return ev, err
		}
	}
	return ev, nil
}

// isCosign and isNotation tell the formats apart as projects demand them.
func isCosign(f trust.Format) bool   { return f == trust.Cosign || f == trust.CosignBundle }
func isNotation(f trust.Format) bool { return f == trust.Notation }

// refusal is why ev does not satisfy the project ("" when it does), in
// Harbor's words first.
func (ev evaluation) refusal(req required, pol *compiled) string {
	var out []string
	check := func(on, verifying bool, name, harbor string, is func(trust.Format) bool) {
		if !on {
			return
		}
		res := ev.present
		if verifying {
			res = ev.verified
		}
		if res == nil {
			res = &trust.Result{} // fail closed
		}
		for _, sig := range res.Verified {
			if is(sig.Format) {
				return
			}
		}
		var b strings.Builder
		b.WriteString(harbor)
		if verifying {
			fmt.Fprintf(&b, " No %s signature of %s verifies against the project's trusted signers", name, ev.subject)
		} else {
			fmt.Fprintf(&b, " No %s signature of %s is stored", name, ev.subject)
		}
		var why []string
		for _, r := range res.Rejected {
			if r.Format == "" || is(r.Format) {
				why = append(why, shortRejection(r))
			}
		}
		if len(why) > 0 {
			fmt.Fprintf(&b, ": %s", strings.Join(why, "; "))
		}
		b.WriteString(".")
		out = append(out, b.String())
	}
	check(req.cosign, pol.hasCosign(), "cosign", "The image is not signed by cosign.", isCosign)
	check(req.notation, pol.hasNotation(), "Notation", "The image is not signed by notation.", isNotation)
	msg := strings.Join(out, " ")
	const max = 2000
	if len(msg) > max {
		msg = msg[:max] + "…"
	}
	return msg
}

// shortRejection is one rejection on one line: the signature manifest, the
// reason, what went wrong.
func shortRejection(r trust.Rejection) string {
	where := "signature"
	if r.Format != "" {
		where = string(r.Format) + " signature"
	}
	if r.Manifest.Hex != "" {
		h := r.Manifest.Hex
		if len(h) > 12 {
			h = h[:12]
		}
		where += " " + r.Manifest.Algorithm + ":" + h
	}
	msg := strings.Join(strings.Fields(r.Message), " ")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return fmt.Sprintf("%s (%s): %s", where, r.Reason, msg)
}

// inert reports whether a manifest is a signature, an SBOM or an
// attestation rather than an image: one that refers to a subject (or is
// made only of cosign's signature and attestation layers, as its legacy
// tags hold them) and carries no filesystem layer. Verifiers must read
// those, so the policy serves them.
func inert(body []byte) bool {
	var m struct {
		Subject *struct {
			Digest string `json:"digest"`
		} `json:"subject"`
		Layers []struct {
			MediaType string `json:"mediaType"`
		} `json:"layers"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(body, &m) != nil || len(m.Manifests) > 0 {
		return false
	}
	legacy := len(m.Layers) > 0
	for _, l := range m.Layers {
		mt := l.MediaType
		if mt == "" || strings.Contains(mt, "tar") || strings.HasPrefix(mt, "application/vnd.oci.image.layer.") || strings.HasPrefix(mt, "application/vnd.docker.image.rootfs.") {
			return false
		}
		legacy = legacy && (mt == trust.SimpleSigningMediaType || mt == "application/vnd.dsse.envelope.v1+json")
	}
	return m.Subject != nil || legacy
}

// Changed records, in tx (the registry's transaction), that something
// that can change a verdict in repo changed: the verdicts cached for the
// repository, in every replica, are stale from its commit on.
func (s *Service) Changed(ctx context.Context, tx *sqldb.Tx, repo string) error {
	_, err := tx.Exec(ctx, `INSERT INTO content_trust_repos (repo, generation) VALUES (?, ?)
		ON CONFLICT (repo) DO UPDATE SET generation = excluded.generation`, repo, random())
	return err
}

// maxPendingRefusals bounds the refusals waiting to be audited; beyond it
// a refusal's record is dropped (and logged), never the answer delayed.
const maxPendingRefusals = 10000

// Refused records a refusal of CheckPull in the audit log (within a
// second, in batches: refusals can come in floods): a failed pull of the
// artifact, by the context's actor, with the reason.
func (s *Service) Refused(ctx context.Context, err error) {
	var r *Refusal
	if !errors.As(err, &r) {
		return
	}
	a := actor.From(ctx)
	user := a.Name
	if user == "" {
		user = "anonymous"
	}
	e := audit.Event{ProjectID: r.ProjectID, Operation: "pull", ResourceType: "artifact", Resource: r.Repo + "@" + r.Digest, Failed: true,
		Description: "pull refused by the signature policy: " + r.msg, Username: user, Address: a.Address, RequestID: a.RequestID, Time: s.db.Now()}
	select {
	case s.refusals <- e:
	default:
		s.log.Warn("refused pulls are not keeping up with the audit log; dropping one", "repository", r.Repo, "digest", r.Digest)
	}
}

func (s *Service) writeRefusals() {
	defer close(s.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var batch []audit.Event
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := s.audit.RecordBatch(context.Background(), batch); err != nil {
			s.log.Error("cannot record refused pulls", "pulls", len(batch), "error", err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case e := <-s.refusals:
			batch = append(batch, e)
			if len(batch) >= 500 {
				flush()
			}
		case <-t.C:
			flush()
		case <-s.stop:
			for {
				select {
				case e := <-s.refusals:
					batch = append(batch, e)
				default:
					flush()
					return
				}
			}
		}
	}
}
