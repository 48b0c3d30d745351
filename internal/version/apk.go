package version

import "fmt"

// apk versions: digit{.digit}...{letter}{_suffix{digit}}...{-rdigit}.
//
// This is lading's own implementation of the ordering apk-tools 2.14 applies
// (Alpine 3.18 and later; the apk in the corpus' Alpine 3.20 image). The
// usual Go library for it, github.com/knqyf263/go-apk-version, follows the
// rules apk-tools had before its 2023 fix of leading-zero handling (apk-tools
// issue #10880) and so orders "1.0_rc1" after "1.0" and "6.0_pre1" after
// "6.0", where apk answers the opposite; a scanner would then call a
// pre-release newer than its final release. The tests compare this
// implementation with `apk version -t` on generated and hand-picked pairs.
//
// A version is read as a stream of tokens. Each token has a kind and an
// integer value; the kind of each token is decided by the previous token
// and the separator in front of it:
//
//	first number   kindDigit          value: the number
//	.number        kindDigitOrZero    value: the number; if it starts with
//	                                  "0", first a token of value -(zeros-1)
//	                                  and then the number as kindDigit
//	letter         kindLetter         value: the byte
//	_suffix        kindSuffix         alpha..rc: -4..-1; cvs, svn, git, hg, p: 0..4
//	suffix number  kindSuffixNo       value: the number
//	-rN            kindRevisionNo     value: N
//
// Two versions compare token by token. At the first token whose values
// differ, the smaller value is the smaller version. At the first position
// where the kinds differ, a pre-release suffix (negative value) makes its
// version the smaller one; otherwise the version whose token kind comes later
// in the list above (the end of the string coming last of all) is the
// smaller one, so "1.0" < "1.0.1" and "1.0-r1" < "1.0a".
type apkKind int8

const (
	apkInvalid apkKind = iota - 1
	apkDigitOrZero
	apkDigit
	apkLetter
	apkSuffix
	apkSuffixNo
	apkRevisionNo
	apkEnd
)

type apkToken struct {
	kind apkKind
	val  int64
}

var (
	apkPreSuffixes  = []string{"alpha", "beta", "pre", "rc"}
	apkPostSuffixes = []string{"cvs", "svn", "git", "hg", "p"}
)

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isLower(c byte) bool { return 'a' <= c && c <= 'z' }

// apkTokens splits v into tokens; ok is false when v is not a valid apk
// version.
func apkTokens(v string) (toks []apkToken, ok bool) {
	kind := apkDigit
	for s := v; ; {
		if kind == apkEnd || len(s) == 0 {
			return toks, true
		}
		if kind == apkInvalid {
			return toks, false
		}
		var (
			val    int64
			n      int     // bytes of s the token takes
			forced apkKind = apkInvalid
		)
		switch kind {
		case apkDigitOrZero:
			if s[0] == '0' {
				// A run of zeros in front of a component: one token
				// for all zeros but the last, then the rest (with its
				// last zero) as a plain number.
				for n+1 < len(s) && s[n+1] == '0' {
					n++
				}
				val, forced = int64(-n), apkDigit
				break
			}
			fallthrough
		case apkDigit, apkSuffixNo, apkRevisionNo:
			for n < len(s) && isDigit(s[n]) {
				val = val*10 + int64(s[n]-'0')
				n++
			}
			if n >= 18 {
				return toks, false
			}
		case apkLetter:
			val, n = int64(s[0]), 1
		case apkSuffix:
			val, n = apkSuffixValue(s)
			if n == 0 {
				return toks, false
			}
		}
		toks = append(toks, apkToken{kind, val})
		s = s[n:]
		switch {
		case len(s) == 0:
			kind = apkEnd
		case forced != apkInvalid:
			kind = forced
		default:
			kind, s = apkNextKind(kind, s)
		}
	}
}

// apkSuffixValue reads a suffix name at the start of s and returns its value
// and length; length 0 means no known suffix.
func apkSuffixValue(s string) (int64, int) {
	for i, p := range apkPreSuffixes {
		if len(s) >= len(p) && s[:len(p)] == p {
			return int64(i - len(apkPreSuffixes)), len(p)
		}
	}
	for i, p := range apkPostSuffixes {
		if len(s) >= len(p) && s[:len(p)] == p {
			return int64(i), len(p)
		}
	}
	return 0, 0
}

// apkNextKind decides the kind of the token at the start of s, which follows
// a token of kind prev, and skips its separator.
func apkNextKind(prev apkKind, s string) (apkKind, string) {
	var next apkKind
	switch c := s[0]; {
	case (prev == apkDigit || prev == apkDigitOrZero) && isLower(c):
		return apkLetter, s
	case prev == apkLetter && isDigit(c):
		return apkDigit, s
	case prev == apkSuffix && isDigit(c):
		return apkSuffixNo, s
	case c == '.':
		next, s = apkDigitOrZero, s[1:]
	case c == '_':
		next, s = apkSuffix, s[1:]
	case c == '-' && len(s) > 1 && s[1] == 'r':
		next, s = apkRevisionNo, s[2:]
	default:
		return apkInvalid, s
	}
	// The kinds only move forward, with three exceptions: another
	// component after a number or a letter, another suffix after a suffix
	// number.
	if next < prev && !(next == apkDigitOrZero && prev == apkDigit) &&
		!(next == apkSuffix && prev == apkSuffixNo) && !(next == apkDigit && prev == apkLetter) {
		return apkInvalid, s
	}
	return next, s
}

// apkParse returns the tokens of a valid apk version.
func apkParse(v string) ([]apkToken, error) {
	toks, ok := apkTokens(v)
	if !ok || v == "" {
		return nil, fmt.Errorf("not valid")
	}
	return toks, nil
}

// apkCompare compares the tokens of two valid versions.
func apkCompare(ta, tb []apkToken) int {
	at := func(ts []apkToken, i int) apkToken {
		if i < len(ts) {
			return ts[i]
		}
		return apkToken{kind: apkEnd}
	}
	for i := 0; ; i++ {
		x, y := at(ta, i), at(tb, i)
		if x.kind != y.kind {
			switch {
			case x.kind == apkSuffix && x.val < 0:
				return -1
			case y.kind == apkSuffix && y.val < 0:
				return 1
			case x.kind > y.kind:
				return -1
			default:
				return 1
			}
		}
		if x.kind == apkEnd {
			return 0
		}
		if x.val != y.val {
			if x.val < y.val {
				return -1
			}
			return 1
		}
	}
}

// String helps debugging.
func (t apkToken) String() string { return fmt.Sprintf("%d:%d", t.kind, t.val) }
