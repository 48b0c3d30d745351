// Package selector is Harbor's selectors (src/lib/selector): the
// repository and tag filters of immutable tag rules and retention rules.
// A selector has a kind ("doublestar", the only one), a decoration
// (matches, excludes, repoMatches, repoExcludes, nsMatches, nsExcludes), a
// pattern and, for tag selectors, extras ({"untagged": true} makes the
// selector take artifacts that have no tag).
//
// Patterns are doublestar globs (github.com/bmatcuk/doublestar/v4, as
// Harbor's): "*" and "?" within a path component, "**" across them,
// "[abc]" classes and "{a,b}" alternatives; the empty pattern matches
// everything. Matching is bounded: "*" and "**" are matched by
// doublestar's backtracking to the last star, linear in the name for each
// star, and the one source of blow-up, alternatives, is limited when a
// selector is checked (Check): at most MaxAlternatives expansions of a
// pattern of at most MaxPattern bytes. Names are bounded by the registry
// (255 bytes for repositories, 128 for tags). A pattern that was stored
// before these limits is still matched through the same check, so no
// stored rule can make a push hang.
package selector

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Kind is the one kind of selector.
const Kind = "doublestar"

// Decorations.
const (
	Matches      = "matches"
	Excludes     = "excludes"
	RepoMatches  = "repoMatches"
	RepoExcludes = "repoExcludes"
	NSMatches    = "nsMatches"
	NSExcludes   = "nsExcludes"
)

// TagDecorations and RepoDecorations are the decorations of tag and
// repository selectors.
var (
	TagDecorations  = []string{Matches, Excludes}
	RepoDecorations = []string{RepoMatches, RepoExcludes}
)

// Limits of a pattern.
const (
	MaxPattern      = 256
	MaxAlternatives = 64
	maxExtras       = 256
)

// Selector is one of Harbor's selectors.
type Selector struct {
	Kind       string `json:"kind"`
	Decoration string `json:"decoration"`
	Pattern    string `json:"pattern"`
	Extras     string `json:"extras,omitempty"`
}

// String describes the selector for logs and errors: `tags matching "v*"`.
func (s Selector) String() string {
	what := "tags"
	switch s.Decoration {
	case RepoMatches, RepoExcludes:
		what = "repositories"
	case NSMatches, NSExcludes:
		what = "namespaces"
	}
	verb := "matching"
	if strings.HasSuffix(strings.ToLower(s.Decoration), "excludes") {
		verb = "excluding"
	}
	p := s.Pattern
	if p == "" {
		p = "**"
	}
	out := fmt.Sprintf("%s %s %q", what, verb, p)
	if what == "tags" && s.Untagged() {
		out += " (and untagged artifacts)"
	}
	return out
}

// Check validates a selector whose decoration must be one of allowed.
func Check(s Selector, allowed []string) error {
	if s.Kind != Kind {
		return errdefs.InvalidArgument(fmt.Errorf("selector kind %.32q: only %q is supported", s.Kind, Kind))
	}
	if !slices.Contains(allowed, s.Decoration) {
		return errdefs.InvalidArgument(fmt.Errorf("selector decoration %.32q: want one of %s", s.Decoration, strings.Join(allowed, ", ")))
	}
	if err := CheckPattern(s.Pattern); err != nil {
		return err
	}
	if len(s.Extras) > maxExtras {
		return errdefs.InvalidArgument(fmt.Errorf("selector extras longer than %d bytes", maxExtras))
	}
	if s.Extras != "" {
		var x struct {
			Untagged *bool `json:"untagged"`
		}
		if err := json.Unmarshal([]byte(s.Extras), &x); err != nil {
			return errdefs.InvalidArgument(fmt.Errorf("selector extras %.64q: want JSON such as {\"untagged\":true}: %v", s.Extras, err))
		}
	}
	return nil
}

