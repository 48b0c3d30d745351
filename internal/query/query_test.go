package query_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sqldb/sqldbtest"
)

func TestParse(t *testing.T) {
	ts := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		q, sort string
		want    query.Query
		bad     bool
	}{
		{q: "", want: query.Query{}},
		{q: "name=library", want: query.Query{Conds: []query.Cond{{Key: "name", Op: query.Exact, Values: []any{"library"}}}}},
		{q: "name=~lib", want: query.Query{Conds: []query.Cond{{Key: "name", Op: query.Fuzzy, Values: []any{"lib"}}}}},
		{q: "id=[1~5]", want: query.Query{Conds: []query.Cond{{Key: "id", Op: query.Range, Min: int64(1), Max: int64(5)}}}},
		{q: "op_time=[2024-05-01T10:00:00~]", want: query.Query{Conds: []query.Cond{{Key: "op_time", Op: query.Range, Min: ts}}}},
		{q: "tags={a b  c}", want: query.Query{Conds: []query.Cond{{Key: "tags", Op: query.AnyOf, Values: []any{"a", "b", "c"}}}}},
		{q: "tags=(a b)", want: query.Query{Conds: []query.Cond{{Key: "tags", Op: query.AllOf, Values: []any{"a", "b"}}}}},
		{q: "name%3Dx", want: query.Query{Conds: []query.Cond{{Key: "name", Op: query.Exact, Values: []any{"x"}}}}},
		{q: `name=\~x`, want: query.Query{Conds: []query.Cond{{Key: "name", Op: query.Exact, Values: []any{"~x"}}}}},
		{sort: "name,-creation_time", want: query.Query{Sorts: []query.Sort{{Key: "name"}, {Key: "creation_time", Desc: true}}}},
		{q: "name", bad: true},
		{q: "=x", bad: true},
		{q: "name=", bad: true},
		{q: "name=~", bad: true},
		{q: "id=[1~2~3]", bad: true},
		{q: "id=[~]", bad: true},
		{q: "id=[1~5", bad: true},
		{q: "tags={a b", bad: true},
		{q: "tags={}", bad: true},
		{q: strings.Repeat("a=b,", 2000), bad: true},
	} {
		got, err := query.Parse(tc.q, tc.sort)
		if tc.bad {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("Parse(%.40q): %v, want an invalid argument", tc.q, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", tc.q, tc.sort, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Parse(%q, %q) (-want +got):\n%s", tc.q, tc.sort, diff)
		}
	}
}

var fields = query.Fields{
	"name":    {Column: "t.name"},
	"size":    {Column: "t.size", Kind: query.Int},
	"created": {Column: "t.created", Kind: query.Time},
	"public":  {Column: "t.public", Kind: query.Bool},
	"label":   {Column: "l.label", Match: "EXISTS (SELECT 1 FROM labels l WHERE l.thing = t.id AND %s)", NoSort: true},
}

var schema = []sqldb.Migration{{Owner: "test", Name: "things", SQL: []string{
	`CREATE TABLE things (id {{id}}, name {{text}} NOT NULL, size {{int}} NOT NULL, created {{int}} NOT NULL, public {{bool}} NOT NULL)`,
	`CREATE TABLE labels (thing {{int}} NOT NULL, label {{text}} NOT NULL)`,
}}}

