package npm

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lading-dev/lading/internal/pkg"
)

// ParseYarnLock reads a yarn.lock: yarn classic's own format, or yarn
// berry's YAML (told by its __metadata key).
func ParseYarnLock(b []byte) ([]pkg.Package, error) {
	if bytes.Contains(b, []byte("\n__metadata:")) || bytes.HasPrefix(b, []byte("__metadata:")) {
		return parseBerry(b)
	}
	return parseClassic(b)
}

// parseClassic reads yarn classic's format: unindented lines list the
// specifiers an entry resolves ("a@^1.0.0", "a@^1.1.0":), the indented
// "version" line gives the version.
func parseClassic(b []byte) ([]pkg.Package, error) {
	var out []pkg.Package
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	name := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" || line[0] == '#':
		case line[0] != ' ':
			name = ""
			first, _, _ := strings.Cut(strings.TrimSuffix(line, ":"), ",")
			first = strings.Trim(strings.TrimSpace(first), `"`)
			if n, spec, ok := splitNameSpec(first); ok && !nonRegistrySpec(spec) {
				name = n
				if alias, ok := strings.CutPrefix(spec, "npm:"); ok {
					name, _, _ = splitNameSpec(alias)
				}
			}
		case name != "" && strings.HasPrefix(line, "  version "):
			v := strings.Trim(strings.TrimSpace(line[len("  version "):]), `"`)
			if p, ok := registryPackage(name, v); ok {
				out = append(out, p)
			}
			name = ""
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("yarn.lock: %w", err)
	}
	return out, nil
}

func nonRegistrySpec(spec string) bool {
	for _, p := range []string{"file:", "link:", "portal:", "workspace:", "git", "http:", "https:", "github:"} {
		if strings.HasPrefix(spec, p) {
			return true
		}
	}
	return false
}

// parseBerry reads yarn berry's YAML lockfile, whose entries have a
// resolution "name@npm:1.2.3"; other protocols (workspace:, patch: of a
// non-npm package, link:, portal:, file:, git) are not registry packages.
func parseBerry(b []byte) ([]pkg.Package, error) {
	var doc map[string]struct {
		Version    string `yaml:"version"`
		Resolution string `yaml:"resolution"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("yarn.lock: %w", err)
	}
	var out []pkg.Package
	for key, e := range doc {
		if key == "__metadata" {
			continue
		}
		res := e.Resolution
		if _, patched, ok := strings.Cut(res, "@patch:"); ok {
			// "a@patch:a@npm%3A1.0.0#…" patches a registry package.
			res, _, _ = strings.Cut(strings.ReplaceAll(patched, "%3A", ":"), "#")
		}
		i := strings.Index(res, "@npm:")
		if i <= 0 {
			continue
		}
		name, version := res[:i], res[i+len("@npm:"):]
		if p, ok := registryPackage(name, version); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// ParsePnpmLock reads a pnpm-lock.yaml: its packages map, keyed
// "/name/1.2.3" (version 5), "/name@1.2.3" (version 6) or "name@1.2.3"
// (version 9), with peer-dependency suffixes ("(peer@1)", "_peer@1").
func ParsePnpmLock(b []byte) ([]pkg.Package, error) {
	var doc struct {
		LockfileVersion any `yaml:"lockfileVersion"`
		Packages        map[string]struct {
			Dev     *bool  `yaml:"dev"`
			Name    string `yaml:"name"`
			Version string `yaml:"version"`
		} `yaml:"packages"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("pnpm-lock.yaml: %w", err)
	}
	v5 := strings.HasPrefix(fmt.Sprint(doc.LockfileVersion), "5")
	var out []pkg.Package
	for key, e := range doc.Packages {
		k := strings.TrimPrefix(key, "/")
		if i := strings.IndexByte(k, '('); i > 0 {
			k = k[:i]
		}
		var name, version string
		if v5 {
			if i := strings.IndexByte(k, '_'); i > 0 {
				k = k[:i]
			}
			i := strings.LastIndexByte(k, '/')
			if i <= 0 {
				continue
			}
			name, version = k[:i], k[i+1:]
		} else {
			var ok bool
			if name, version, ok = splitNameSpec(k); !ok {
				continue
			}
		}
		if e.Name != "" && e.Version != "" { // tarball and git dependencies
			continue
		}
		p, ok := registryPackage(name, version)
		if !ok {
			continue
		}
		if e.Dev != nil {
			p.Dev = *e.Dev
		}
		out = append(out, p)
	}
	return out, nil
}
