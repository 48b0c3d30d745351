// Package meta holds the registry's metadata: repositories, which blobs each
// repository may see (blob links), manifests and what they reference, tags,
// referrers and upload sessions. Content itself lives in registry/storage.
//
// The metadata is reached through role interfaces (Blobs, Manifests,
// Uploads, Collector), composed into Store; SQL implements Store for any
// database/sql driver through a Dialect, and the subpackages open the two supported databases:
// meta/sqlite (the default, a file under the lading root) and meta/postgres
// (when a PostgreSQL URL is configured). Both run the conformance suite in
// meta/metatest.
//
// # Blob lifecycle and garbage collection
//
// A blob row moves through three states so that blob writes and an online
// garbage collector, possibly in another process, never lose content a
// manifest names:
//
//	         ClaimBlob               CommitBlob
//	(none) ────────────► pending ───────────────► present
//	                        │                        │
//	                        └──────── MarkDeleting ──┘ (unreferenced, idle
//	                                      │             for the grace window)
//	                                      ▼
//	                                  deleting ── ForgetBlob ──► (none)
//
// A writer receives and verifies the content first (invisibly, in a
// storage.Writer), then claims the digest, makes the content visible and
// commits the row. A claim (on a new row or on a present one) protects the
// blob from the collector until the commit, or for 15 minutes if the writer
// dies, whatever the collector's grace window. The collector marks a blob deleting
// (re-checking, under the row's lock, that no manifest references it and
// that nothing claimed or linked it within the grace window), deletes the
// content, then forgets the row. A claim that finds a blob deleting waits
// for the collector (ErrUnavailable) while the collector lives: a row
// marked deleting names its collection, whose Lock dies with the
// collector's process (or database session), and a claim takes over at
// once a row whose collector is gone. PutManifest accepts only present
// blobs, under the same lock, so a manifest either sees its blobs present
// and protects them or is refused.
package meta

import (
	"context"
	"fmt"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
)

// The metadata is used in roles, each a narrow interface that one kind of
// consumer takes, as containerd composes its content store: the
// distribution API's blob handlers take Blobs, its manifest handlers
// Manifests, its upload handlers Uploads (all three together are API), the
// garbage collector takes Collector, and only the server that opens and
// closes the database holds the whole Store. Every method may block on the
// database and honours ctx.

// Blobs is the role of blob rows and their links into repositories: what
// blob reads, writes, mounts and deletes need.
type Blobs interface {
	// ClaimBlob announces that content for dgst is about to be written to
	// storage, and reports whether the content is already present (the
	// writer may then skip writing it). It fails with
	// errdefs.ErrUnavailable while the collector deletes that blob.
	ClaimBlob(ctx context.Context, dgst string) (present bool, err error)
	// CommitBlob records dgst as present with its size and links it into
	// repo (creating the repository). An empty repo links nowhere.
	CommitBlob(ctx context.Context, repo, dgst string, size int64) error
	// Blob returns the blob dgst if it is present and linked into repo.
	Blob(ctx context.Context, repo, dgst string) (Blob, error)
	// LinkBlob links a present blob into repo (a cross-repository mount)
	// and refreshes the link's time.
	LinkBlob(ctx context.Context, repo, dgst string) error
	// UnlinkBlob removes the blob from repo. It fails with
	// errdefs.ErrConflict while a manifest of repo references the blob.
	UnlinkBlob(ctx context.Context, repo, dgst string) error
	// BlobRepositories lists up to limit repositories that link dgst.
	BlobRepositories(ctx context.Context, dgst string, limit int) ([]string, error)
}

