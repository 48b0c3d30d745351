package build

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/store"
)

// Builder builds Dockerfiles into images of a store.
type Builder struct {
	store *store.Store
	cache *stepCache
	o     options
}

// New returns a builder over the store st.
func New(st *store.Store, opts ...Option) *Builder {
	o := options{network: "none", cacheDir: filepath.Join(st.Root(), "cache", "build")}
	for _, f := range opts {
		f(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.out == nil {
		o.out = io.Discard
	}
	b := &Builder{store: st, o: o}
	if o.cacheDir != "" {
		b.cache = &stepCache{dir: o.cacheDir}
	}
	return b
}

// Result is a built image: every blob is in the store, no name points at it
// yet.
type Result struct {
	Image      v1.Image
	Descriptor v1.Descriptor // the manifest, with the platform
	ID         v1.Hash       // the config digest (docker's image ID)
	Made       int           // layers made by this build
	Cached     int           // steps taken from the cache
}

// build is one Build call's state.
type build struct {
	*Builder
	df       *Dockerfile
	bctx     *Context
	lex      *shell.Lex
	target   v1.Platform
	host     v1.Platform
	global   *envList // the global scope: platform args and ARGs before FROM
	metaSet  map[string]bool
	usedArgs map[string]bool
	stages   []*stage // results of built stages, by index
	bases    []string // each stage's base name, expanded
	step     int
	steps    int
	made     int
	cached   int
	unpacked []string            // image file systems unpacked for COPY --from
	contexts []*Context          // contexts opened on them
	sources  map[string]*Context // unpacked --from sources by key
}

// cleanup removes what the build unpacked.
func (bd *build) cleanup() {
	for _, c := range bd.contexts {
		c.root.Close()
	}
	for _, s := range bd.stages {
		if s != nil {
			s.cleanup()
		}
	}
	for _, d := range bd.unpacked {
		os.RemoveAll(d)
	}
}

// Build builds df with the context bctx and returns the image of the
// target stage.
func (b *Builder) Build(ctx context.Context, df *Dockerfile, bctx *Context) (*Result, error) {
	bd := &build{
		Builder:  b,
		df:       df,
		bctx:     bctx,
		lex:      shell.NewLex(df.Escape),
		host:     *image.HostPlatform(),
		usedArgs: map[string]bool{},
		metaSet:  map[string]bool{},
	}
	defer bd.cleanup()
	bd.target = bd.host
	if b.o.platform != nil {
		bd.target = *b.o.platform
	}
	for _, w := range df.Warnings {
		b.o.log.Warn(w)
	}
	if err := bd.globalScope(); err != nil {
		return nil, err
	}
	targetIdx, err := bd.targetStage()
	if err != nil {
		return nil, err
	}
	need, err := bd.needed(targetIdx)
	if err != nil {
		return nil, err
	}
	for i := range df.Stages {
		if need[i] {
			bd.steps += 1 + len(df.Stages[i].Commands)
		}
	}
	bd.stages = make([]*stage, len(df.Stages))
	for i := range df.Stages {
		if !need[i] {
			continue
		}
		s, err := bd.buildStage(ctx, i)
		if err != nil {
			return nil, err
		}
		bd.stages[i] = s
	}
	bd.warnUnusedArgs()
	res, err := bd.stages[targetIdx].commit(ctx)
	if err != nil {
		return nil, err
	}
	res.Made, res.Cached = bd.made, bd.cached
	return res, nil
}

// globalScope sets the args visible to FROM lines: the platform args, then
// the ARGs before the first FROM with --build-arg values or defaults.
func (bd *build) globalScope() error {
	bd.global = newEnvList()
	for _, kv := range platformArgs(bd.host, bd.target, bd.o.target) {
		bd.global.Set(kv[0], kv[1])
	}
	for _, a := range bd.df.MetaArgs {
		for _, kv := range a.Args {
			bd.usedArgs[kv.Key] = true
			if v, ok := bd.o.buildArgs[kv.Key]; ok {
				bd.global.Set(kv.Key, v)
				bd.metaSet[kv.Key] = true
				continue
			}
			if kv.Value != nil {
				v, _, err := bd.lex.ProcessWord(*kv.Value, bd.global)
				if err != nil {
					return at(bd.df.Name, a.Location(), err)
				}
				bd.global.Set(kv.Key, v)
				bd.metaSet[kv.Key] = true
			}
		}
	}
	return nil
}

// targetStage is --target's stage, or the last one.
func (bd *build) targetStage() (int, error) {
	if bd.o.target == "" {
		return len(bd.df.Stages) - 1, nil
	}
	if i, ok := bd.df.stageIndex(bd.o.target, len(bd.df.Stages)); ok && bd.df.Stages[i].Name != "" {
		return i, nil
	}
	return 0, errdefs.InvalidArgument(fmt.Errorf("target stage %q could not be found", bd.o.target))
}

// needed returns the stages the target depends on (itself included): its
// base stage, COPY --from and RUN --mount from= stages, transitively.
// Other stages are not built.
func (bd *build) needed(target int) (map[int]bool, error) {
	bd.bases = make([]string, len(bd.df.Stages))
	for i, s := range bd.df.Stages {
		name, _, err := bd.lex.ProcessWord(s.BaseName, bd.global)
		if err != nil {
			return nil, at(bd.df.Name, s.Location, err)
		}
		if name == "" {
			return nil, at(bd.df.Name, s.Location, errdefs.InvalidArgument(fmt.Errorf("base name (%s) should not be blank", s.BaseName)))
		}
		bd.bases[i] = name
	}
	need := map[int]bool{}
	var visit func(i int) error
	visit = func(i int) error {
		if need[i] {
			return nil
		}
		need[i] = true
		for _, dep := range bd.deps(i) {
			if err := visit(dep); err != nil {
				return err
			}
		}
		return nil
	}
	return need, visit(target)
}

// deps lists the earlier stages stage i reads.
func (bd *build) deps(i int) []int {
	var out []int
	add := func(ref string) {
		ref, _, _ = bd.lex.ProcessWord(ref, bd.global)
		if j, ok := bd.df.stageIndex(ref, i); ok {
			out = append(out, j)
		}
	}
	add(bd.bases[i])
	for _, c := range bd.df.Stages[i].Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			if c.From != "" {
				add(c.From)
			}
		case *instructions.RunCommand:
			for _, m := range instructions.GetMounts(c) {
				if m.From != "" {
					add(m.From)
				}
			}
		}
	}
	return out
}

// warnUnusedArgs warns about --build-arg values no ARG line declared, as
// Docker does.
func (bd *build) warnUnusedArgs() {
	var unused []string
	for k := range bd.o.buildArgs {
		if !bd.usedArgs[k] && !proxyArgs[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		bd.o.log.Warn("one or more build args were not consumed", "args", strings.Join(unused, ","))
	}
}

// printf prints a progress line.
func (bd *build) printf(format string, args ...any) {
	fmt.Fprintf(bd.o.out, format, args...)
}

// tempDir is where a build's temporary files go.
func (bd *build) tempDir() string {
	if bd.o.tmpDir != "" {
		return bd.o.tmpDir
	}
	return os.TempDir()
}
