// Package query is the listing language of Harbor's API: the q and sort
// parameters of every list endpoint, parsed into a Query, and turned into
// parameterized SQL by the service that owns the listed table.
//
// The q syntax is Harbor's (src/lib/q): comma-separated conditions
//
//	k=v          exact match
//	k=~v         fuzzy match (v anywhere in the value, case-insensitive)
//	k=[min~max]  range (either end may be left open)
//	k={v1 v2}    any of the values
//	k=(v1 v2)    all of the values (for fields with several values)
//
// and sort is "k1,-k2" (a leading "-" sorts descending). Values that read
// as times (2006-01-02T15:04:05) or integers are taken as such.
//
// Nothing of q or sort reaches SQL as text: keys are looked up in the
// listing's Fields (unknown keys are ignored, as Harbor ignores them) and
// values are always bound as parameters.
package query

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Op is how a condition matches.
type Op int

// The operations.
const (
	Exact Op = iota
	Fuzzy
	Range
	AnyOf
	AllOf
)

// Cond is one condition of q.
type Cond struct {
	Key    string
	Op     Op
	Values []any // Exact, Fuzzy: one value; AnyOf, AllOf: the list
	Min    any   // Range: nil when open
	Max    any
}

// Sort is one key of sort.
type Sort struct {
	Key  string
	Desc bool
}

// Query is a parsed listing request.
type Query struct {
	Conds []Cond
	Sorts []Sort
}

// Limits on what a client may send.
const (
	maxQueryLen = 4096
	maxConds    = 32
	maxValues   = 100
)

// Parse parses q and sort.
func Parse(q, sort string) (Query, error) {
	var out Query
	if len(q) > maxQueryLen || len(sort) > maxQueryLen {
		return out, errdefs.InvalidArgument(fmt.Errorf("q or sort longer than %d bytes", maxQueryLen))
	}
	if u, err := url.QueryUnescape(q); err == nil {
		q = u
	}
	if q != "" {
		for param := range strings.SplitSeq(q, ",") {
			k, v, ok := strings.Cut(param, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" || v == "" {
				return out, errdefs.InvalidArgument(fmt.Errorf(`query %q: the query string must contain "=" and the key/value cannot be empty`, param))
			}
			c, err := parseCond(k, v)
			if err != nil {
				return out, errdefs.InvalidArgument(fmt.Errorf("query %q: invalid query string value: %w", param, err))
			}
			out.Conds = append(out.Conds, c)
			if len(out.Conds) > maxConds {
				return out, errdefs.InvalidArgument(fmt.Errorf("more than %d query conditions", maxConds))
			}
		}
	}
	if sort != "" {
		for s := range strings.SplitSeq(sort, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			k, desc := strings.CutPrefix(s, "-")
			out.Sorts = append(out.Sorts, Sort{Key: k, Desc: desc})
			if len(out.Sorts) > maxConds {
				return out, errdefs.InvalidArgument(fmt.Errorf("more than %d sort keys", maxConds))
			}
		}
	}
	return out, nil
}

func parseCond(k, v string) (Cond, error) {
	c := Cond{Key: k}
	switch v[0] {
	case '~':
		if len(v) < 2 {
			return c, fmt.Errorf(`fuzzy match value must start with "~" and contain at least 1 other character`)
		}
		c.Op, c.Values = Fuzzy, []any{v[1:]}
	case '[':
		if v[len(v)-1] != ']' || strings.Count(v, "~") != 1 || len(v) < 3 {
			return c, fmt.Errorf(`range must start with "[", end with "]" and contain only one "~"`)
		}
		lo, hi, _ := strings.Cut(v[1:len(v)-1], "~")
		lo, hi = strings.TrimSpace(lo), strings.TrimSpace(hi)
		if lo == "" && hi == "" {
			return c, fmt.Errorf("a range needs a minimum or a maximum")
		}
		c.Op = Range
		if lo != "" {
			c.Min = parseValue(lo)
		}
		if hi != "" {
			c.Max = parseValue(hi)
		}
	case '{', '(':
		end := byte('}')
		c.Op = AnyOf
		if v[0] == '(' {
			end, c.Op = ')', AllOf
		}
		if v[len(v)-1] != end || len(v) < 2 {
			return c, fmt.Errorf("list must start with %q and end with %q", v[0], end)
		}
		for s := range strings.SplitSeq(v[1:len(v)-1], " ") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			c.Values = append(c.Values, parseValue(s))
			if len(c.Values) > maxValues {
				return c, fmt.Errorf("more than %d values", maxValues)
			}
		}
		if len(c.Values) == 0 {
			return c, fmt.Errorf("empty list")
		}
	default:
		if v[0] == '\\' {
			v = v[1:]
		}
		c.Op, c.Values = Exact, []any{v}
	}
	return c, nil
}

// parseValue reads a time, an integer or else a string, as Harbor does.
func parseValue(s string) any {
	s = strings.TrimSpace(s)
	if t, err := time.Parse("2006-01-02T15:04:05", s); err == nil {
		return t
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	return strings.Trim(s, `"'`)
}

// Get returns the value of an exact condition on key, if q has one.
func (q Query) Get(key string) (string, bool) {
	for _, c := range q.Conds {
		if c.Key == key && c.Op == Exact && len(c.Values) == 1 {
			return fmt.Sprint(c.Values[0]), true
		}
	}
	return "", false
}

// With returns q with an exact condition added.
func (q Query) With(key string, value any) Query {
	q.Conds = append(append([]Cond{}, q.Conds...), Cond{Key: key, Op: Exact, Values: []any{value}})
	return q
}

// WithFuzzy returns q with a fuzzy condition added.
func (q Query) WithFuzzy(key, value string) Query {
	q.Conds = append(append([]Cond{}, q.Conds...), Cond{Key: key, Op: Fuzzy, Values: []any{value}})
	return q
}
