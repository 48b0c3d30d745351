package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Input is what a build reads: the context and the Dockerfile.
type Input struct {
	Context    *Context
	Dockerfile *Dockerfile
}

// Close releases the context.
func (in *Input) Close() error { return in.Context.Close() }

// OpenInput opens a build's context and Dockerfile the way `docker build`
// takes them. contextArg is a directory, "-" (a tar on stdin) or a tar file
// (plain or compressed). dockerfile is "" (Dockerfile, else Containerfile,
// in the context), "-" (stdin), or a path: relative to the current directory
// for a directory context, a name inside the archive for a tar context.
// Ignore patterns come from DOCKERFILE.dockerignore beside the Dockerfile,
// else from the context's .dockerignore.
func OpenInput(ctx context.Context, contextArg, dockerfile string, stdin io.Reader, tmpDir string) (*Input, error) {
	if contextArg == "-" && dockerfile == "-" {
		return nil, errdefs.InvalidArgument(errors.New("the context and the Dockerfile cannot both be read from standard input"))
	}
	var (
		c   *Context
		err error
	)
	isTar := false
	switch fi, serr := os.Stat(contextArg); {
	case contextArg == "-":
		c, err = ContextFromTar(ctx, stdin, tmpDir)
		isTar = true
	case serr != nil:
		return nil, errdefs.NotFound(fmt.Errorf("build context: %w", serr))
	case fi.IsDir():
		c, err = ContextFromDir(contextArg)
	default:
		f, oerr := os.Open(contextArg)
		if oerr != nil {
			return nil, oerr
		}
		c, err = ContextFromTar(ctx, f, tmpDir)
		f.Close()
		isTar = true
	}
	if err != nil {
		return nil, err
	}
	in := &Input{Context: c}
	fail := func(err error) (*Input, error) {
		c.Close()
		return nil, err
	}
	var (
		text       []byte
		name       string
		ignoreText []byte
	)
	switch {
	case dockerfile == "-":
		if text, err = io.ReadAll(io.LimitReader(stdin, maxDockerfileSize+1)); err != nil {
			return fail(err)
		}
		name = "Dockerfile"
	case dockerfile == "" || isTar:
		name = dockerfile
		if name == "" {
			name = "Dockerfile"
			if _, err := c.root.Stat(name); errors.Is(err, fs.ErrNotExist) {
				if _, err := c.root.Stat("Containerfile"); err == nil {
					name = "Containerfile"
				}
			}
		}
		if text, err = c.ReadFile(name, maxDockerfileSize); err != nil {
			return fail(errdefs.NotFound(fmt.Errorf("Dockerfile %s: %w", name, err)))
		}
		ignoreText, _ = c.ReadFile(name+".dockerignore", maxDockerfileSize)
	default:
		name = dockerfile
		if text, err = readLimited(dockerfile); err != nil {
			return fail(errdefs.NotFound(fmt.Errorf("Dockerfile: %w", err)))
		}
		ignoreText, _ = readLimited(dockerfile + ".dockerignore")
	}
	if ignoreText == nil {
		ignoreText, _ = c.ReadFile(".dockerignore", maxDockerfileSize)
	}
	if ignoreText != nil {
		patterns, err := ReadIgnoreFile(bytes.NewReader(ignoreText))
		if err != nil {
			return fail(err)
		}
		if err := c.SetIgnore(patterns); err != nil {
			return fail(err)
		}
	}
	df, err := ParseDockerfile(bytes.NewReader(text), filepath.ToSlash(name))
	if err != nil {
		return fail(err)
	}
	in.Dockerfile = df
	return in, nil
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDockerfileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDockerfileSize {
		return nil, errdefs.TooLarge(fmt.Errorf("%s: over %d bytes", p, maxDockerfileSize))
	}
	return b, nil
}
