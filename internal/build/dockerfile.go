package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/lading-dev/lading/internal/errdefs"
)

// maxDockerfileSize bounds the Dockerfile read whole (BuildKit's own limit
// is far lower in practice; a Dockerfile is text a person wrote).
const maxDockerfileSize = 16 << 20

// Dockerfile is a parsed Dockerfile: BuildKit's stages and the ARGs before
// the first FROM.
type Dockerfile struct {
	Name     string // how messages name the file ("Dockerfile", "app/Containerfile")
	Stages   []instructions.Stage
	MetaArgs []instructions.ArgCommand
	Escape   rune
	Warnings []string
}

// ParseDockerfile parses a Dockerfile with BuildKit's own parser and
// instruction packages, so that syntax, escapes, heredocs, line
// continuations and errors are Docker's. name is how errors refer to the
// file: every error says "name:LINE: message", with BuildKit's message.
func ParseDockerfile(r io.Reader, name string) (*Dockerfile, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDockerfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxDockerfileSize {
		return nil, errdefs.TooLarge(fmt.Errorf("%s: over %d bytes", name, maxDockerfileSize))
	}
	df := &Dockerfile{Name: name}
	res, err := parser.Parse(bytes.NewReader(b))
	if err != nil {
		return nil, locate(name, err)
	}
	df.Escape = res.EscapeToken
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		df.Warnings = append(df.Warnings, fmt.Sprintf("%s:%d: %s", name, line, w.Short))
	}
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		df.Warnings = append(df.Warnings, fmt.Sprintf("%s:%d: %s: %s", name, line, rule, msg))
	}})
	df.Stages, df.MetaArgs, err = instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, locate(name, err)
	}
	if len(df.Stages) == 0 {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: the file has no FROM instruction (no build stage)", name))
	}
	return df, nil
}

// locate turns a BuildKit error into "name:LINE: message" (class
// InvalidArgument). BuildKit's messages already say "dockerfile parse error
// on line N" where Docker prints that; the prefix adds the file.
func locate(name string, err error) error {
	return errdefs.InvalidArgument(&LocatedError{File: name, Line: errLine(err), Err: err})
}

// errLine is the first line a BuildKit error carries, or 0.
func errLine(err error) int {
	var le *parser.LocationError
	if errors.As(err, &le) {
		for _, rs := range le.Locations {
			if len(rs) > 0 {
				return rs[0].Start.Line
			}
		}
	}
	return 0
}

// LocatedError is an error at a line of a Dockerfile.
type LocatedError struct {
	File string
	Line int
	Err  error
}

func (e *LocatedError) Error() string {
	msg := e.Err.Error()
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, msg)
	}
	return fmt.Sprintf("%s: %s", e.File, msg)
}

func (e *LocatedError) Unwrap() error { return e.Err }

// at wraps err with the file and line of a command's location.
func at(file string, loc []parser.Range, err error) error {
	if err == nil {
		return nil
	}
	var le *LocatedError
	if errors.As(err, &le) {
		return err
	}
	line := 0
	if len(loc) > 0 {
		line = loc[0].Start.Line
	}
	return &LocatedError{File: file, Line: line, Err: err}
}

// stageIndex finds a stage by name (case-insensitive, as BuildKit) or by
// number among the first n stages. ok is false when ref names no stage.
func (df *Dockerfile) stageIndex(ref string, n int) (int, bool) {
	for i := 0; i < n && i < len(df.Stages); i++ {
		if df.Stages[i].Name != "" && strings.EqualFold(df.Stages[i].Name, ref) {
			return i, true
		}
	}
	var k int
	if _, err := fmt.Sscanf(ref, "%d", &k); err == nil && fmt.Sprint(k) == ref && k >= 0 && k < n {
		return k, true
	}
	return -1, false
}

// HasRun reports whether a stage has a RUN instruction (ONBUILD triggers
// of base images are not known before the build).
func (df *Dockerfile) HasRun() bool {
	for _, s := range df.Stages {
		for _, c := range s.Commands {
			if _, ok := c.(*instructions.RunCommand); ok {
				return true
			}
		}
	}
	return false
}
