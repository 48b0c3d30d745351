// Package alpine reads the Alpine Linux security database (secdb): one file
// per release and repository (v3.10/main.yaml, v3.20/community.json), listing
// for each source package the versions that fixed which vulnerabilities:
//
//	distroversion: v3.10
//	reponame: main
//	packages:
//	  - pkg:
//	      name: openssl
//	      secfixes:
//	        1.1.1d-r0:
//	          - CVE-2019-1547
//	        0:
//	          - CVE-2019-0000
//
// The package names are the aports' names, which installed packages carry as
// their origin (libcrypto1.1's origin is openssl). A fixed version of "0"
// means the package was never affected. An entry may name several IDs: one
// CVE with other IDs of the same flaw ("CVE-2017-8904 XSA-214") is one
// record with aliases; several CVEs are several records. Both YAML and JSON
// are read.
package alpine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/lading-dev/lading/internal/vulndb"
)

// Source is the data source name.
const Source = "alpine-secdb"

type secdb struct {
	DistroVersion string `json:"distroversion" yaml:"distroversion"`
	RepoName      string `json:"reponame" yaml:"reponame"`
	Packages      []struct {
		Pkg struct {
			Name     string              `json:"name" yaml:"name"`
			Secfixes map[string][]string `json:"secfixes" yaml:"secfixes"`
		} `json:"pkg" yaml:"pkg"`
	} `json:"packages" yaml:"packages"`
}

var (
	releaseDir = regexp.MustCompile(`^v\d+\.\d+$|^edge$`)
	idPattern  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*-[0-9A-Za-z][0-9A-Za-z:._-]*$`)
)

// Parse reads one secdb file; name is its path (its directory names the
// release when the file does not).
func Parse(ctx context.Context, r io.Reader, name string, sink vulndb.Sink) error {
	br := bufio.NewReader(r)
	head, _ := br.Peek(1)
	var db secdb
	if len(head) == 1 && head[0] == '{' {
		if err := json.NewDecoder(br).Decode(&db); err != nil {
			return fmt.Errorf("%s: secdb JSON: %w", name, err)
		}
	} else if err := yaml.NewDecoder(br).Decode(&db); err != nil {
		return fmt.Errorf("%s: secdb YAML: %w", name, err)
	}
	release := strings.TrimSpace(db.DistroVersion)
	if release == "" {
		if d := path.Base(path.Dir(strings.ReplaceAll(name, "\\", "/"))); releaseDir.MatchString(d) {
			release = d
		}
	}
	if release == "" {
		return fmt.Errorf("%s: secdb without distroversion", name)
	}
	ns := vulndb.DistroNamespace("alpine", release)
	for i, p := range db.Packages {
		if err := ctx.Err(); err != nil {
			return err
		}
		pkg := strings.TrimSpace(p.Pkg.Name)
		if pkg == "" {
			sink.Skip(Source, "malformed record", fmt.Errorf("%s: package %d has no name", name, i))
			continue
		}
		// In the file's order would be best; a YAML map has none, so in
		// a fixed one: the records, and the advisories merged from them,
		// come out the same on every build.
		for _, fixed := range slices.Sorted(maps.Keys(p.Pkg.Secfixes)) {
			entries := p.Pkg.Secfixes[fixed]
			fixed = strings.TrimSpace(fixed)
			for _, e := range entries {
				recs := records(e)
				if len(recs) == 0 || fixed == "" {
					sink.Skip(Source, "malformed record", fmt.Errorf("%s: %s %s: entry %q", name, pkg, fixed, e))
					continue
				}
				a := vulndb.Affected{Namespace: ns, Package: pkg}
				if fixed == "0" {
					a.Status = vulndb.StatusNotAffected
				} else {
					a.Ranges = []vulndb.Range{{Events: []vulndb.Event{{Kind: vulndb.Introduced, Version: "0"}, {Kind: vulndb.Fixed, Version: fixed}}}}
				}
				for _, r := range recs {
					r.Source, r.Affected = Source, []vulndb.Affected{a}
					sink.Add(r)
				}
			}
		}
	}
	return nil
}

// records reads the IDs in one secfixes entry: one record per CVE, or one
// record for the first other ID; other IDs are aliases of a lone CVE.
func records(entry string) []vulndb.Record {
	var cves, others []string
	for _, f := range strings.Fields(entry) {
		f = strings.Trim(f, ",;()")
		if strings.HasPrefix(f, "CVE_") { // a typo the files have
			f = "CVE-" + f[4:]
		}
		switch {
		case strings.HasPrefix(f, "CVE-") && idPattern.MatchString(f):
			cves = append(cves, f)
		case idPattern.MatchString(f):
			others = append(others, f)
		}
	}
	switch {
	case len(cves) == 1:
		return []vulndb.Record{{ID: cves[0], Aliases: others}}
	case len(cves) > 1:
		out := make([]vulndb.Record, len(cves))
		for i, c := range cves {
			out[i].ID = c
		}
		return out
	case len(others) > 0:
		return []vulndb.Record{{ID: others[0], Aliases: others[1:]}}
	}
	return nil
}

// Sniff reports whether head, the start of a file, looks like a secdb file.
func Sniff(head []byte) bool {
	return bytes.Contains(head, []byte("distroversion")) && bytes.Contains(head, []byte("packages"))
}
