package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Runner runs the command of a RUN step in a sandbox over the stage's root
// file system and writes the changes it made as an OCI layer tar (with
// whiteouts) to diff.
type Runner interface {
	Run(ctx context.Context, req *RunRequest, diff io.Writer) error
}

// RunRequest is one RUN step.
type RunRequest struct {
	Layers  []v1.Layer // the stage's layers, bottom first
	Args    []string
	Env     []string
	Dir     string
	User    string
	Network string // "none" or "host"
	Mounts  []RunMount
	// Files are heredoc scripts (RUN <<EOF starting with "#!"), by name:
	// the runner makes them readable at /dev/pipes/NAME, mode 0755.
	Files    map[string]string
	Hostname string
	Epoch    *time.Time // SOURCE_DATE_EPOCH: clamp the times of the diff
	Stdout   io.Writer
	Stderr   io.Writer
}

// RunMount is a RUN --mount: a directory of the host (the build context, a
// stage's unpacked file system, a cache directory) at Target, or a tmpfs
// when Source is empty.
type RunMount struct {
	Source   string
	Target   string
	ReadOnly bool
}

// ExitError is a RUN step whose command exited with a non-zero status.
type ExitError struct {
	Args []string
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("process %q did not complete successfully: exit code: %d", strings.Join(e.Args, " "), e.Code)
}

// runCmd runs RUN: the command line (shell form through SHELL, exec form as
// it is, heredocs as BuildKit runs them) in the runner, the stage's
// variables as its environment, the diff as the step's layer.
func (st *stage) runCmd(ctx context.Context, c *instructions.RunCommand) error {
	bd := st.bd
	args, files, err := runArgs(c)
	if err != nil {
		return err
	}
	if c.PrependShell {
		args = st.withShell(args)
	}
	network := bd.o.network
	if n := instructions.GetNetwork(c); n != "" && n != "default" {
		network = n
	}
	switch network {
	case "none", "host":
	default:
		return errdefs.InvalidArgument(fmt.Errorf("RUN --network=%s: lading runs steps with network none or host", network))
	}
	for _, s := range []string{"security", "device"} {
		if hasFlag(c, s) {
			return errdefs.InvalidArgument(fmt.Errorf("RUN --%s is not supported", s))
		}
	}
	_, mountKey, err := st.runMounts(ctx, c, false)
	if err != nil {
		return err
	}
	env := st.env.Slice()
	for k := range proxyArgs {
		if v, ok := bd.o.buildArgs[k]; ok {
			if _, set := st.env.Get(k); !set {
				env = append(env, k+"="+v)
			}
		}
	}
	createdBy := "RUN " + st.runString(args) + " # buildkit"
	extra := map[string]any{
		"args": args, "env": st.env.Slice(), "dir": st.workdir(), "user": st.img.Config.User,
		"network": network, "mounts": mountKey, "files": files,
	}
	return st.record(ctx, createdBy, extra, func(ctx context.Context) (*layerInfo, error) {
		if bd.o.runner == nil {
			return nil, errdefs.Unavailable(errors.New("RUN needs a sandbox runner (none is configured)"))
		}
		mounts, _, err := st.runMounts(ctx, c, true)
		if err != nil {
			return nil, err
		}
		layers, err := st.v1Layers(ctx)
		if err != nil {
			return nil, err
		}
		req := &RunRequest{
			Layers: layers, Args: args, Env: env, Dir: st.workdir(), User: st.img.Config.User,
			Network: network, Mounts: mounts, Epoch: bd.o.epoch, Stdout: bd.o.out, Stderr: bd.o.out,
		}
		req.Files = files
		var empty bool
		li, err := bd.writeLayer(ctx, func(w io.Writer) (int, error) {
			cw := &countingWriter{w: w}
			if err := bd.o.runner.Run(ctx, req, cw); err != nil {
				return 0, err
			}
			empty = cw.n <= 1024 // an empty tar is its two zero blocks
			if empty {
				return 0, nil
			}
			return 1, nil
		})
		return li, err
	})
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func hasFlag(c *instructions.RunCommand, name string) bool {
	for _, f := range c.FlagsUsed {
		if f == name {
			return true
		}
	}
	return false
}

// runArgs turns RUN's command line and heredocs into arguments, as
// BuildKit's dispatchRun does. A single heredoc starting with "#!" becomes
// a script file run directly (files maps its name to its content).
func runArgs(c *instructions.RunCommand) ([]string, map[string]string, error) {
	args := c.CmdLine
	if len(c.Files) == 0 {
		return args, nil, nil
	}
	if len(args) != 1 || !c.PrependShell {
		return nil, nil, errdefs.InvalidArgument(fmt.Errorf("parsing produced an invalid run command: %v", args))
	}
	if h := parser.MustParseHeredoc(args[0]); h != nil {
		data := c.Files[0].Data
		if c.Files[0].Chomp {
			data = parser.ChompHeredocContent(data)
		}
		if strings.HasPrefix(data, "#!") {
			name := c.Files[0].Name
			c.PrependShell = false
			return []string{path.Join("/dev/pipes", name)}, map[string]string{name: data}, nil
		}
		return []string{data}, nil, nil
	}
	var b strings.Builder
	b.WriteString(args[0])
	for _, f := range c.Files {
		b.WriteByte('\n')
		b.WriteString(f.Data)
		b.WriteString(f.Name)
	}
	return []string{b.String()}, nil, nil
}

// runString is RUN's history text: "|N K=V ..." for the stage's ARGs, then
// the command, as BuildKit writes it.
func (st *stage) runString(args []string) string {
	var kv []string
	idx := map[string]int{}
	for _, a := range st.args {
		v, ok := st.env.Get(a.Key)
		if !ok {
			v = a.ValueString()
		}
		if i, ok := idx[a.Key]; ok {
			kv[i] = a.Key + "=" + v
			continue
		}
		idx[a.Key] = len(kv)
		kv = append(kv, a.Key+"="+v)
	}
	if len(kv) > 0 {
		kv = append([]string{fmt.Sprintf("|%d", len(kv))}, kv...)
	}
	return strings.Join(append(kv, args...), " ")
}

// v1Layers returns the stage's layers as go-containerregistry layers over
// the store.
func (st *stage) v1Layers(ctx context.Context) ([]v1.Layer, error) {
	res, err := st.commit(ctx)
	if err != nil {
		return nil, err
	}
	return res.Image.Layers()
}

// runMounts resolves RUN --mount options: bind mounts of the context or of
// a stage or image (read-only unless rw), cache mounts (a directory kept
// under the lading root, by id), tmpfs. The key says what the cache key
// depends on (a bind source's content; never a cache mount's). Without
// resolve only the key is computed: a stage or image is not unpacked.
func (st *stage) runMounts(ctx context.Context, c *instructions.RunCommand, resolve bool) ([]RunMount, []string, error) {
	var (
		out []RunMount
		key []string
	)
	for _, m := range instructions.GetMounts(c) {
		target := m.Target
		if !path.IsAbs(target) {
			target = path.Join(st.workdir(), target)
		}
		switch m.Type {
		case instructions.MountTypeBind:
			src, skey, err := st.bindSource(ctx, m, resolve)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, RunMount{Source: src, Target: target, ReadOnly: m.ReadOnly})
			key = append(key, fmt.Sprintf("bind %s %s %s %v", skey, m.Source, target, m.ReadOnly))
		case instructions.MountTypeCache:
			dir := ""
			if resolve {
				var err error
				if dir, err = st.bd.cacheMountDir(m, target); err != nil {
					return nil, nil, err
				}
			}
			out = append(out, RunMount{Source: dir, Target: target, ReadOnly: m.ReadOnly})
			key = append(key, fmt.Sprintf("cache %s", target))
		case instructions.MountTypeTmpfs:
			out = append(out, RunMount{Target: target})
			key = append(key, "tmpfs "+target)
		default:
			return nil, nil, errdefs.InvalidArgument(fmt.Errorf("RUN --mount=type=%s is not supported", m.Type))
		}
	}
	return out, key, nil
}

