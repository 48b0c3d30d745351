package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"

	"github.com/lading-dev/lading/internal/errdefs"
)

type copyArgs struct {
	params   instructions.SourcesAndDest
	from     string
	chown    string
	chmod    string
	link     bool
	excludes []string
	parents  bool
	add      bool
	checksum string
	unpack   *bool
}

// copyCmd runs COPY or ADD. The cache key holds the sources' content hash
// (names, types, modes, sizes, link targets, bytes; never times), or for
// --from a stage the stage's own key.
func (st *stage) copyCmd(ctx context.Context, a copyArgs) error {
	bd := st.bd
	verb := "COPY"
	if a.add {
		verb = "ADD"
	}
	if a.parents {
		return errdefs.InvalidArgument(fmt.Errorf("%s --parents is not supported", verb))
	}
	if a.checksum != "" {
		return errdefs.InvalidArgument(errors.New("checksum requires HTTP(S) or Git sources, which lading does not fetch"))
	}
	for _, s := range a.params.SourcePaths {
		if isRemote(s) {
			if !a.add {
				return errdefs.InvalidArgument(fmt.Errorf("source can't be a URL for COPY"))
			}
			return errRemote(s)
		}
	}
	chmod, err := parseChmod(a.chmod)
	if err != nil {
		return err
	}
	if a.link && a.chown != "" && !numericOwner(a.chown) {
		return errdefs.InvalidArgument(fmt.Errorf("--chown=%s: user and group names can't be resolved when used with --link, use numeric uid[:gid] instead", a.chown))
	}
	msg := verb
	if a.chown != "" {
		msg += " --chown=" + a.chown
	}
	if a.chmod != "" {
		msg += " --chmod=" + a.chmod
	}
	for _, s := range a.params.SourcePaths {
		msg += " " + s
	}
	for _, s := range a.params.SourceContents {
		msg += " <<" + s.Path
	}
	msg += " " + a.params.DestPath + " # buildkit"

	dest := st.absPath(a.params.DestPath)
	op := &copyOp{dest: path.Clean(dest), destDir: strings.HasSuffix(dest, "/"), chmod: chmod, add: a.add}
	for _, s := range a.params.SourceContents {
		op.inline = append(op.inline, inlineSrc{name: s.Path, data: s.Data})
	}
	for _, s := range a.params.SourcePaths {
		p, err := cleanSource(s)
		if err != nil {
			return err
		}
		op.patterns = append(op.patterns, p)
	}
	if len(a.excludes) > 0 {
		pm, err := patternmatcher.New(a.excludes)
		if err != nil {
			return errdefs.InvalidArgument(fmt.Errorf("--exclude: %w", err))
		}
		op.excludes = pm
	}
	var (
		contentKey string
		sources    []string
	)
	if a.from == "" {
		op.src = bd.bctx
		if op.src == nil && len(op.patterns) > 0 {
			return errdefs.InvalidArgument(fmt.Errorf("%s needs a build context", verb))
		}
		if sources, err = op.matchSources(); err != nil {
			return err
		}
		if contentKey, err = hashSources(ctx, op, sources); err != nil {
			return err
		}
	} else if _, _, contentKey, err = bd.fromRef(ctx, a.from); err != nil {
		// A stage's or image's key stands for its content: it is unpacked
		// only when the step is not in the cache.
		return err
	}
	extra := map[string]any{"content": contentKey, "dest": op.dest, "destDir": op.destDir, "link": a.link, "excludes": a.excludes}
	return st.record(ctx, msg, extra, func(ctx context.Context) (*layerInfo, error) {
		if a.from != "" {
			src, _, err := bd.fromSource(ctx, a.from)
			if err != nil {
				return nil, err
			}
			op.src = src
			if sources, err = op.matchSources(); err != nil {
				return nil, err
			}
		}
		var t *tree
		if !a.link {
			if t, err = st.ensureTree(ctx); err != nil {
				return nil, err
			}
		}
		if a.chown != "" {
			uid, gid, err := st.resolveOwner(ctx, a.chown)
			if err != nil {
				return nil, err
			}
			op.chown = &owner{uid, gid}
		}
		li, err := st.bd.writeLayer(ctx, func(w io.Writer) (int, error) {
			lw := newLayerWriter(w, bd.o.epoch, t)
			if err := copyInto(ctx, lw, op, sources); err != nil {
				return 0, err
			}
			return lw.n, lw.close()
		})
		if err == nil && t == nil {
			st.tree = nil // the tree did not see this layer; rebuild it when needed
		} else if err == nil {
			st.treeN = len(st.layers)
			if li != nil {
				st.treeN++
			}
		}
		return li, err
	})
}