// Manifests is the role of manifests and what points at them: tags,
// referrers, and the listings of tags and repositories.
type Manifests interface {
	// PutManifest records a manifest whose content is a claimed or present
	// blob (it becomes present), and points tags at it. Every digest in
	// m.Blobs must be a blob linked into repo and every digest in
	// m.Manifests a manifest of repo; otherwise it fails with a
	// *MissingError (class errdefs.ErrNotFound). A size in m.Sizes that
	// is not the stored one fails with a *SizeError (class
	// errdefs.ErrInvalidArgument).
	PutManifest(ctx context.Context, repo string, m Manifest, tags []string) error
	// Manifest returns the manifest dgst of repo.
	Manifest(ctx context.Context, repo, dgst string) (Manifest, error)
	// Tag returns the manifest that tag points at.
	Tag(ctx context.Context, repo, tag string) (Manifest, error)
	// DeleteManifest deletes a manifest and the tags that point at it. It
	// fails with errdefs.ErrConflict while an index of repo references it.
	DeleteManifest(ctx context.Context, repo, dgst string) error
	// DeleteTag deletes a tag, not the manifest it points at.
	DeleteTag(ctx context.Context, repo, tag string) error
	// PutTag points tag at the manifest dgst of repo (ErrNotFound
	// without it).
	PutTag(ctx context.Context, repo, tag, dgst string) error
	// DeleteRepository deletes a repository's manifests, tags, blob links
	// and upload sessions (ErrNotFound for an unknown repository). The
	// blobs stay for the collector.
	DeleteRepository(ctx context.Context, repo string) error
	// Tags lists up to n tags of repo after last, in lexical (byte)
	// order; n < 0 means all. An unknown repository is errdefs.ErrNotFound.
	Tags(ctx context.Context, repo, last string, n int) ([]string, error)
	// Repositories lists up to n repositories after last, in lexical order.
	Repositories(ctx context.Context, last string, n int) ([]string, error)
	// Referrers lists the manifests of repo whose subject is dgst,
	// filtered by artifactType when it is not empty.
	Referrers(ctx context.Context, repo, dgst, artifactType string) ([]Descriptor, error)
}

// Uploads is the role of upload sessions, as the API's upload handlers use
// them.
type Uploads interface {
	// CreateUpload starts an upload session.
	CreateUpload(ctx context.Context, u Upload) error
	// Upload returns the session id of repo.
	Upload(ctx context.Context, repo, id string) (Upload, error)
	// UpdateUpload replaces a session's progress if its size is still
	// prevSize (compare and swap); otherwise errdefs.ErrConflict.
	UpdateUpload(ctx context.Context, u Upload, prevSize int64) error
	// DeleteUpload ends a session whose size is still size (or any size
	// when size < 0); errdefs.ErrConflict if it moved, ErrNotFound if gone.
	DeleteUpload(ctx context.Context, repo, id string, size int64) error
	// CloseUpload ends a session whose size is still size and claims dgst
	// for its content, in one step (see ClaimBlob); ErrConflict if the
	// session moved, ErrNotFound if it is gone, ErrUnavailable (and the
	// session kept) while the collector deletes dgst.
	CloseUpload(ctx context.Context, repo, id string, size int64, dgst string) (present bool, err error)
}

// API is what serving the distribution API needs: blobs, manifests and
// upload sessions, and nothing of the collector's.
type API interface {
	Blobs
	Manifests
	Uploads
}

