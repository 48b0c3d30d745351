package contenttrust

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/notaryproject/notation-core-go/revocation"
	crlutil "github.com/notaryproject/notation-core-go/revocation/crl"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/trust"
)

// Policy is the signers a project trusts: its trust policy document, as
// the API and the configuration file give it.
type Policy struct {
	// CosignKeys are the cosign public keys trusted (cosign's legacy
	// signatures and Sigstore bundles signed with a key).
	CosignKeys []CosignKey `json:"cosign_keys"`
	// Notation is the Notation trust policy and trust store, if any.
	Notation *NotationTrust `json:"notation,omitempty"`

	// Set by the service, ignored on input: the policy's version (it
	// changes with every change), whether the configuration file fixes it,
	// and when it last changed.
	Version    string    `json:"version,omitempty"`
	Fixed      bool      `json:"fixed"`
	UpdateTime time.Time `json:"update_time,omitzero"`
}

// CosignKey is a named cosign public key (PEM: ECDSA, RSA or Ed25519).
type CosignKey struct {
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
	// KeyID is set by the service: the key's id as cosign's bundles hint
	// it (base64 SHA-256 of its PKIX encoding).
	KeyID string `json:"key_id,omitempty"`
}

// NotationTrust is a Notation trust policy document (Notation's own
// trustpolicy.json format) and the trust store it names: PEM
// certificates by "type:name" ("ca:acme", "signingAuthority:release",
// "tsa:timestamps"), as trust policies name stores.
type NotationTrust struct {
	TrustPolicy json.RawMessage   `json:"trust_policy"`
	TrustStore  map[string]string `json:"trust_store"`
}

// Limits on a policy document.
const (
	maxKeys         = 64
	maxStores       = 64
	maxCertsPerStor = 64
)

var keyNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// compiled is a policy ready for verification, at one version.
type compiled struct {
	version string
	policy  *trust.Policy // nil: no signer named
	doc     Policy
}

// hasCosign and hasNotation report whether the project names signers of a
// format (else a signature of that format need only be present).
func (c *compiled) hasCosign() bool   { return c != nil && c.policy != nil && len(c.policy.Keys) > 0 }
func (c *compiled) hasNotation() bool { return c != nil && c.policy != nil && c.policy.Notation != nil }

// revocationValidator checks Notation signing chains' revocation (OCSP,
// CRL) through client, which the outbound policy guards.
func revocationValidator(client *http.Client) revocation.Validator {
	f, err := crlutil.NewHTTPFetcher(client)
	if err != nil {
		return nil
	}
	v, err := revocation.NewWithOptions(revocation.Options{OCSPHTTPClient: client, CRLFetcher: f})
	if err != nil {
		return nil
	}
	return v
}

// compile checks a policy document and builds what verifies against it.
// Every problem is errdefs.ErrInvalidArgument naming the field.
func (s *Service) compile(p Policy, version string) (*compiled, error) {
	if len(p.CosignKeys) > maxKeys {
		return nil, errdefs.InvalidArgument(fmt.Errorf("cosign_keys: %d keys, at most %d", len(p.CosignKeys), maxKeys))
	}
	doc := Policy{CosignKeys: []CosignKey{}, Version: version, Fixed: p.Fixed, UpdateTime: p.UpdateTime}
	tp := &trust.Policy{}
	names := map[string]bool{}
	for i, k := range p.CosignKeys {
		if !keyNameRe.MatchString(k.Name) {
			return nil, errdefs.InvalidArgument(fmt.Errorf("cosign_keys[%d].name %.70q: 1 to 64 letters, digits, '.', '_', '@' or '-'", i, k.Name))
		}
		if names[k.Name] {
			return nil, errdefs.InvalidArgument(fmt.Errorf("cosign_keys[%d].name %q: named twice", i, k.Name))
		}
		names[k.Name] = true
		key, err := trust.ParsePublicKey([]byte(k.PublicKey))
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("cosign_keys[%d] (%s): %w", i, k.Name, err))
		}
		tp.Keys = append(tp.Keys, key)
		doc.CosignKeys = append(doc.CosignKeys, CosignKey{Name: k.Name, PublicKey: k.PublicKey, KeyID: key.ID})
	}
	if n := p.Notation; n != nil {
		np, err := s.compileNotation(n)
		if err != nil {
			return nil, err
		}
		tp.Notation = np
		doc.Notation = &NotationTrust{TrustPolicy: n.TrustPolicy, TrustStore: n.TrustStore}
	}
	c := &compiled{version: version, doc: doc}
	if !tp.Empty() {
		c.policy = tp
	}
	return c, nil
}

