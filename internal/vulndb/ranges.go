package vulndb

import (
	"slices"

	"github.com/lading-dev/lading/internal/version"
)

// Comparators returns the comparators for a namespace's ranges: the
// ecosystem's own scheme, and the one for ranges of kind SEMVER (Go's own
// for Go, whose module versions are semver with a "v").
func Comparators(namespace string) (eco, semver version.Comparator) {
	s := version.SchemeOf(namespace)
	eco = version.For(s)
	if s == version.Go {
		return eco, eco
	}
	return eco, version.For(version.SemVer)
}

// comparatorFor picks the comparator of a range kind.
func comparatorFor(k RangeKind, eco, semver version.Comparator) version.Comparator {
	if k == RangeSemVer {
		return semver
	}
	return eco
}

// Contains reports whether version v is inside the range and, when it is,
// the version that fixes it ("" when the range has no fix after v). An npm
// range holds the versions that satisfy Expr and not Fixed. Events
// are evaluated as the OSV specification does: in version order, an
// introduced event at or below v enters the range, a fixed event at or below v
// or a last_affected event below v leaves it; v at or above a limit is
// outside. c orders the range's versions (see Comparators).
func (r Range) Contains(c version.Comparator, v string) (in bool, fix string, err error) {
	if r.Kind == RangeNPM {
		in, err := version.NPMSatisfies(r.Expr, v)
		if err != nil || !in {
			return false, "", err
		}
		// The patched versions are not affected, even where the
		// advisory's vulnerable_versions is written wider ("mqtt >=2.0.0,
		// patched >=2.15.0"; backports: "protobufjs <=6.8.5, patched
		// >=5.0.3 <6.0.0 || >=6.8.6").
		if r.Fixed != "" {
			if patched, err := version.NPMSatisfies(r.Fixed, v); err == nil && patched {
				return false, "", nil
			}
		}
		return true, r.Fixed, nil
	}
	for _, e := range r.Events {
		if e.Kind == Limit && e.Version != "*" {
			n, err := c.Compare(v, e.Version)
			if err != nil {
				return false, "", err
			}
			if n >= 0 {
				return false, "", nil
			}
		}
	}
	entered := -1
	for i, e := range r.Events {
		switch e.Kind {
		case Introduced:
			if e.Version == "0" {
				in, entered = true, i
				continue
			}
			n, err := c.Compare(v, e.Version)
			if err != nil {
				return false, "", err
			}
			if n >= 0 {
				in, entered = true, i
			}
		case Fixed:
			n, err := c.Compare(v, e.Version)
			if err != nil {
				return false, "", err
			}
			if n >= 0 {
				in = false
			}
		case LastAffected:
			n, err := c.Compare(v, e.Version)
			if err != nil {
				return false, "", err
			}
			if n > 0 {
				in = false
			}
		}
	}
	if !in {
		return false, "", nil
	}
	// The fix is the first fixed event after the introduced event that
	// let v in, unless a last_affected event comes first.
	for _, e := range r.Events[entered+1:] {
		switch e.Kind {
		case Fixed:
			return true, e.Version, nil
		case LastAffected:
			return true, "", nil
		}
	}
	return true, "", nil
}

// Affects reports whether the advisory covers version v of its package and
// which versions fix it (none when the advisory's status applies: affected
// without a fix, will not fix, ...). eco and semver come from Comparators.
func (a Advisory) Affects(eco, semver version.Comparator, v string) (affected bool, fixes []string, err error) {
	if a.Status == StatusNotAffected {
		return false, nil, nil
	}
	if len(a.Ranges) == 0 && len(a.Versions) == 0 {
		return true, nil, nil
	}
	var firstErr error
	for _, r := range a.Ranges {
		in, fix, err := r.Contains(comparatorFor(r.Kind, eco, semver), v)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if in {
			affected = true
			if fix != "" && !slices.Contains(fixes, fix) {
				fixes = append(fixes, fix)
			}
		}
	}
	if !affected {
		for _, x := range a.Versions {
			if x == v {
				return true, nil, nil
			}
			if n, err := eco.Compare(v, x); err == nil && n == 0 {
				return true, nil, nil
			}
		}
	}
	if !affected && firstErr != nil {
		return false, nil, firstErr
	}
	return affected, fixes, nil
}

// sortEvents puts a range's events in version order ("0" first), the order
// Contains expects, and drops duplicates. Events at one version keep the
// order the record lists them in, as osv.dev's own expansion of ranges into
// versions does: "introduced X, fixed X" is an empty interval, but "fixed
// 3.1.1" listed before "introduced 3.1.1" closes one interval and opens the
// next (PYSEC-2022-236), so 3.1.1 is affected. It leaves the events as they
// are when a version cannot be ordered, and reports whether it sorted them.
func sortEvents(c version.Comparator, evs []Event) ([]Event, bool) {
	ok := true
	cmp := func(a, b Event) int {
		switch {
		case a.Version == b.Version:
			return 0
		case a.Kind == Introduced && a.Version == "0":
			return -1
		case b.Kind == Introduced && b.Version == "0":
			return 1
		case a.Kind == Limit && a.Version == "*":
			return 1
		case b.Kind == Limit && b.Version == "*":
			return -1
		}
		n, err := c.Compare(a.Version, b.Version)
		if err != nil {
			ok = false
			return 0
		}
		return n
	}
	sorted := slices.Clone(evs)
	slices.SortStableFunc(sorted, cmp)
	if !ok {
		return evs, false
	}
	return slices.Compact(sorted), true
}