// Collector is the garbage collector's role: finding and deleting
// unreferenced blobs, and expiring idle upload sessions.
type Collector interface {
	// GCCandidates lists up to limit blobs after the digest after, in
	// digest order, that no manifest references and that nothing claimed,
	// committed or linked since before, plus blobs left deleting by an
	// interrupted collection.
	GCCandidates(ctx context.Context, before time.Time, after string, limit int) ([]Blob, error)
	// GCCandidatesUntagged is GCCandidates as if the manifests that
	// Untagged lists for untaggedBefore were deleted: what a collection
	// that first deletes untagged manifests would collect (its dry run).
	GCCandidatesUntagged(ctx context.Context, before, untaggedBefore time.Time, after string, limit int) ([]Blob, error)
	// LockCollection starts a collection: it waits until no other
	// collection of the database runs and takes the database's
	// collection lock (see Lock). The caller releases it.
	LockCollection(ctx context.Context) (*Lock, error)
	// MarkDeleting re-checks a candidate under its row lock and marks it
	// deleting, in the name of the collection holding l. It reports false
	// when the blob is no longer collectable. A digest without a row is
	// recorded as deleting (an orphan file).
	MarkDeleting(ctx context.Context, l *Lock, dgst string, before time.Time) (bool, error)
	// ForgetBlob removes a deleting blob's row and links.
	ForgetBlob(ctx context.Context, dgst string) error
	// GlobalBlob returns the blob dgst if it is present, linked or not
	// (content that no present row names is an orphan).
	GlobalBlob(ctx context.Context, dgst string) (Blob, error)
	// PresentBlobs returns which of digests GlobalBlob finds, in one
	// query (the orphan walk asks about storage's files in batches).
	PresentBlobs(ctx context.Context, digests []string) (map[string]bool, error)
	// StaleUploads lists up to limit sessions not updated since before.
	StaleUploads(ctx context.Context, before time.Time, limit int) ([]Upload, error)
	// UploadExists reports whether a session with this id exists.
	UploadExists(ctx context.Context, id string) (bool, error)
	// DeleteUpload is Uploads.DeleteUpload: the collector expires a stale
	// session with it, at the size it saw.
	DeleteUpload(ctx context.Context, repo, id string, size int64) error
}

// Store is the whole metadata store: every role, and Close. Only what opens
// the database holds it.
type Store interface {
	API
	Collector
	// Close releases the database.
	Close() error
}

// Blob states.
const (
	StatePending  = "pending"
	StatePresent  = "present"
	StateDeleting = "deleting"
)

// Blob is a blob's row.
type Blob struct {
	Digest  string
	Size    int64
	State   string
	Updated time.Time
}

// Manifest is a manifest's metadata; its content is the blob Digest.
type Manifest struct {
	Digest       string
	MediaType    string
	Size         int64
	ArtifactType string            // for the referrers API
	Subject      string            // digest of the subject, or ""
	Annotations  map[string]string // for the referrers API
	Blobs        []string          // blobs it requires (config, layers)
	Manifests    []string          // manifests it requires (index entries)
	// Sizes are the sizes the manifest states for digests of Blobs and
	// Manifests; PutManifest refuses a size that is not the stored one
	// (a digest absent from Sizes is not checked).
	Sizes   map[string]int64
	Created time.Time
	// Content is the manifest's bytes, when the writer has them: given
	// to the hooks (which read what they need of it), never stored here
	// (the content is a blob in storage).
	Content []byte
}

// Descriptor is an entry of a referrers list.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// Upload is an upload session: the chunks received so far, in order.
type Upload struct {
	ID        string
	Repo      string
	Size      int64    // bytes received: the sum of the chunks' sizes
	Chunks    []string // storage names of the chunks, in order
	HashState []byte   // the running sha256 over the chunks, marshalled
	Created   time.Time
	Updated   time.Time
}

// MissingError says which blob or manifest a manifest names that the
// repository does not have.
type MissingError struct {
	Repo     string
	Digest   string
	Manifest bool // a manifest (index entry), not a blob
}

func (e *MissingError) Error() string {
	what := "blob"
	if e.Manifest {
		what = "manifest"
	}
	return fmt.Sprintf("%s %s is not in repository %s", what, e.Digest, e.Repo)
}

// Unwrap makes a MissingError of class errdefs.ErrNotFound.
func (e *MissingError) Unwrap() error { return errdefs.ErrNotFound }

// SizeError says that a manifest states a size for a blob or manifest it
// references that is not the size the repository holds.
type SizeError struct {
	Repo     string
	Digest   string
	Manifest bool  // a manifest (index entry), not a blob
	Stated   int64 // what the manifest says
	Stored   int64 // what the repository holds
}

func (e *SizeError) Error() string {
	what := "blob"
	if e.Manifest {
		what = "manifest"
	}
	return fmt.Sprintf("%s %s is stated as %d bytes, but %s holds %d bytes", what, e.Digest, e.Stated, e.Repo, e.Stored)
}

// Unwrap makes a SizeError of class errdefs.ErrInvalidArgument.
func (e *SizeError) Unwrap() error { return errdefs.ErrInvalidArgument }