// bindSource is the host directory or file of a bind mount: a path of the
// build context (resolved inside it; symlinks that leave it are refused),
// or of a stage's or image's unpacked file system.
func (st *stage) bindSource(ctx context.Context, m *instructions.Mount, resolve bool) (string, string, error) {
	src := st.bd.bctx
	skey := ""
	if m.From != "" {
		if !resolve {
			_, _, key, err := st.bd.fromRef(ctx, m.From)
			return "", key, err
		}
		c, key, err := st.bd.fromSource(ctx, m.From)
		if err != nil {
			return "", "", err
		}
		src, skey = c, key
	}
	if src == nil {
		return "", "", errdefs.InvalidArgument(errors.New("RUN --mount=type=bind needs a build context"))
	}
	rel, err := cleanSource(m.Source)
	if err != nil {
		return "", "", err
	}
	real, err := src.realPath(rel)
	if err != nil {
		return "", "", err
	}
	if skey == "" && !resolve {
		op := &copyOp{src: src, patterns: []string{real}, dest: "/"}
		if skey, err = hashSources(ctx, op, []string{real}); err != nil {
			return "", "", err
		}
	}
	return joinHost(src.dir, real), skey, nil
}

// cacheMountDir is the directory of a RUN --mount=type=cache, kept under
// the lading root by id (default: the target), created with the mount's
// uid, gid and mode.
func (bd *build) cacheMountDir(m *instructions.Mount, target string) (string, error) {
	id := m.CacheID
	if id == "" {
		id = target
	}
	dir := cacheMountPath(bd.store.Root(), id)
	if err := mkdirMount(dir, m); err != nil {
		return "", err
	}
	return dir, nil
}