// CheckPattern validates a pattern: doublestar syntax, at most MaxPattern
// bytes, at most MaxAlternatives expansions of its {a,b} alternatives, no
// control characters.
func CheckPattern(p string) error {
	if len(p) > MaxPattern {
		return errdefs.InvalidArgument(fmt.Errorf("pattern of %d bytes: at most %d", len(p), MaxPattern))
	}
	if strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errdefs.InvalidArgument(fmt.Errorf("pattern %.64q holds control characters", p))
	}
	if !doublestar.ValidatePattern(p) {
		return errdefs.InvalidArgument(fmt.Errorf("pattern %.64q is not a valid doublestar pattern (unbalanced [ ] or { }, or a trailing \\)", p))
	}
	n, err := alternatives(p)
	if err != nil {
		return errdefs.InvalidArgument(fmt.Errorf("pattern %.64q: %v", p, err))
	}
	if n > MaxAlternatives {
		return errdefs.InvalidArgument(fmt.Errorf("pattern %.64q expands to %d alternatives: at most %d", p, n, MaxAlternatives))
	}
	return nil
}

var errTooMany = errors.New("too many alternatives")

// alternatives counts the expansions of a pattern's {a,b} groups: groups
// in sequence multiply, alternatives of a group add (nested groups
// counted within their alternative). The count saturates past a bound.
func alternatives(p string) (int, error) {
	n, rest, err := altSeq(p, 0)
	if err != nil {
		return 0, err
	}
	if rest != "" {
		return 0, fmt.Errorf("unbalanced }")
	}
	return n, nil
}

const saturate = 1 << 20

// altSeq counts a sequence up to an unescaped ',' or '}' at depth > 0 and
// returns what is left (starting with that character).
func altSeq(p string, depth int) (int, string, error) {
	n := 1
	for len(p) > 0 {
		switch c := p[0]; {
		case c == '\\' && len(p) > 1:
			p = p[2:]
		case c == '[':
			// A class holds no groups; skip to its end.
			end := strings.IndexByte(p[1:], ']')
			if end < 0 {
				return 0, "", fmt.Errorf("unbalanced [")
			}
			p = p[end+2:]
		case c == '{':
			if depth >= 8 {
				return 0, "", fmt.Errorf("alternatives nested deeper than 8")
			}
			sum := 0
			p = p[1:]
			for {
				m, rest, err := altSeq(p, depth+1)
				if err != nil {
					return 0, "", err
				}
				sum = min(sum+m, saturate)
				if rest == "" {
					return 0, "", fmt.Errorf("unbalanced {")
				}
				p = rest[1:]
				if rest[0] == '}' {
					break
				}
			}
			n = min(n*sum, saturate)
		case (c == ',' || c == '}') && depth > 0:
			return n, p, nil
		default:
			p = p[1:]
		}
	}
	return n, "", nil
}

// Match reports whether name matches pattern; the empty pattern matches
// everything, as in Harbor. A pattern that fails CheckPattern matches
// nothing.
func Match(pattern, name string) bool {
	if pattern == "" {
		return true
	}
	if CheckPattern(pattern) != nil {
		return false
	}
	ok, err := doublestar.Match(pattern, name)
	return err == nil && ok
}

// Untagged reports whether a tag selector takes artifacts without tags:
// its extras say so, else yes for "matches" and no for "excludes"
// (Harbor's defaults).
func (s Selector) Untagged() bool {
	untagged := s.Decoration != Excludes
	if s.Extras != "" {
		var x struct {
			Untagged *bool `json:"untagged"`
		}
		if json.Unmarshal([]byte(s.Extras), &x) == nil && x.Untagged != nil {
			untagged = *x.Untagged
		}
	}
	return untagged
}

// SelectsRepository reports whether a repository selector takes the
// repository name (within its project, as Harbor matches it); a selector
// of another kind of decoration takes everything.
func (s Selector) SelectsRepository(name string) bool {
	switch s.Decoration {
	case RepoMatches, NSMatches:
		return Match(s.Pattern, name)
	case RepoExcludes, NSExcludes:
		return !Match(s.Pattern, name)
	}
	return true
}

// SelectsTags reports whether a tag selector takes an artifact with tags:
// "matches" takes it when one of its tags matches, "excludes" when one of
// its tags does not; an artifact without tags is taken when Untagged.
func (s Selector) SelectsTags(tags []string) bool {
	if len(tags) == 0 {
		return s.Untagged()
	}
	for _, t := range tags {
		m := Match(s.Pattern, t)
		if s.Decoration == Excludes {
			m = !m
		}
		if m {
			return true
		}
	}
	return false
}

// Tag reports whether one tag is taken by a tag selector ("matches": it
// matches; "excludes": it does not).
func (s Selector) Tag(tag string) bool { return s.SelectsTags([]string{tag}) }