// TestSQL runs queries, hostile ones included, against a real database and
// checks which rows come back.
func TestSQL(t *testing.T) {
	sqldbtest.Each(t, schema, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		rows := []struct {
			name   string
			size   int64
			public bool
			labels []string
		}{
			{"alpha", 10, true, []string{"x", "y"}},
			{"beta", 20, false, []string{"x"}},
			{"gam_ma", 30, true, nil},
			{"Delta%", 40, false, []string{"y"}},
		}
		for i, r := range rows {
			err := db.Tx(ctx, "insert", func(tx *sqldb.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO things (name, size, created, public) VALUES (?, ?, ?, ?)`, r.name, r.size, sqldb.Nanos(t0.Add(time.Duration(i)*24*time.Hour)), r.public); err != nil {
					return err
				}
				for _, l := range r.labels {
					if _, err := tx.Exec(ctx, `INSERT INTO labels (thing, label) VALUES (?, ?)`, i+1, l); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			q, sort string
			want    []string
			bad     bool
		}{
			{q: "", want: []string{"Delta%", "alpha", "beta", "gam_ma"}},
			{q: "name=alpha", want: []string{"alpha"}},
			{q: "name=~ET", want: []string{"beta"}},
			{q: "name=~_", want: []string{"gam_ma"}},
			{q: "name=~%", want: []string{"Delta%"}},
			{q: "size=[15~35]", want: []string{"beta", "gam_ma"}},
			{q: "size=[~15]", want: []string{"alpha"}},
			{q: "created=[2024-01-02T00:00:00~2024-01-03T00:00:00]", want: []string{"beta", "gam_ma"}},
			{q: "public=true", want: []string{"alpha", "gam_ma"}},
			{q: "name={alpha beta zeta}", want: []string{"alpha", "beta"}},
			{q: "label={y}", want: []string{"Delta%", "alpha"}},
			{q: "label=(x y)", want: []string{"alpha"}},
			{q: "name=(alpha beta)", want: nil},
			{q: "nosuchkey=1", want: []string{"Delta%", "alpha", "beta", "gam_ma"}},
			{sort: "-size", want: []string{"Delta%", "gam_ma", "beta", "alpha"}},
			{sort: "size;DROP TABLE things,-size", want: []string{"Delta%", "gam_ma", "beta", "alpha"}},
			// Injection attempts are values, never SQL.
			{q: "name=' OR '1'='1", want: nil},
			{q: "name=alpha' --", want: nil},
			{q: "name=~' OR 1=1 --", want: nil},
			{q: "name={alpha') OR (1=1}", want: nil},
			{q: "size=1 OR 1=1", bad: true},
			{q: "size=[1~2 OR 1=1]", bad: true},
			{q: "public=yes", bad: true},
			{sort: "name DESC; DROP TABLE things", want: []string{"Delta%", "alpha", "beta", "gam_ma"}},
		} {
			q, err := query.Parse(tc.q, tc.sort)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.q, err)
			}
			c, err := q.SQL(db.Dialect(), fields, "t.name ASC", "t.id")
			if tc.bad {
				if !errdefs.IsInvalidArgument(err) {
					t.Errorf("q=%q: %v, want an invalid argument", tc.q, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("q=%q: %v", tc.q, err)
			}
			stmt := "SELECT t.name FROM things t" + c.WhereSQL() + " ORDER BY " + c.OrderBy
			rs, err := db.Query(ctx, stmt, c.Args...)
			if err != nil {
				t.Fatalf("q=%q: %s: %v", tc.q, stmt, err)
			}
			var got []string
			for rs.Next() {
				var n string
				rs.Scan(&n)
				got = append(got, n)
			}
			rs.Close()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("q=%q sort=%q (-want +got):\n%s", tc.q, tc.sort, diff)
			}
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM things`).Scan(&n); err != nil || n != 4 {
			t.Errorf("table after the queries: %d rows, %v", n, err)
		}
	})
}

func TestPage(t *testing.T) {
	for _, tc := range []struct {
		p    query.Page
		want string
	}{
		{query.Page{}, ""},
		{query.Page{Number: 1, Size: 10}, " LIMIT 10 OFFSET 0"},
		{query.Page{Number: 3, Size: 10}, " LIMIT 10 OFFSET 20"},
		{query.Page{Number: 0, Size: 5}, " LIMIT 5 OFFSET 0"},
	} {
		if got := tc.p.LimitSQL(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
		}
	}
}

// FuzzParse checks that no q or sort makes the parser or the SQL builder
// panic, and that the SQL built never contains the client's text.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"name=a", "a=~b,c=[1~2]", "t={a b}", "t=(a b)", "x=[~2024-01-01T00:00:00]", "'=';--", "name=\\x"} {
		f.Add(s, "name,-size")
	}
	d := sqldb.Dialect{Numbered: true, ILike: "ILIKE"}
	f.Fuzz(func(t *testing.T, q, sort string) {
		p, err := query.Parse(q, sort)
		if err != nil {
			return
		}
		c, err := p.SQL(d, fields, "t.name", "t.id")
		if err != nil {
			return
		}
		all := c.Where + " " + c.OrderBy
		allowed := strings.NewReplacer("t.name", "", "t.size", "", "t.created", "", "t.public", "", "l.label", "", "l.thing", "", "t.id", "",
			"EXISTS (SELECT 1 FROM labels l WHERE", "", "ILIKE", "", "ESCAPE", "", `'\'`, "", "IN", "", "AND", "", "ASC", "", "DESC", "", "1 = 0", "").Replace(all)
		if strings.Trim(allowed, " ()=<>?,.10") != "" || strings.ContainsFunc(allowed, func(r rune) bool { return !strings.ContainsRune(" ()=<>?,.10", r) }) {
			t.Fatalf("SQL %q carries client text: %q", all, allowed)
		}
		_ = fmt.Sprint(c.Args...)
	})
}
