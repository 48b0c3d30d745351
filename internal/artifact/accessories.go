package artifact

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Accessories are what Harbor shows next to an artifact rather than as
// artifacts of their own: signatures, SBOMs, other referrers. An artifact
// is an accessory of a subject when its manifest names the subject
// (OCI 1.1's subject field, as the referrers API lists it) or when it is
// tagged with cosign's legacy tag for the subject's digest
// (sha256-<hex>.sig). The relation is kept by digest, so an accessory
// pushed before its subject is one all the same, and it follows the
// content: a copy or a replication of the subject and its referrers
// brings it along. Accessories are left out of artifact listings, listed
// with their subject (with_accessory=true, or .../accessories), and
// deleted with it.
//
// # Table (owned here)
//
//	artifact_accessories  id, artifact_id (the accessory; deleted with it),
//	                      repository_id, subject_digest, type, created;
//	                      unique (artifact_id, subject_digest)

// Accessory types, as Harbor names them; SBOMs in CycloneDX or SPDX
// that are not Harbor's own get types of their own.
const (
	AccessoryCosign     = "signature.cosign"
	AccessoryNotation   = "signature.notation"
	AccessoryHarborSBOM = "harbor.sbom"
	AccessoryNydus      = "accelerator.nydus"
	AccessoryCycloneDX  = "sbom.cyclonedx"
	AccessorySPDX       = "sbom.spdx"
	// AccessorySubject is any other referrer.
	AccessorySubject = "subject.accessory"
)

// Accessory is an accessory of an artifact.
type Accessory struct {
	ID                int64
	ArtifactID        int64
	SubjectArtifactID int64 // 0 while the subject is not in the repository
	SubjectDigest     string
	SubjectRepo       string
	Digest            string
	Size              int64
	Type              string
	Created           time.Time
}

var accessoriesMigration = sqldb.Migration{Owner: "artifact", Name: "accessories", SQL: []string{
	`CREATE TABLE artifact_accessories (
		id {{id}},
		artifact_id {{int}} NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
		repository_id {{int}} NOT NULL REFERENCES artifact_repos (id) ON DELETE CASCADE,
		subject_digest {{text}} NOT NULL,
		type {{text}} NOT NULL,
		created {{int}} NOT NULL,
		UNIQUE (artifact_id, subject_digest))`,
	`CREATE INDEX artifact_accessories_subject ON artifact_accessories (repository_id, subject_digest)`,
}}

// legacySigTag is cosign's tag for the signatures of a sha256 digest.
var legacySigTag = regexp.MustCompile(`^sha256-([a-f0-9]{64})\.sig$`)

// LegacySubject returns the digest whose signatures cosign's legacy tag
// tag holds, or "".
func LegacySubject(tag string) string {
	if m := legacySigTag.FindStringSubmatch(tag); m != nil {
		return "sha256:" + m[1]
	}
	return ""
}

// accessoryType is the type of a manifest that refers to a subject, from
// its artifact type or its config's media type, as Harbor classifies them.
func accessoryType(m *manifest) string {
	from := m.ArtifactType
	if from == "" && m.Config != nil {
		from = m.Config.MediaType
	}
	switch {
	case from == "application/vnd.oci.image.config.v1+json", from == "application/vnd.docker.container.image.v1+json":
		if n := len(m.Layers); n > 0 {
			if _, ok := m.Layers[n-1].Annotations["containerd.io/snapshot/nydus-bootstrap"]; ok {
				return AccessoryNydus
			}
		}
	case from == "application/vnd.cncf.notary.signature":
		return AccessoryNotation
	case from == "application/vnd.dev.cosign.artifact.sig.v1+json", strings.HasPrefix(from, "application/vnd.dev.sigstore.bundle"):
		return AccessoryCosign
	case from == "application/vnd.goharbor.harbor.sbom.v1":
		return AccessoryHarborSBOM
	case strings.HasPrefix(from, "application/vnd.cyclonedx"):
		return AccessoryCycloneDX
	case strings.HasPrefix(from, "application/spdx"):
		return AccessorySPDX
	}
	return AccessorySubject
}