// matchSources expands the patterns. A context source that matched
// nothing is an error unless it was a glob.
func (op *copyOp) matchSources() ([]string, error) {
	if op.src == nil {
		return nil, nil
	}
	return op.match()
}

// hashSources is the content key of a COPY or ADD from the build context:
// a digest of the entries the copy would write and their bytes, without
// times (so touching a file does not miss the cache).
func hashSources(ctx context.Context, op *copyOp, sources []string) (string, error) {
	h := sha256.New()
	lw := newLayerWriter(io.Discard, nil, nil)
	lw.sum = h
	hop := *op
	hop.chown = nil
	if err := copyInto(ctx, lw, &hop, sources); err != nil {
		return "", err
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil)), nil
}

func numericOwner(s string) bool {
	u, g, _ := strings.Cut(s, ":")
	_, ok := parseID(u)
	if g != "" {
		_, gok := parseID(g)
		ok = ok && gok
	}
	return ok
}

// resolveOwner resolves a --chown or USER value against the stage's
// /etc/passwd and /etc/group (numbers need neither).
func (st *stage) resolveOwner(ctx context.Context, spec string) (int, int, error) {
	t := &tree{}
	if !numericOwner(spec) {
		var err error
		if t, err = st.ensureTree(ctx); err != nil {
			return 0, 0, err
		}
	}
	return t.lookupUser(spec)
}

// writeLayer writes a layer tar with fn into the store and returns it; a
// layer with no entries is no layer (nil), as BuildKit drops empty ones.
func (bd *build) writeLayer(ctx context.Context, fn func(io.Writer) (int, error)) (*layerInfo, error) {
	w, err := bd.store.NewBlobWriter()
	if err != nil {
		return nil, err
	}
	defer w.Abort()
	n, err := fn(w)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	d, size, err := w.Commit(ctx)
	if err != nil {
		return nil, err
	}
	return &layerInfo{desc: v1.Descriptor{MediaType: types.OCIUncompressedLayer, Digest: d, Size: size}, diffID: d}, nil
}

// workdirCmd sets the working directory and, as BuildKit does, creates it
// (owned by USER when set) if it is missing: a layer then, else none.
func (st *stage) workdirCmd(ctx context.Context, c *instructions.WorkdirCommand) error {
	wd := c.Path
	if !path.IsAbs(wd) {
		wd = path.Join(st.workdir(), wd)
	}
	wd = path.Clean(wd)
	st.img.Config.WorkingDir = wd
	if wd == "/" {
		return st.record(ctx, "WORKDIR "+wd, nil, nil)
	}
	user := st.img.Config.User
	return st.record(ctx, "WORKDIR "+wd, map[string]string{"user": user}, func(ctx context.Context) (*layerInfo, error) {
		t, err := st.ensureTree(ctx)
		if err != nil {
			return nil, err
		}
		uid, gid := 0, 0
		if user != "" {
			if uid, gid, err = t.lookupUser(user); err != nil {
				return nil, err
			}
		}
		real, _, err := t.resolve(wd, true)
		if err != nil {
			return nil, err
		}
		li, err := st.bd.writeLayer(ctx, func(w io.Writer) (int, error) {
			lw := newLayerWriter(w, st.bd.o.epoch, t)
			if err := lw.mkdirAll(real, uid, gid); err != nil {
				return 0, err
			}
			return lw.n, lw.close()
		})
		if err == nil {
			st.treeN = len(st.layers)
			if li != nil {
				st.treeN++
			}
		}
		return li, err
	})
}

var _ = tar.TypeReg
