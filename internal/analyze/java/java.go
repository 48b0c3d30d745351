// Package java finds Maven packages in Java archives (jar, war, ear, and
// Jenkins' jpi and hpi): one package for each
// META-INF/maven/GROUP/ARTIFACT/pom.properties, and, in an archive without
// any, one from META-INF/MANIFEST.MF when it names a group
// (Implementation-Vendor-Id) and a version. Archives inside archives
// (WEB-INF/lib/*.jar, BOOT-INF/lib/*.jar) are read too, four levels deep at
// most and within a budget of decompressed bytes, so a zip bomb costs a
// warning, not the disk or the memory.
//
// A package's location is the archive's path, with "!ENTRY" for each
// nested archive ("/app.war!WEB-INF/lib/log4j-core-2.14.1.jar").
package java

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/pkg"
)

// Analyzer finds Maven packages in archives.
type Analyzer struct{}

// New returns the analyzer.
func New() Analyzer { return Analyzer{} }

func (Analyzer) Name() string { return "java" }
func (Analyzer) Version() int { return 1 }

// Limits.
const (
	MaxArchive   = 2 << 30   // an archive in a layer
	MaxNested    = 512 << 20 // one nested archive, decompressed
	MaxExpanded  = 1 << 30   // all nested archives of one archive, decompressed
	MaxDepth     = 4         // archives in archives in ...
	maxSmallFile = 1 << 20   // pom.properties, MANIFEST.MF
	maxEntries   = 1 << 20
)

func isArchive(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".jar", ".war", ".ear", ".jpi", ".hpi":
		return true
	}
	return false
}

func (Analyzer) Wants(p string, _ fs.FileInfo) bool { return isArchive(p) }

func (Analyzer) Analyze(ctx context.Context, f *analyzer.File) (*analyzer.Result, error) {
	head, err := f.Peek(4)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(head, []byte("PK")) {
		return nil, fmt.Errorf("not a zip archive")
	}
	r, err := f.ReaderAt(MaxArchive)
	if err != nil {
		return nil, err
	}
	s := &scan{ctx: ctx, f: f, budget: MaxExpanded}
	err = s.archive(r, f.Size(), "/"+f.Path, path.Base(f.Path), 0)
	if err != nil && len(s.pkgs) == 0 {
		return nil, err
	}
	if err != nil {
		s.warnings = append(s.warnings, err.Error())
	}
	if len(s.pkgs) == 0 && len(s.warnings) == 0 {
		return nil, nil
	}
	return &analyzer.Result{Type: "jar", Packages: s.pkgs, Warnings: s.warnings}, nil
}

type scan struct {
	ctx      context.Context
	f        *analyzer.File
	budget   int64
	pkgs     []pkg.Package
	warnings []string
}

// archive reads one archive; loc is its location, name its file name.
func (s *scan) archive(r io.ReaderAt, size int64, loc, name string, depth int) error {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("%s: %w", loc, err)
	}
	if len(zr.File) > maxEntries {
		return fmt.Errorf("%s: %d entries, over the limit of %d", loc, len(zr.File), maxEntries)
	}
	found := false
	var manifest map[string]string
	for _, zf := range zr.File {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		switch n := zf.Name; {
		case isPomProperties(n):
			props, err := readSmall(zf)
			if err != nil {
				s.warnings = append(s.warnings, fmt.Sprintf("%s!%s: %v", loc, n, err))
				continue
			}
			if p, ok := fromPomProperties(props); ok {
				p.Location = loc
				s.pkgs = append(s.pkgs, p)
				found = true
			}
		case strings.EqualFold(n, "META-INF/MANIFEST.MF"):
			b, err := readSmall(zf)
			if err == nil {
				manifest = parseManifest(b)
			}
		case isArchive(n) && !zf.FileInfo().IsDir():
			if depth+1 >= MaxDepth {
				s.warnings = append(s.warnings, fmt.Sprintf("%s!%s: archive nested deeper than %d levels, not read", loc, n, MaxDepth))
				continue
			}
			if err := s.nested(zf, loc+"!"+n, depth+1); err != nil {
				s.warnings = append(s.warnings, err.Error())
			}
		}
	}
	if !found && manifest != nil {
		if p, ok := fromManifest(manifest, name); ok {
			p.Location = loc
			s.pkgs = append(s.pkgs, p)
		}
	}
	return nil
}