// compileNotation checks a Notation trust policy and its trust store.
func (s *Service) compileNotation(n *NotationTrust) (*trust.NotationPolicy, error) {
	if len(n.TrustPolicy) == 0 || string(n.TrustPolicy) == "null" {
		return nil, errdefs.InvalidArgument(errors.New("notation.trust_policy: a Notation trust policy document is required (trustpolicy.json's format)"))
	}
	if len(n.TrustStore) > maxStores {
		return nil, errdefs.InvalidArgument(fmt.Errorf("notation.trust_store: %d stores, at most %d", len(n.TrustStore), maxStores))
	}
	store := trust.NotationCertificates{}
	for name, pemText := range n.TrustStore {
		typ, sname, ok := strings.Cut(name, ":")
		if !ok || !slices.Contains([]string{"ca", "signingAuthority", "tsa"}, typ) || !keyNameRe.MatchString(sname) {
			return nil, errdefs.InvalidArgument(fmt.Errorf("notation.trust_store[%.70q]: name stores as TYPE:NAME, TYPE ca, signingAuthority or tsa", name))
		}
		certs, err := parseCertificates([]byte(pemText))
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("notation.trust_store[%s]: %w", name, err))
		}
		store[name] = certs
	}
	// Every store the policy names must be given: notation-go would
	// only say so at the first pull.
	var named struct {
		TrustPolicies []struct {
			Name        string   `json:"name"`
			TrustStores []string `json:"trustStores"`
		} `json:"trustPolicies"`
	}
	if err := json.Unmarshal(n.TrustPolicy, &named); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("notation.trust_policy: %w", err))
	}
	for _, tp := range named.TrustPolicies {
		for _, st := range tp.TrustStores {
			if _, ok := store[st]; !ok {
				return nil, errdefs.InvalidArgument(fmt.Errorf("notation.trust_policy: trust policy %q names the trust store %q, which notation.trust_store does not hold", tp.Name, st))
			}
		}
	}
	np, err := trust.NewNotation(n.TrustPolicy, store, s.notation)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("notation.trust_policy: %w", err))
	}
	return np, nil
}

// parseCertificates reads PEM certificates (at least one).
func parseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a PEM block of type %q; want CERTIFICATE", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		if len(out) > maxCertsPerStor {
			return nil, fmt.Errorf("more than %d certificates", maxCertsPerStor)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	if len(bytes.TrimSpace(b)) > 0 {
		return nil, errors.New("text after the last PEM certificate")
	}
	return out, nil
}

// SetFixed sets the policies the configuration file fixes, by project
// name; they win over the database, and the API cannot change them. It
// checks them all before changing anything.
func (s *Service) SetFixed(ps map[string]Policy) error {
	out := map[string]*compiled{}
	for name, p := range ps {
		if err := project.CheckName(name); err != nil {
			return fmt.Errorf("trust.projects.%s: %w", name, err)
		}
		b, err := json.Marshal(struct {
			K []CosignKey
			N *NotationTrust
		}{p.CosignKeys, p.Notation})
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		p.Fixed = true
		c, err := s.compile(p, "config-"+hex.EncodeToString(sum[:8]))
		if err != nil {
			return fmt.Errorf("trust.projects.%s: %w", name, err)
		}
		out[name] = c
	}
	s.fixed.Store(&out)
	return nil
}

// policyOf returns the compiled policy of a project at version (0: the
// project has none in the database), building it once per version.
func (s *Service) policyOf(ctx context.Context, projectID int64, name string, version int64) (*compiled, error) {
	if c := (*s.fixed.Load())[name]; c != nil {
		return c, nil
	}
	if version == 0 {
		return nil, nil
	}
	v := strconv.FormatInt(version, 16)
	s.mu.Lock()
	c := s.compiled[projectID]
	s.mu.Unlock()
	if c != nil && c.version == v {
		return c, nil
	}
	var docText string
	var updated int64
	err := s.db.QueryRow(ctx, `SELECT document, updated FROM content_trust_policies WHERE project_id = ? AND version = ?`, projectID, version).Scan(&docText, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		// Changed meanwhile: the next pull sees the new version.
		return nil, errdefs.Unavailable(fmt.Errorf("the trust policy of project %s changed while it was read; try again", name))
	}
	if err != nil {
		return nil, s.db.Wrap("trust policy", err)
	}
	var p Policy
	if err := json.Unmarshal([]byte(docText), &p); err != nil {
		return nil, fmt.Errorf("the stored trust policy of project %s: %w", name, err)
	}
	p.UpdateTime = sqldb.Time(updated)
	if c, err = s.compile(p, v); err != nil {
		// It was checked when stored; what changed is this lading.
		return nil, fmt.Errorf("the stored trust policy of project %s: %w", name, err)
	}
	s.mu.Lock()
	s.compiled[projectID] = c
	s.mu.Unlock()
	return c, nil
}

