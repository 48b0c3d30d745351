package selector

import (
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/errdefs"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"", "anything/at/all", true},
		{"**", "a/b/c", true},
		{"*", "a/b", false},
		{"*", "app", true},
		{"app/**", "app/web/x", true},
		{"**/web", "team/app/web", true},
		{"v*", "v1.2", true},
		{"v*", "latest", false},
		{"{v1,v2}.*", "v2.0", true},
		{"{v1,v2}.*", "v3.0", false},
		{"release-?", "release-1", true},
		{"release-?", "release-10", false},
		{"[0-9]*", "1.0", true},
		{"[0-9]*", "a1", false},
		{"lib/{a,b{c,d}}", "lib/bd", true},
		// A pattern that does not check matches nothing.
		{"[", "[", false},
		{strings.Repeat("{a,b}", 7), strings.Repeat("a", 7), false},
	} {
		if got := Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestSelects(t *testing.T) {
	matches := Selector{Kind: Kind, Decoration: Matches, Pattern: "v*"}
	excludes := Selector{Kind: Kind, Decoration: Excludes, Pattern: "v*"}
	for _, tc := range []struct {
		s    Selector
		tags []string
		want bool
	}{
		{matches, []string{"v1"}, true},
		{matches, []string{"latest", "v1"}, true},
		{matches, []string{"latest"}, false},
		{matches, nil, true}, // matches takes untagged artifacts by default
		{excludes, []string{"v1"}, false},
		{excludes, []string{"v1", "latest"}, true}, // one tag not excluded
		{excludes, nil, false},                     // excludes leaves untagged artifacts by default
		{Selector{Kind: Kind, Decoration: Matches, Pattern: "**", Extras: `{"untagged":false}`}, nil, false},
		{Selector{Kind: Kind, Decoration: Excludes, Pattern: "x", Extras: `{"untagged":true}`}, nil, true},
	} {
		if got := tc.s.SelectsTags(tc.tags); got != tc.want {
			t.Errorf("%s selects %q = %v, want %v", tc.s, tc.tags, got, tc.want)
		}
	}
	repo := Selector{Kind: Kind, Decoration: RepoMatches, Pattern: "team/**"}
	notRepo := Selector{Kind: Kind, Decoration: RepoExcludes, Pattern: "team/**"}
	for _, tc := range []struct {
		s    Selector
		name string
		want bool
	}{
		{repo, "team/app", true},
		{repo, "app", false},
		{notRepo, "team/app", false},
		{notRepo, "app", true},
		{Selector{Kind: Kind, Decoration: RepoMatches}, "any/thing", true},
	} {
		if got := tc.s.SelectsRepository(tc.name); got != tc.want {
			t.Errorf("%s selects %q = %v, want %v", tc.s, tc.name, got, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	ok := Selector{Kind: Kind, Decoration: Matches, Pattern: "**"}
	if err := Check(ok, TagDecorations); err != nil {
		t.Errorf("Check(%+v): %v", ok, err)
	}
	for _, tc := range []struct {
		name string
		s    Selector
		want string
	}{
		{"kind", Selector{Kind: "regexp", Decoration: Matches}, "kind"},
		{"decoration", Selector{Kind: Kind, Decoration: RepoMatches}, "decoration"},
		{"syntax", Selector{Kind: Kind, Decoration: Matches, Pattern: "v[1"}, "not a valid doublestar pattern"},
		{"long", Selector{Kind: Kind, Decoration: Matches, Pattern: strings.Repeat("a", MaxPattern+1)}, "at most"},
		{"alternatives", Selector{Kind: Kind, Decoration: Matches, Pattern: strings.Repeat("*{a,aa}", 8) + "c"}, "alternatives"},
		{"nested", Selector{Kind: Kind, Decoration: Matches, Pattern: strings.Repeat("{a,", 9) + strings.Repeat("}", 9)}, "nested"},
		{"control", Selector{Kind: Kind, Decoration: Matches, Pattern: "a\nb"}, "control"},
		{"extras", Selector{Kind: Kind, Decoration: Matches, Pattern: "*", Extras: "untagged"}, "extras"},
	} {
		err := Check(tc.s, TagDecorations)
		if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Check(%+v) = %v, want an invalid argument naming %q", tc.name, tc.s, err, tc.want)
		}
	}
}

func TestAlternatives(t *testing.T) {
	for _, tc := range []struct {
		p    string
		want int
	}{
		{"abc", 1},
		{"{a,b}", 2},
		{"{a,b}{c,d,e}", 6},
		{"{a,{b,c}}", 3},
		{"{a,b{c,d}}x{y,z}", 6},
		{`\{a,b\}`, 1},
		{"[{]a", 1},
	} {
		got, err := alternatives(tc.p)
		if err != nil || got != tc.want {
			t.Errorf("alternatives(%q) = %d, %v; want %d", tc.p, got, err, tc.want)
		}
	}
}

// FuzzMatch: any pattern and name, no panic; a pattern Check refuses
// matches nothing; the empty pattern matches everything.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{{"**", "a/b"}, {"{a,b}*", "ax"}, {"[a-", "x"}, {`\`, `\`}, {"*{a,aa}*{a,aa}", "aaaa"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(name) > 256 {
			name = name[:256]
		}
		got := Match(pattern, name)
		if pattern == "" && !got {
			t.Fatal("the empty pattern matched nothing")
		}
		if pattern != "" && CheckPattern(pattern) != nil && got {
			t.Fatalf("refused pattern %q matched %q", pattern, name)
		}
		s := Selector{Kind: Kind, Decoration: Matches, Pattern: pattern}
		_ = s.SelectsTags([]string{name})
		_ = s.String()
	})
}
