package project

import (
	"context"

	"github.com/lading-dev/lading/internal/sqldb"
)

// SetMetadataTx sets a project's metadata in tx, without permission
// checks: for services that keep a key in step with their own change
// (retention's retention_id), in its transaction.
func (s *Service) SetMetadataTx(ctx context.Context, tx *sqldb.Tx, projectID int64, md map[string]string) error {
	if err := CheckMetadata(md); err != nil {
		return err
	}
	return s.setMetadata(ctx, tx, projectID, md)
}

// DeleteMetadataTx removes a metadata key of a project in tx, without
// permission checks (see SetMetadataTx).
func (s *Service) DeleteMetadataTx(ctx context.Context, tx *sqldb.Tx, projectID int64, key string) error {
	_, err := tx.Exec(ctx, `DELETE FROM project_metadata WHERE project_id = ? AND name = ?`, projectID, key)
	return err
}

// TotalStorage is the storage every project uses together, each blob
// counted once however many projects hold it (/statistics).
func (s *Service) TotalStorage(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRow(ctx, `SELECT COALESCE(SUM(size), 0) FROM (SELECT digest, MAX(size) AS size FROM project_blobs GROUP BY digest) b`).Scan(&n)
	return n, s.db.Wrap("total storage", err)
}
