package query

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Kind is the type of a field's values.
type Kind int

// The kinds.
const (
	Text Kind = iota
	Int
	Time // stored as unix nanoseconds (sqldb.Nanos)
	Bool
)

// Field is a key a listing may filter or sort by.
type Field struct {
	// Column is the SQL expression the key stands for. With Match set it
	// is the column compared inside Match.
	Column string
	Kind   Kind
	// NoSort keeps the key out of sort.
	NoSort bool
	// Match, for keys with several values per row (an artifact's tags),
	// is an EXISTS subquery with one %s where the comparison goes:
	// "EXISTS (SELECT 1 FROM tags t WHERE t.artifact_id = a.id AND %s)".
	Match string
}

// Fields are the keys of a listing.
type Fields map[string]Field

// Page is a page of a listing.
type Page struct {
	Number int64 // from 1
	Size   int64 // 0: everything
}

// Clause is the SQL a query becomes: WHERE conditions (joined by AND, ""
// for none), their arguments, and the ORDER BY list.
type Clause struct {
	Where   string
	Args    []any
	OrderBy string
}

// WhereSQL returns extra and the conditions joined with AND, as a WHERE
// clause (or "").
func (c Clause) WhereSQL(extra ...string) string {
	var parts []string
	for _, e := range extra {
		if e != "" {
			parts = append(parts, e)
		}
	}
	if c.Where != "" {
		parts = append(parts, c.Where)
	}
	if len(parts) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(parts, " AND ")
}

// LimitSQL returns the LIMIT/OFFSET clause of p.
func (p Page) LimitSQL() string {
	if p.Size <= 0 {
		return ""
	}
	n := p.Number
	if n < 1 {
		n = 1
	}
	return " LIMIT " + strconv.FormatInt(p.Size, 10) + " OFFSET " + strconv.FormatInt((n-1)*p.Size, 10)
}

// SQL turns q into SQL over fields for dialect d. Keys not in fields are
// ignored; defaultOrder is used when q sorts by nothing known, and tie is
// appended to every order so pages are stable.
func (q Query) SQL(d sqldb.Dialect, fields Fields, defaultOrder, tie string) (Clause, error) {
	var c Clause
	var where []string
	for _, cond := range q.Conds {
		f, ok := fields[cond.Key]
		if !ok {
			continue
		}
		expr, args, err := condSQL(d, f, cond)
		if err != nil {
			return c, errdefs.InvalidArgument(fmt.Errorf("query %s: %w", cond.Key, err))
		}
		where = append(where, expr)
		c.Args = append(c.Args, args...)
	}
	c.Where = strings.Join(where, " AND ")
	var order []string
	for _, s := range q.Sorts {
		f, ok := fields[s.Key]
		if !ok || f.NoSort || f.Match != "" {
			continue
		}
		dir := " ASC"
		if s.Desc {
			dir = " DESC"
		}
		order = append(order, f.Column+dir)
	}
	if len(order) == 0 && defaultOrder != "" {
		order = append(order, defaultOrder)
	}
	if tie != "" {
		order = append(order, tie)
	}
	c.OrderBy = strings.Join(order, ", ")
	return c, nil
}

func condSQL(d sqldb.Dialect, f Field, c Cond) (string, []any, error) {
	one := func(op string, v any) (string, []any, error) {
		arg, err := convert(f.Kind, v)
		if err != nil {
			return "", nil, err
		}
		return wrap(f, f.Column+" "+op+" ?"), []any{arg}, nil
	}
	switch c.Op {
	case Exact:
		return one("=", c.Values[0])
	case Fuzzy:
		if f.Kind != Text {
			return one("=", c.Values[0])
		}
		s := fmt.Sprint(c.Values[0])
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
		return wrap(f, f.Column+" "+d.ILike+` ? ESCAPE '\'`), []any{"%" + esc + "%"}, nil
	case Range:
		var parts []string
		var args []any
		if c.Min != nil {
			a, err := convert(f.Kind, c.Min)
			if err != nil {
				return "", nil, err
			}
			parts, args = append(parts, f.Column+" >= ?"), append(args, a)
		}
		if c.Max != nil {
			a, err := convert(f.Kind, c.Max)
			if err != nil {
				return "", nil, err
			}
			parts, args = append(parts, f.Column+" <= ?"), append(args, a)
		}
		return wrap(f, strings.Join(parts, " AND ")), args, nil
	case AnyOf, AllOf:
		var args []any
		var marks []string
		for _, v := range c.Values {
			a, err := convert(f.Kind, v)
			if err != nil {
				return "", nil, err
			}
			args = append(args, a)
			marks = append(marks, "?")
		}
		if c.Op == AnyOf || f.Match == "" {
			if c.Op == AllOf && len(args) > 1 {
				// One value per row cannot equal several values.
				return "1 = 0", nil, nil
			}
			return wrap(f, f.Column+" IN ("+strings.Join(marks, ", ")+")"), args, nil
		}
		var parts []string
		for range args {
			parts = append(parts, wrap(f, f.Column+" = ?"))
		}
		return "(" + strings.Join(parts, " AND ") + ")", args, nil
	}
	return "", nil, fmt.Errorf("unknown operation")
}

func wrap(f Field, cmp string) string {
	if f.Match == "" {
		return "(" + cmp + ")"
	}
	return fmt.Sprintf(f.Match, cmp)
}

// convert makes a parsed value the field's kind.
func convert(k Kind, v any) (any, error) {
	switch k {
	case Int:
		switch x := v.(type) {
		case int64:
			return x, nil
		case string:
			i, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%q is not an integer", x)
			}
			return i, nil
		}
		return nil, fmt.Errorf("%v is not an integer", v)
	case Time:
		switch x := v.(type) {
		case time.Time:
			return sqldb.Nanos(x), nil
		case int64:
			return sqldb.Nanos(time.Unix(x, 0)), nil
		}
		return nil, fmt.Errorf("%v is not a time (2006-01-02T15:04:05)", v)
	case Bool:
		b, err := strconv.ParseBool(fmt.Sprint(v))
		if err != nil {
			return nil, fmt.Errorf("%v is not true or false", v)
		}
		return b, nil
	default:
		if t, ok := v.(time.Time); ok {
			return t.Format("2006-01-02T15:04:05"), nil
		}
		return fmt.Sprint(v), nil
	}
}
