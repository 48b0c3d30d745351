package meta

import "context"

// Parents lists the indexes of repo that reference the manifest dgst,
// in digest order: a signature policy that trusts an index trusts the
// images it lists.
func (s *SQL) Parents(ctx context.Context, repo, dgst string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT DISTINCT manifest FROM manifest_refs WHERE child = ? AND repo = ? AND manifest <> ? ORDER BY manifest`, dgst, repo, dgst)
	if err != nil {
		return nil, s.wrap("indexes listing "+dgst, err)
	}
	return s.strings(rows, "indexes listing "+dgst)
}
