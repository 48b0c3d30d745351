package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/rootfs"
	"github.com/lading-dev/lading/internal/sandbox"
)

// NewRunner returns the runner of RUN steps for a --runtime value: "native"
// (lading's own sandbox) or "runc" (a runc from PATH), over root file
// systems made by internal/rootfs with unpacked layers cached in
// layerCache.
func NewRunner(runtime, layerCache string, log *slog.Logger, opts ...RunnerOption) (Runner, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var r sandbox.Runner
	switch runtime {
	case "native", "":
		r = sandbox.Native(sandbox.WithLogger(log))
	case "runc":
		r = sandbox.Runc("", sandbox.WithLogger(log), sandbox.WithStateDir(filepath.Join(layerCache, "tmp")))
	default:
		return nil, errdefs.InvalidArgument(fmt.Errorf("--runtime %q: want native or runc", runtime))
	}
	sr := &sandboxRunner{r: r, cache: layerCache, log: log}
	for _, o := range opts {
		o(sr)
	}
	return sr, nil
}

// RunnerOption configures the runner NewRunner returns.
type RunnerOption func(*sandboxRunner)

// WithLimits sets the resource limits of every RUN step: a cgroup (v2
// where its controllers are available, else v1) limiting the step's
// processes and memory, as `docker build --memory` and `buildah
// --pids-limit` do. Zero values mean no limit. Without root, limits make a
// RUN step fail saying so.
func WithLimits(l sandbox.Limits) RunnerOption {
	return func(s *sandboxRunner) { s.limits = l }
}

type sandboxRunner struct {
	r      sandbox.Runner
	cache  string
	log    *slog.Logger
	limits sandbox.Limits
}

// Run makes a writable root file system over the layers, runs the step in
// the sandbox, removes the mount points the sandbox had to create (as
// BuildKit's stub cleaner does), and writes the diff.
func (s *sandboxRunner) Run(ctx context.Context, req *RunRequest, diff io.Writer) error {
	fsys, err := rootfs.New(ctx, req.Layers, rootfs.WithCache(s.cache), rootfs.WithLogger(s.log))
	if err != nil {
		return err
	}
	defer fsys.Remove()
	spec := sandbox.Spec{
		Root: fsys.Dir(), Args: req.Args, Env: req.Env, Dir: req.Dir, User: req.User,
		Network: req.Network, Hostname: req.Hostname, Stdout: req.Stdout, Stderr: req.Stderr,
		Limits: s.limits,
	}
	if spec.Hostname == "" {
		spec.Hostname = "buildkitsandbox"
	}
	for _, m := range req.Mounts {
		sm := sandbox.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		if m.Source == "" {
			sm.Type = "tmpfs"
		}
		spec.Mounts = append(spec.Mounts, sm)
	}
	if len(req.Files) > 0 {
		dir, err := os.MkdirTemp(s.cache, "pipes-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		for name, data := range req.Files {
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), []byte(data), 0o755); err != nil {
				return err
			}
		}
		spec.Mounts = append(spec.Mounts, sandbox.Mount{Source: dir, Target: "/dev/pipes", ReadOnly: true})
	}
	stubs := missing(fsys.Dir(), stubCandidates(spec))
	code, err := s.r.Run(ctx, spec)
	if err != nil {
		if errors.Is(err, sandbox.ErrUnsupported) {
			return errdefs.Unavailable(fmt.Errorf("RUN: %w", err))
		}
		return err
	}
	if code != 0 {
		return &ExitError{Args: req.Args, Code: code}
	}
	removeStubs(fsys.Dir(), stubs)
	return fsys.Diff(ctx, diff, rootfs.DiffOptions{SourceDateEpoch: req.Epoch})
}

// stubCandidates are the paths the sandbox may create in the root to mount
// on: its own mounts and the bind and tmpfs mounts of the step.
func stubCandidates(s sandbox.Spec) []string {
	out := []string{"/proc", "/sys", "/dev", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname"}
	for _, m := range s.Mounts {
		out = append(out, m.Target)
	}
	return out
}

// missing returns the candidates (and their missing parents) that do not
// exist in root, deepest first.
func missing(root string, cands []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range cands {
		for p := path.Clean(c); p != "/" && p != "."; p = path.Dir(p) {
			if seen[p] {
				continue
			}
			seen[p] = true
			if _, err := os.Lstat(filepath.Join(root, p)); errors.Is(err, os.ErrNotExist) {
				out = append(out, p)
			}
		}
	}
	// deepest first
	for i := 0; i < len(out); i++ {
		for j := i + 1; j < len(out); j++ {
			if strings.Count(out[j], "/") > strings.Count(out[i], "/") {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// removeStubs removes the mount points the sandbox created, when they are
// still empty (a step that wrote into one keeps it).
func removeStubs(root string, stubs []string) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return
	}
	defer r.Close()
	for _, p := range stubs {
		rel := strings.TrimPrefix(p, "/")
		fi, err := r.Lstat(rel)
		if err != nil {
			continue
		}
		if fi.IsDir() || (fi.Mode().IsRegular() && fi.Size() == 0) {
			r.Remove(rel) // fails, as it should, for a directory that is not empty
		}
	}
}
