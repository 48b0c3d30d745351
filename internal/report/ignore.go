package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// IgnoreFile holds the rules of an ignore file (.ladingignore). One rule a
// line; blank lines and lines starting with # are skipped, and a # after
// the rule starts a comment:
//
//	CVE-2023-1234                         # ignore everywhere
//	CVE-2023-5678 exp:2027-06-30          # until that date (inclusive)
//	GHSA-29mw-wpgm-hmr9 pkg:npm/lodash    # only for this package (any version)
//	CVE-2022-37434 pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1  # only this version
//	CVE-2021-3711 libssl1.1               # a package name works too
//
// The ID matches a finding's ID or any of its aliases. A rule past its
// expiry date no longer applies (Expired lists such rules so that they can
// be reported).
type IgnoreFile struct {
	Name  string
	Rules []IgnoreRule
}

// IgnoreRule is one line of an ignore file.
type IgnoreRule struct {
	Line    int
	ID      string
	Expires time.Time // zero: never
	Package string    // a purl or a package name; "" for every package
}

// ParseIgnoreFile reads an ignore file; name is how messages refer to it.
func ParseIgnoreFile(r io.Reader, name string) (*IgnoreFile, error) {
	f := &IgnoreFile{Name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		rule := IgnoreRule{Line: n, ID: fields[0]}
		for _, fl := range fields[1:] {
			switch {
			case strings.HasPrefix(fl, "exp:"):
				t, err := time.Parse("2006-01-02", strings.TrimPrefix(fl, "exp:"))
				if err != nil {
					return nil, fmt.Errorf("%s line %d: expiry %q: want exp:YYYY-MM-DD", name, n, fl)
				}
				rule.Expires = t
			case rule.Package == "":
				rule.Package = fl
			default:
				return nil, fmt.Errorf("%s line %d: unexpected %q (a rule is ID [exp:YYYY-MM-DD] [PACKAGE])", name, n, fl)
			}
		}
		f.Rules = append(f.Rules, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

// Match returns the first rule that applies to v on date now, or nil.
func (f *IgnoreFile) Match(v Finding, now time.Time) *IgnoreRule {
	for i := range f.Rules {
		r := &f.Rules[i]
		if !matchesID(r.ID, v) || r.expired(now) {
			continue
		}
		if r.Package == "" {
			return r
		}
		if strings.HasPrefix(r.Package, "pkg:") {
			if purlMatches(r.Package, v.PkgPURL) {
				return r
			}
		} else if r.Package == v.PkgName || r.Package == v.SrcName {
			return r
		}
	}
	return nil
}

func (r *IgnoreRule) expired(now time.Time) bool {
	// Inclusive: a rule that expires on a day still applies that day.
	return !r.Expires.IsZero() && now.After(r.Expires.Add(24*time.Hour))
}

// Expired returns the rules that have expired on date now.
func (f *IgnoreFile) Expired(now time.Time) []IgnoreRule {
	var out []IgnoreRule
	for _, r := range f.Rules {
		if r.expired(now) {
			out = append(out, r)
		}
	}
	return out
}
