package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/layer"
)

// Context is a build context: the files COPY and ADD may read. Every access
// goes through an os.Root, so nothing outside the context is ever read: a
// path with "../" that leaves the context is refused, and so is a symlink
// that points out of it when it must be followed (symlinks inside copied
// directories are copied as symlinks, never followed).
type Context struct {
	dir     string
	root    *os.Root
	ignore  *patternmatcher.PatternMatcher
	cleanup func()
	// owners says whether files keep their uid and gid (a stage's root
	// file system) or become 0:0 (a build context, as Docker does).
	owners bool
}

// ContextFromDir opens a directory as the build context.
func ContextFromDir(dir string) (*Context, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, errdefs.NotFound(fmt.Errorf("build context: %w", err))
	}
	if !st.IsDir() {
		return nil, errdefs.InvalidArgument(fmt.Errorf("build context %s is not a directory", dir))
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	return &Context{dir: dir, root: root}, nil
}

// ContextFromTar unpacks a tar stream (plain, gzip or zstd; the way `docker
// build -` reads standard input) into a temporary directory under tmpDir and
// opens it as the build context. The tar is checked as every layer is: names
// that leave the directory, links out and device nodes are refused. Close
// removes the directory.
func ContextFromTar(ctx context.Context, r io.Reader, tmpDir string) (*Context, error) {
	dir, err := os.MkdirTemp(tmpDir, "lading-context-*")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Context, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	ur, _, err := layer.Decompress(r, layer.WithName("build context"))
	if err != nil {
		return fail(fmt.Errorf("build context: %w", err))
	}
	defer ur.Close()
	if err := layer.Extract(ctx, dir, ur, layer.WithName("build context"), layer.IgnoreOwners()); err != nil {
		return fail(fmt.Errorf("build context: %w", err))
	}
	c, err := ContextFromDir(dir)
	if err != nil {
		return fail(err)
	}
	c.cleanup = func() { os.RemoveAll(dir) }
	return c, nil
}

// Dir is the directory the context is read from.
func (c *Context) Dir() string { return c.dir }

// Close releases the context (and removes an unpacked tar's directory).
func (c *Context) Close() error {
	err := c.root.Close()
	if c.cleanup != nil {
		c.cleanup()
	}
	return err
}

// SetIgnore sets .dockerignore patterns (Docker's syntax, through
// moby/patternmatcher): matching files are invisible to COPY and ADD.
func (c *Context) SetIgnore(patterns []string) error {
	if len(patterns) == 0 {
		c.ignore = nil
		return nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return errdefs.InvalidArgument(fmt.Errorf(".dockerignore: %w", err))
	}
	c.ignore = pm
	return nil
}

// ReadIgnoreFile reads a .dockerignore file.
func ReadIgnoreFile(r io.Reader) ([]string, error) {
	p, err := ignorefile.ReadAll(r)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf(".dockerignore: %w", err))
	}
	return p, nil
}

// ReadFile reads a file of the context (the Dockerfile, .dockerignore),
// limited to max bytes.
func (c *Context) ReadFile(name string, max int64) ([]byte, error) {
	f, err := c.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errdefs.TooLarge(fmt.Errorf("%s: over %d bytes", name, max))
	}
	return b, nil
}

// ignored reports whether the context path p (relative, slash-separated) is
// excluded by .dockerignore, and for a directory whether something below it
// may still be included by a "!" pattern (so the walk must go in).
func (c *Context) ignored(p string, isDir bool) (skip, descend bool, err error) {
	if c.ignore == nil || p == "." || p == "" {
		return false, true, nil
	}
	m, err := c.ignore.MatchesOrParentMatches(p)
	if err != nil {
		return false, false, errdefs.InvalidArgument(fmt.Errorf(".dockerignore: %w", err))
	}
	if !m {
		return false, true, nil
	}
	if !isDir || !c.ignore.Exclusions() {
		return true, false, nil
	}
	dirSlash := p + "/"
	for _, pat := range c.ignore.Patterns() {
		if pat.Exclusion() && strings.HasPrefix(pat.String()+"/", dirSlash) {
			return true, true, nil
		}
	}
	return true, false, nil
}

// cleanSource turns a COPY source into a path relative to the context root.
// An absolute source names a path in the context, as Docker reads it; a
// source that leaves the context with "../" is refused.
func cleanSource(src string) (string, error) {
	p := path.Clean(src)
	if strings.HasPrefix(p, "/") {
		p = path.Clean(strings.TrimLeft(p, "/"))
		if p == "" {
			p = "."
		}
	}
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errdefs.InvalidArgument(fmt.Errorf("%s: forbidden path outside the build context", src))
	}
	return p, nil
}

// hasMeta reports whether a path has glob characters (filepath.Match's).
func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// glob expands a cleaned source pattern against the context: each
// component with glob characters is matched (filepath.Match, "*" does not
// cross "/") against the directory's entries; ignored paths never match.
// The result is sorted. A pattern without glob characters is returned as it
// is when it exists (and is not ignored).
func (c *Context) glob(pattern string) ([]string, error) {
	if !hasMeta(pattern) {
		if _, err := c.root.Lstat(pattern); err != nil {
			return nil, c.notFound(pattern, err)
		}
		skip, _, err := c.ignoredPath(pattern)
		if err != nil {
			return nil, err
		}
		if skip {
			return nil, errdefs.NotFound(fmt.Errorf("%q: not found in the build context (excluded by .dockerignore)", pattern))
		}
		return []string{pattern}, nil
	}
	parts := strings.Split(pattern, "/")
	cur := []string{"."}
	for _, part := range parts {
		var next []string
		for _, dir := range cur {
			if !hasMeta(part) {
				p := path.Join(dir, part)
				if _, err := c.root.Lstat(p); err == nil {
					next = append(next, p)
				}
				continue
			}
			names, err := c.readDirNames(dir)
			if err != nil {
				continue // not a directory: no match below it
			}
			for _, n := range names {
				ok, err := path.Match(part, n)
				if err != nil {
					return nil, errdefs.InvalidArgument(fmt.Errorf("%s: %w", pattern, err))
				}
				if ok {
					next = append(next, path.Join(dir, n))
				}
			}
		}
		cur = next
	}
	var out []string
	for _, p := range cur {
		skip, _, err := c.ignoredPath(p)
		if err != nil {
			return nil, err
		}
		if !skip {
			out = append(out, p)
		}
	}
	return out, nil
}

// ignoredPath is ignored for a path whose type is looked up.
func (c *Context) ignoredPath(p string) (bool, bool, error) {
	if c.ignore == nil {
		return false, true, nil
	}
	fi, err := c.root.Lstat(p)
	isDir := err == nil && fi.IsDir()
	return c.ignored(p, isDir)
}

func (c *Context) readDirNames(dir string) ([]string, error) {
	f, err := c.root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

func (c *Context) notFound(p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.NotFound(fmt.Errorf("%q: not found in the build context", p))
	}
	if strings.Contains(err.Error(), "escapes from parent") || strings.Contains(err.Error(), "path escapes") {
		return errdefs.InvalidArgument(fmt.Errorf("%q: a symlink on the way points outside the build context", p))
	}
	return err
}
