package project

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lading-dev/lading/internal/errdefs"
)

// MetadataByName returns the id of the project name and the values of the
// metadata keys asked for (a key the project does not set is absent), in
// one query and without access checks: for the registry's pull policies,
// which ask on every pull and decide for themselves. A project that does
// not exist is errdefs.ErrNotFound.
func (s *Service) MetadataByName(ctx context.Context, name string, keys ...string) (int64, map[string]string, error) {
	args := []any{name}
	in := ""
	for i, k := range keys {
		if i > 0 {
			in += ", "
		}
		in += "?"
		args = append(args, k)
	}
	cond := "FALSE"
	if len(keys) > 0 {
		cond = "m.name IN (" + in + ")"
	}
	rows, err := s.db.Query(ctx, `SELECT p.id, m.name, m.value FROM projects p LEFT JOIN project_metadata m ON m.project_id = p.id AND `+cond+` WHERE p.name = ?`,
		append(args[1:], name)...)
	if err != nil {
		return 0, nil, s.db.Wrap("project metadata", err)
	}
	defer rows.Close()
	id := int64(-1)
	md := map[string]string{}
	for rows.Next() {
		var k, v sql.NullString
		if err := rows.Scan(&id, &k, &v); err != nil {
			return 0, nil, s.db.Wrap("project metadata", err)
		}
		if k.Valid {
			md[k.String] = v.String
		}
	}
	if err := rows.Err(); err != nil {
		return 0, nil, s.db.Wrap("project metadata", err)
	}
	if id < 0 {
		return 0, nil, errdefs.NotFound(fmt.Errorf("project %s not found", name))
	}
	return id, md, nil
}
