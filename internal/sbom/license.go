package sbom

import (
	"strings"
)

// spdxIDs are the SPDX license identifiers that packages commonly declare,
// by lower-case form. A license string made only of these (and the
// exceptions below, with AND, OR, WITH and parentheses) is written as an
// SPDX expression; anything else as a name.
var spdxIDs = func() map[string]string {
	ids := []string{
		"0BSD", "AFL-2.1", "AFL-3.0", "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-1.1", "Apache-2.0",
		"Artistic-1.0", "Artistic-1.0-Perl", "Artistic-2.0", "BlueOak-1.0.0", "BSD-1-Clause", "BSD-2-Clause",
		"BSD-2-Clause-Patent", "BSD-3-Clause", "BSD-3-Clause-Clear", "BSD-4-Clause", "BSL-1.0", "bzip2-1.0.6",
		"CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC0-1.0", "CDDL-1.0", "CDDL-1.1",
		"CPL-1.0", "curl", "EPL-1.0", "EPL-2.0", "EUPL-1.1", "EUPL-1.2", "FTL", "GFDL-1.2-only",
		"GFDL-1.2-or-later", "GFDL-1.3-only", "GFDL-1.3-or-later", "GPL-1.0-only", "GPL-1.0-or-later",
		"GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later", "HPND", "ICU", "IJG", "ISC",
		"LGPL-2.0-only", "LGPL-2.0-or-later", "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only",
		"LGPL-3.0-or-later", "Libpng", "libtiff", "MirOS", "MIT", "MIT-0", "MPL-1.1", "MPL-2.0",
		"MPL-2.0-no-copyleft-exception", "MS-PL", "NCSA", "OFL-1.1", "OpenSSL", "OLDAP-2.8", "PHP-3.01",
		"PostgreSQL", "PSF-2.0", "Python-2.0", "Ruby", "Sleepycat", "Unicode-DFS-2016", "Unicode-3.0",
		"Unlicense", "UPL-1.0", "Vim", "W3C", "WTFPL", "X11", "Zlib", "ZPL-2.1",
		// Deprecated forms that are still SPDX identifiers.
		"GPL-2.0", "GPL-2.0+", "GPL-3.0", "GPL-3.0+", "LGPL-2.0", "LGPL-2.0+", "LGPL-2.1", "LGPL-2.1+",
		"LGPL-3.0", "LGPL-3.0+", "AGPL-3.0", "GPL-1.0", "GPL-1.0+",
	}
	m := make(map[string]string, len(ids))
	for _, id := range ids {
		m[strings.ToLower(id)] = id
	}
	return m
}()

var spdxExceptions = func() map[string]string {
	m := map[string]string{}
	for _, id := range []string{"Classpath-exception-2.0", "GCC-exception-3.1", "LLVM-exception", "OpenSSL-exception", "Autoconf-exception-3.0", "Bison-exception-2.2", "Linux-syscall-note"} {
		m[strings.ToLower(id)] = id
	}
	return m
}()

// license is a package's license string, classified.
type license struct {
	raw string
	// id is the canonical SPDX identifier when raw is exactly one.
	id string
	// expr is the canonical SPDX expression when raw is one (a compound one
	// or a single identifier).
	expr string
}

func classify(raw string) license {
	l := license{raw: raw}
	if id, ok := spdxIDs[strings.ToLower(strings.TrimSpace(raw))]; ok {
		l.id, l.expr = id, id
		return l
	}
	l.expr = spdxExpression(raw)
	return l
}

// spdxExpression returns raw as a canonical SPDX expression, or "" when it
// is not one.
func spdxExpression(raw string) string {
	s := strings.NewReplacer("(", " ( ", ")", " ) ").Replace(raw)
	toks := strings.Fields(s)
	if len(toks) == 0 {
		return ""
	}
	depth := 0
	wantOperand := true
	afterWith := false
	for i, t := range toks {
		switch up := strings.ToUpper(t); {
		case t == "(":
			if !wantOperand {
				return ""
			}
			depth++
		case t == ")":
			if wantOperand || depth == 0 {
				return ""
			}
			depth--
		case up == "AND" || up == "OR" || up == "WITH":
			if wantOperand {
				return ""
			}
			toks[i] = up
			wantOperand, afterWith = true, up == "WITH"
		default:
			if !wantOperand {
				return ""
			}
			var id string
			var ok bool
			if afterWith {
				id, ok = spdxExceptions[strings.ToLower(t)]
			} else {
				id, ok = spdxIDs[strings.ToLower(t)]
				if !ok && strings.HasPrefix(t, "LicenseRef-") {
					id, ok = t, true
				}
			}
			if !ok {
				return ""
			}
			toks[i] = id
			wantOperand, afterWith = false, false
		}
	}
	if wantOperand || depth != 0 {
		return ""
	}
	return strings.ReplaceAll(strings.ReplaceAll(strings.Join(toks, " "), "( ", "("), " )", ")")
}

// licenseRef makes a LicenseRef identifier of a license name: idstring is
// letters, digits, "." and "-".
func licenseRef(name string) string {
	var b strings.Builder
	b.WriteString("LicenseRef-")
	dash := false
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}
