package build

import (
	"context"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
)

// historyComment marks history entries made from a Dockerfile, as
// BuildKit's do (the created_by strings follow BuildKit's too).
const historyComment = "buildkit.dockerfile.v0"

// stage is a stage being built, or built: its config and history, its
// layers, the cache key of its last step, and the variables its
// instructions are expanded with.
type stage struct {
	bd       *build
	index    int
	name     string
	platform v1.Platform
	img      dockerspec.DockerOCIImage
	layers   []layerInfo
	key      v1.Hash
	env      *envList
	args     []instructions.KeyValuePairOptional // ARGs declared, for RUN's history
	cmdSet   bool                                // CMD was set in this stage
	tree     *tree                               // nil until a step needs it
	treeN    int                                 // layers applied to tree
	rootDir  string                              // the file system unpacked, for COPY --from
}

// layerInfo is a layer of the image being built: its manifest descriptor
// and its diffID.
type layerInfo struct {
	desc   v1.Descriptor
	diffID v1.Hash
}

// buildStage builds stage i.
func (bd *build) buildStage(ctx context.Context, i int) (*stage, error) {
	s := bd.df.Stages[i]
	bd.step++
	bd.printf("STEP %d/%d: %s\n", bd.step, bd.steps, s.SourceCode)
	plat := bd.target
	if s.Platform != "" {
		p, _, err := bd.lex.ProcessWord(s.Platform, bd.global)
		if err != nil {
			return nil, at(bd.df.Name, s.Location, err)
		}
		pp, err := image.ParsePlatform(p)
		if err != nil {
			return nil, at(bd.df.Name, s.Location, err)
		}
		plat = *pp
	}
	base := bd.bases[i]
	st := &stage{bd: bd, index: i, name: s.Name, platform: plat}
	fromImage := false
	switch j, isStage := bd.df.stageIndex(base, i); {
	case isStage:
		src := bd.stages[j]
		st.img = cloneImage(src.img)
		st.img.Config.OnBuild = nil
		st.layers = slices.Clone(src.layers)
		st.args = slices.Clone(src.args)
		st.env = src.env.clone()
		st.platform = src.platform
		st.key = stepKey(src.key, "FROM stage")
	case strings.EqualFold(base, "scratch"):
		st.img = emptyImage(plat)
		st.env = envFromSlice(st.img.Config.Env)
		st.key = stepKey(v1.Hash{}, map[string]string{"from": "scratch", "platform": platformString(plat)})
	default:
		bi, err := bd.loadBase(ctx, base, plat)
		if err != nil {
			return nil, at(bd.df.Name, s.Location, err)
		}
		st.img, st.layers, st.key = bi.img, bi.layers, stepKey(v1.Hash{}, map[string]string{"from": bi.digest.String()})
		st.env = envFromSlice(st.img.Config.Env)
		fromImage = true
	}
	if fromImage && len(st.img.Config.OnBuild) > 0 {
		triggers := st.img.Config.OnBuild
		st.img.Config.OnBuild = nil
		for _, t := range triggers {
			cmd, err := parseTrigger(t)
			if err != nil {
				return nil, at(bd.df.Name, s.Location, fmt.Errorf("ONBUILD trigger %q of the base image: %w", t, err))
			}
			if err := st.dispatch(ctx, cmd, true); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range s.Commands {
		bd.step++
		bd.printf("STEP %d/%d: %s\n", bd.step, bd.steps, commandString(c))
		if err := st.dispatch(ctx, c, false); err != nil {
			return nil, at(bd.df.Name, c.Location(), err)
		}
	}
	return st, nil
}

func commandString(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return c.Name()
}

// parseTrigger parses an ONBUILD trigger of a base image.
func parseTrigger(t string) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(t))
	if err != nil {
		return nil, err
	}
	if len(res.AST.Children) != 1 {
		return nil, errdefs.InvalidArgument(fmt.Errorf("onbuild trigger should be a single expression"))
	}
	c, err := instructions.ParseCommand(res.AST.Children[0])
	if err != nil {
		return nil, err
	}
	switch c.(type) {
	case *instructions.OnbuildCommand, *instructions.MaintainerCommand:
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s isn't allowed as an ONBUILD trigger", strings.ToUpper(c.Name())))
	}
	return c, nil
}

// emptyImage is the config FROM scratch starts with, as BuildKit's.
func emptyImage(p v1.Platform) dockerspec.DockerOCIImage {
	var img dockerspec.DockerOCIImage
	img.Architecture, img.OS, img.Variant, img.OSVersion = p.Architecture, p.OS, p.Variant, p.OSVersion
	img.RootFS.Type = "layers"
	img.Config.WorkingDir = "/"
	img.Config.Env = []string{"PATH=" + defaultPath}
	return img
}