// Get returns a project's trust policy (empty when it has none).
func (s *Service) Get(ctx context.Context, who access.Subject, ref project.Ref) (Policy, error) {
	p, err := s.projects.Authorize(ctx, who, ref, access.Read, access.Metadata)
	if err != nil {
		return Policy{}, err
	}
	var version int64
	err = s.db.QueryRow(ctx, `SELECT version FROM content_trust_policies WHERE project_id = ?`, p.ID).Scan(&version)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Policy{}, s.db.Wrap("trust policy", err)
	}
	c, err := s.policyOf(ctx, p.ID, p.Name, version)
	if err != nil {
		return Policy{}, err
	}
	if c == nil {
		return Policy{CosignKeys: []CosignKey{}}, nil
	}
	return c.doc, nil
}

// Put replaces a project's trust policy. It applies to the next pull, on
// every replica.
func (s *Service) Put(ctx context.Context, who access.Subject, ref project.Ref, pol Policy) error {
	p, err := s.projects.Authorize(ctx, who, ref, access.Update, access.Metadata)
	if err != nil {
		return err
	}
	if err := s.notFixed(p.Name); err != nil {
		return err
	}
	pol.Fixed, pol.Version, pol.UpdateTime = false, "", time.Time{}
	c, err := s.compile(pol, "")
	if err != nil {
		return err
	}
	doc := c.doc
	doc.Version = ""
	for i := range doc.CosignKeys {
		doc.CosignKeys[i].KeyID = ""
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, "put trust policy", func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO content_trust_policies (project_id, version, document, updated) VALUES (?, ?, ?, ?)
			ON CONFLICT (project_id) DO UPDATE SET version = excluded.version, document = excluded.document, updated = excluded.updated`,
			p.ID, random(), string(b), sqldb.Nanos(s.db.Now()))
		if err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "update", ResourceType: "project", Resource: p.Name,
			Description: fmt.Sprintf("set the trust policy of project %s: %s", p.Name, describe(c))})
	})
}

// Delete removes a project's trust policy: signatures then need only be
// present, as in Harbor.
func (s *Service) Delete(ctx context.Context, who access.Subject, ref project.Ref) error {
	p, err := s.projects.Authorize(ctx, who, ref, access.Delete, access.Metadata)
	if err != nil {
		return err
	}
	if err := s.notFixed(p.Name); err != nil {
		return err
	}
	return s.db.Tx(ctx, "delete trust policy", func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM content_trust_policies WHERE project_id = ?`, p.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errdefs.NotFound(fmt.Errorf("project %s has no trust policy", p.Name))
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "update", ResourceType: "project", Resource: p.Name,
			Description: "delete the trust policy of project " + p.Name})
	})
}

func (s *Service) notFixed(name string) error {
	if (*s.fixed.Load())[name] != nil {
		return errdefs.FailedPrecondition(fmt.Errorf("the trust policy of project %s is set in the configuration file (trust.projects.%s); change it there", name, name))
	}
	return nil
}

// describe says what a policy trusts, for the audit log.
func describe(c *compiled) string {
	var parts []string
	var keys []string
	for _, k := range c.doc.CosignKeys {
		keys = append(keys, k.Name)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		parts = append(parts, "cosign keys "+strings.Join(keys, ", "))
	}
	if c.doc.Notation != nil {
		var stores []string
		for n := range c.doc.Notation.TrustStore {
			stores = append(stores, n)
		}
		sort.Strings(stores)
		parts = append(parts, "a Notation trust policy over "+strings.Join(stores, ", "))
	}
	if len(parts) == 0 {
		return "no signers (a signature need only be present)"
	}
	return strings.Join(parts, "; ")
}