// recordAccessory records, in the registry's transaction, that the
// artifact artID of repo is an accessory of subject, and audits the push
// of a signature.
func (s *Service) recordAccessory(ctx context.Context, tx *sqldb.Tx, repo string, repoID, artID int64, digest, subject, typ string) error {
	res, err := tx.Exec(ctx, `INSERT INTO artifact_accessories (artifact_id, repository_id, subject_digest, type, created) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (artifact_id, subject_digest) DO NOTHING`, artID, repoID, subject, typ, sqldb.Nanos(s.db.Now()))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 || !strings.HasPrefix(typ, "signature.") {
		return nil
	}
	pid, _, _ := project.ProjectOf(ctx, tx, repo)
	return s.audit.Record(ctx, tx, audit.Event{ProjectID: pid, Operation: "create", ResourceType: "signature", Resource: repo + "@" + subject,
		Description: fmt.Sprintf("push %s %s of %s@%s", typ, digest, repo, subject)})
}

// AccessoryFields are the keys an accessory listing may filter and sort by.
var AccessoryFields = query.Fields{
	"id":            {Column: "x.id", Kind: query.Int},
	"type":          {Column: "x.type"},
	"digest":        {Column: "a.digest"},
	"size":          {Column: "a.size", Kind: query.Int},
	"creation_time": {Column: "x.created", Kind: query.Time},
}

const accessoryCols = `x.id, x.artifact_id, COALESCE(s.id, 0), x.subject_digest, r.name, a.digest, a.size, x.type, x.created`

const accessoryFrom = ` FROM artifact_accessories x
	JOIN artifacts a ON a.id = x.artifact_id
	JOIN artifact_repos r ON r.id = x.repository_id
	LEFT JOIN artifacts s ON s.repository_id = x.repository_id AND s.digest = x.subject_digest`

func scanAccessory(row sqldb.Row) (Accessory, error) {
	var x Accessory
	var created int64
	err := row.Scan(&x.ID, &x.ArtifactID, &x.SubjectArtifactID, &x.SubjectDigest, &x.SubjectRepo, &x.Digest, &x.Size, &x.Type, &created)
	x.Created = sqldb.Time(created)
	return x, err
}