// nested reads an archive inside an archive, buffered like a file.
func (s *scan) nested(zf *zip.File, loc string, depth int) error {
	n := zf.UncompressedSize64
	if n > MaxNested || int64(n) > s.budget {
		return fmt.Errorf("%s: %s decompressed, over the limit for nested archives; not read", loc, analyzer.HumanSize(int64(n)))
	}
	s.budget -= int64(n)
	rc, err := zf.Open()
	if err != nil {
		return fmt.Errorf("%s: %w", loc, err)
	}
	defer rc.Close()
	buf, err := s.f.Buffer(rc, int64(n))
	if err != nil {
		return fmt.Errorf("%s: %w", loc, err)
	}
	defer buf.Close()
	return s.archive(buf, int64(n), loc, path.Base(zf.Name), depth)
}

func readSmall(zf *zip.File) ([]byte, error) {
	if zf.UncompressedSize64 > maxSmallFile {
		return nil, fmt.Errorf("%s decompressed, over the limit of %s", analyzer.HumanSize(int64(zf.UncompressedSize64)), analyzer.HumanSize(maxSmallFile))
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxSmallFile))
}

// isPomProperties matches META-INF/maven/GROUP/ARTIFACT/pom.properties.
func isPomProperties(n string) bool {
	rest, ok := strings.CutPrefix(n, "META-INF/maven/")
	return ok && strings.HasSuffix(rest, "/pom.properties") && strings.Count(rest, "/") == 2
}

// parseProperties reads a Java properties file's key=value (or key:value)
// lines; continuation lines and escapes are not needed for the keys used.
func parseProperties(b []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), maxSmallFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			continue
		}
		m[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return m
}

func fromPomProperties(b []byte) (pkg.Package, bool) {
	m := parseProperties(b)
	g, a, v := m["groupId"], m["artifactId"], m["version"]
	if g == "" || a == "" || v == "" {
		return pkg.Package{}, false
	}
	return pkg.Package{Name: g + ":" + a, Version: v, Ecosystem: pkg.Maven}, true
}

// parseManifest reads the main section of a MANIFEST.MF: "Key: value"
// lines, a line starting with one space continuing the one before.
func parseManifest(b []byte) map[string]string {
	m := map[string]string{}
	last := ""
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		if line == "" {
			break
		}
		if line[0] == ' ' && last != "" {
			m[last] += line[1:]
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = strings.TrimSpace(k)
		m[last] = strings.TrimSpace(v)
	}
	return m
}

var fileVersionRe = regexp.MustCompile(`^(.+?)-(\d[\w.+-]*)$`)

// fromManifest names a package from a manifest, with the artifact from the
// file name ("commons-io-2.11.0.jar" → "commons-io").
func fromManifest(m map[string]string, file string) (pkg.Package, bool) {
	g := m["Implementation-Vendor-Id"]
	v := m["Implementation-Version"]
	if v == "" {
		v = m["Bundle-Version"]
	}
	artifact := strings.TrimSuffix(file, path.Ext(file))
	if sm := fileVersionRe.FindStringSubmatch(artifact); sm != nil {
		artifact = sm[1]
		if v == "" {
			v = sm[2]
		}
	}
	if g == "" || v == "" || artifact == "" {
		return pkg.Package{}, false
	}
	return pkg.Package{Name: g + ":" + artifact, Version: v, Ecosystem: pkg.Maven}, true
}