func cloneImage(src dockerspec.DockerOCIImage) dockerspec.DockerOCIImage {
	img := src
	img.Config.Env = slices.Clone(src.Config.Env)
	img.Config.Cmd = slices.Clone(src.Config.Cmd)
	img.Config.Entrypoint = slices.Clone(src.Config.Entrypoint)
	img.Config.OnBuild = slices.Clone(src.Config.OnBuild)
	img.Config.Shell = slices.Clone(src.Config.Shell)
	img.Config.ExposedPorts = cloneMap(src.Config.ExposedPorts)
	img.Config.Volumes = cloneMap(src.Config.Volumes)
	img.Config.Labels = cloneMap(src.Config.Labels)
	if src.Config.Healthcheck != nil {
		hc := *src.Config.Healthcheck
		hc.Test = slices.Clone(hc.Test)
		img.Config.Healthcheck = &hc
	}
	img.History = slices.Clone(src.History)
	img.RootFS.DiffIDs = slices.Clone(src.RootFS.DiffIDs)
	return img
}

func cloneMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return nil
	}
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// record ends a step: it looks the step up in the cache (unless
// --no-cache), runs mk on a miss (nil for steps that change only the
// config), and adds the history entry and the layer. createdBy is the
// history text; extra is whatever else the step's result depends on.
func (st *stage) record(ctx context.Context, createdBy string, extra any, mk func(context.Context) (*layerInfo, error)) error {
	bd := st.bd
	key := stepKey(st.key, struct {
		By       string
		Extra    any `json:",omitempty"`
		Platform string
		Epoch    *time.Time `json:",omitempty"`
	}{createdBy, extra, platformString(st.platform), bd.o.epoch})
	var (
		li      *layerInfo
		created time.Time
		hit     bool
	)
	if !bd.o.noCache {
		if e, ok := bd.cache.get(key); ok && (e.Layer == nil || bd.store.Has(ctx, e.Layer.Digest, e.Layer.Size)) {
			hit, created = true, e.Created
			if e.Layer != nil {
				li = &layerInfo{desc: *e.Layer, diffID: e.DiffID}
			}
		}
	}
	if hit && mk != nil {
		bd.cached++
		bd.printf("--> Using cache %s\n", key.Hex[:12])
	}
	if !hit {
		if mk != nil {
			var err error
			if li, err = mk(ctx); err != nil {
				return err
			}
			if li != nil {
				bd.made++
			}
		}
		created = time.Now().UTC()
		e := &cacheEntry{Created: created}
		if li != nil {
			d := li.desc
			e.Layer, e.DiffID = &d, li.diffID
		}
		if err := bd.cache.put(key, e); err != nil {
			bd.o.log.Warn("build cache: cannot save a step", "err", err)
		}
	}
	if bd.o.epoch != nil {
		created = *bd.o.epoch
	}
	ct := created
	st.img.History = append(st.img.History, ocispec.History{
		Created:    &ct,
		CreatedBy:  createdBy,
		Comment:    historyComment,
		EmptyLayer: li == nil,
	})
	if li != nil {
		st.layers = append(st.layers, *li)
		st.img.RootFS.DiffIDs = append(st.img.RootFS.DiffIDs, digestOf(li.diffID))
	}
	st.key = key
	return nil
}

// workdir is the stage's working directory for RUN and relative paths.
func (st *stage) workdir() string {
	if st.img.Config.WorkingDir == "" {
		return "/"
	}
	return st.img.Config.WorkingDir
}

// ensureTree brings the stage's tree up to date with its layers.
func (st *stage) ensureTree(ctx context.Context) (*tree, error) {
	if st.tree == nil {
		st.tree, st.treeN = newTree(), 0
	}
	for ; st.treeN < len(st.layers); st.treeN++ {
		l := st.layers[st.treeN]
		rc, err := st.bd.openLayer(ctx, l)
		if err != nil {
			return nil, err
		}
		err = st.tree.apply(ctx, rc, "layer "+l.desc.Digest.String())
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	return st.tree, nil
}

// treeCurrent reports whether the tree has every layer (so a step that
// adds one may update it as it writes).
func (st *stage) treeCurrent() bool { return st.tree != nil && st.treeN == len(st.layers) }

// cleanup removes what the stage unpacked.
func (st *stage) cleanup() {
	if st.rootDir != "" {
		os.RemoveAll(st.rootDir)
		st.rootDir = ""
	}
}

// absPath makes p absolute against the working directory, keeping a
// trailing slash (it says "a directory").
func (st *stage) absPath(p string) string {
	trailing := strings.HasSuffix(p, "/") || p == "." || p == ""
	if !path.IsAbs(p) {
		p = path.Join(st.workdir(), p)
	}
	p = path.Clean(p)
	if trailing && p != "/" {
		p += "/"
	}
	return p
}