// Accessories lists the accessories of an artifact (Harbor's
// .../artifacts/{reference}/accessories).
func (s *Service) Accessories(ctx context.Context, who access.Subject, ref project.Ref, repoName, reference string, q query.Query, page query.Page) ([]Accessory, int64, error) {
	_, repo, err := s.repo(ctx, who, ref, repoName, access.List, access.Accessory)
	if err != nil {
		return nil, 0, err
	}
	a, err := s.lookup(ctx, repo, reference)
	if err != nil {
		return nil, 0, err
	}
	c, err := q.SQL(s.db.Dialect(), AccessoryFields, "x.created DESC", "x.id DESC")
	if err != nil {
		return nil, 0, err
	}
	where := c.WhereSQL("x.repository_id = ?", "x.subject_digest = ?")
	args := append([]any{repo.ID, a.Digest}, c.Args...)
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*)`+accessoryFrom+where, args...).Scan(&total); err != nil {
		return nil, 0, s.db.Wrap("accessories", err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+accessoryCols+accessoryFrom+where+` ORDER BY `+c.OrderBy+page.LimitSQL(), args...)
	if err != nil {
		return nil, 0, s.db.Wrap("accessories", err)
	}
	defer rows.Close()
	out := []Accessory{}
	for rows.Next() {
		x, err := scanAccessory(rows)
		if err != nil {
			return nil, 0, s.db.Wrap("accessories", err)
		}
		out = append(out, x)
	}
	return out, total, s.db.Wrap("accessories", rows.Err())
}

// fillAccessories loads the accessories of a page of artifacts of one
// repository in one query.
func (s *Service) fillAccessories(ctx context.Context, repoID int64, arts []Artifact) error {
	if len(arts) == 0 {
		return nil
	}
	idx := map[string][]int{}
	args := []any{repoID}
	for i, a := range arts {
		if _, ok := idx[a.Digest]; !ok {
			args = append(args, a.Digest)
		}
		idx[a.Digest] = append(idx[a.Digest], i)
		arts[i].Accessories = []Accessory{}
	}
	rows, err := s.db.Query(ctx, `SELECT `+accessoryCols+accessoryFrom+` WHERE x.repository_id = ? AND x.subject_digest IN (`+marks(len(args)-1)+`) ORDER BY x.created, x.id`, args...)
	if err != nil {
		return s.db.Wrap("accessories", err)
	}
	defer rows.Close()
	for rows.Next() {
		x, err := scanAccessory(rows)
		if err != nil {
			return s.db.Wrap("accessories", err)
		}
		for _, i := range idx[x.SubjectDigest] {
			arts[i].Accessories = append(arts[i].Accessories, x)
		}
	}
	return s.db.Wrap("accessories", rows.Err())
}

// maxAccessoryDepth bounds the accessories of accessories followed (a
// signature of an SBOM of an image is depth 2).
const maxAccessoryDepth = 8

// accessoryTree returns the digests of the accessories of dgst in repo,
// and of theirs, deepest first, each once.
func (s *Service) accessoryTree(ctx context.Context, repoID int64, dgst string) ([]string, error) {
	var out []string
	seen := map[string]bool{dgst: true}
	var walk func(d string, depth int) error
	walk = func(d string, depth int) error {
		if depth > maxAccessoryDepth {
			return errdefs.InvalidArgument(fmt.Errorf("accessories of %s nested deeper than %d", dgst, maxAccessoryDepth))
		}
		rows, err := s.db.Query(ctx, `SELECT a.digest FROM artifact_accessories x JOIN artifacts a ON a.id = x.artifact_id
			WHERE x.repository_id = ? AND x.subject_digest = ? ORDER BY a.digest`, repoID, d)
		if err != nil {
			return s.db.Wrap("accessories", err)
		}
		var children []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return s.db.Wrap("accessories", err)
			}
			children = append(children, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return s.db.Wrap("accessories", err)
		}
		for _, c := range children {
			if seen[c] {
				continue
			}
			seen[c] = true
			if err := walk(c, depth+1); err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	}
	return out, walk(dgst, 1)
}

// deleteAccessories deletes the accessories of dgst in repo (and theirs),
// as deleting the artifact does. An accessory that an index still lists,
// or that is gone already, stays or is skipped.
func (s *Service) deleteAccessories(ctx context.Context, repo Repository, dgst string) error {
	tree, err := s.accessoryTree(ctx, repo.ID, dgst)
	if err != nil {
		return err
	}
	for _, d := range tree {
		err := s.registry.DeleteManifest(ctx, repo.Name, d)
		if err != nil && !errors.Is(err, errdefs.ErrConflict) && !errdefs.IsNotFound(err) {
			return fmt.Errorf("deleting the accessory %s of %s@%s: %w", d, repo.Name, dgst, err)
		}
	}
	return nil
}

// copyAccessories copies the accessories of dgst (and theirs) from src
// into the repository dst, with their tags (cosign's legacy signature
// tags), after their subject was copied.
func (s *Service) copyAccessories(ctx context.Context, src Repository, dgst, dst string) error {
	tree, err := s.accessoryTree(ctx, src.ID, dgst)
	if err != nil {
		return err
	}
	// Subjects before their accessories: the tree lists them deepest first.
	for i := len(tree) - 1; i >= 0; i-- {
		d := tree[i]
		tags, err := s.tagNames(ctx, src.ID, d)
		if err != nil {
			return err
		}
		refs := tags
		if len(refs) == 0 {
			refs = []string{d}
		}
		for _, ref := range refs {
			if _, err := s.registry.Copy(ctx, src.Name, ref, dst); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("copying the accessory %s of %s@%s: %w", d, src.Name, dgst, err)
			}
		}
	}
	return nil
}

// tagNames lists the tags of the artifact dgst of a repository.
func (s *Service) tagNames(ctx context.Context, repoID int64, dgst string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT t.name FROM artifact_tags t JOIN artifacts a ON a.id = t.artifact_id WHERE a.repository_id = ? AND a.digest = ? ORDER BY t.name`, repoID, dgst)
	if err != nil {
		return nil, s.db.Wrap("tags", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, s.db.Wrap("tags", err)
		}
		out = append(out, n)
	}
	return out, s.db.Wrap("tags", rows.Err())
}
