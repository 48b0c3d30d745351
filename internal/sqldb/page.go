package sqldb

import "context"

// ListPage returns the rows of table that where (with args) selects, as
// scan reads them, in order (which may carry a LIMIT/OFFSET clause), and
// how many rows where selects in all. Errors name table.
func ListPage[T any](ctx context.Context, db *DB, table, cols, where string, args []any, order string, scan func(Row) (T, error)) ([]T, int64, error) {
	var total int64
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM `+table+where, args...).Scan(&total); err != nil {
		return nil, 0, db.Wrap(table, err)
	}
	rows, err := db.Query(ctx, `SELECT `+cols+` FROM `+table+where+` ORDER BY `+order, args...)
	if err != nil {
		return nil, 0, db.Wrap(table, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, 0, db.Wrap(table, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, db.Wrap(table, err)
	}
	return out, total, nil
}
