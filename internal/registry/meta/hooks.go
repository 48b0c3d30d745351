package meta

import (
	"context"

	"github.com/lading-dev/lading/internal/sqldb"
)

// Hooks are told of changes inside the transaction that makes them, so
// that what others keep in step with the registry's content commits or
// fails with it: a project's storage quota counts linked blobs (and fails
// a link that would exceed it), Harbor's artifact view follows manifests
// and tags, and the audit log records pushes and deletions. A hook's error
// fails the change. Hooks must use tx for every query (a transaction that
// waited for a second connection could wait for ever), and must not
// assume they run once: a transaction may be retried.
type Hooks interface {
	// BlobLinked: a blob of size bytes was linked into repo (it was not
	// before).
	BlobLinked(ctx context.Context, tx *sqldb.Tx, repo, dgst string, size int64) error
	// BlobUnlinked: a blob's link into repo was removed.
	BlobUnlinked(ctx context.Context, tx *sqldb.Tx, repo, dgst string) error
	// ManifestPut: a manifest was recorded (m.Content holds its bytes)
	// and tags point at it.
	ManifestPut(ctx context.Context, tx *sqldb.Tx, repo string, m Manifest, tags []string) error
	// ManifestDeleted: a manifest and the tags pointing at it were
	// deleted.
	ManifestDeleted(ctx context.Context, tx *sqldb.Tx, repo, dgst string) error
	// TagPut: a tag was pointed at an existing manifest.
	TagPut(ctx context.Context, tx *sqldb.Tx, repo, tag, dgst string) error
	// TagDeleted: a tag was deleted.
	TagDeleted(ctx context.Context, tx *sqldb.Tx, repo, tag string) error
	// RepositoryDeleted: a repository, its manifests, tags and links were
	// deleted.
	RepositoryDeleted(ctx context.Context, tx *sqldb.Tx, repo string) error
}

type noHooks struct{}

func (noHooks) BlobLinked(context.Context, *sqldb.Tx, string, string, int64) error { return nil }
func (noHooks) BlobUnlinked(context.Context, *sqldb.Tx, string, string) error      { return nil }
func (noHooks) ManifestPut(context.Context, *sqldb.Tx, string, Manifest, []string) error {
	return nil
}
func (noHooks) ManifestDeleted(context.Context, *sqldb.Tx, string, string) error { return nil }
func (noHooks) TagPut(context.Context, *sqldb.Tx, string, string, string) error  { return nil }
func (noHooks) TagDeleted(context.Context, *sqldb.Tx, string, string) error      { return nil }
func (noHooks) RepositoryDeleted(context.Context, *sqldb.Tx, string) error       { return nil }
