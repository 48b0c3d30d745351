package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/container"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sandbox"
)

// runFlags are the flags of `lading run`.
type runFlags struct {
	rm, interactive, tty         bool
	name, workdir, user, network string
	runtime, hostname            string
	entrypoint                   string
	envs, volumes                []string
	memory                       string
	pids                         int64
}

func newRunCommand(e *env) *cobra.Command {
	var (
		f  imageFlags
		rf runFlags
	)
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [CMD...]",
		Short: "Run a command in a new container",
		Long: `Create a container from IMAGE and run it in the foreground, as docker run does.
The image comes from any transport and is pulled into the local store first when
it is not there. The container's root file system is a writable layer over the
image's layers (kernel overlayfs when root, a copy otherwise); its Entrypoint,
Cmd, Env, User and WorkingDir are honoured, and CMD replaces the image's Cmd.

The process runs in a sandbox: new mount, PID, UTS, IPC and network namespaces
(no network unless --network host), a minimal /dev, Docker's default
capabilities and no-new-privileges; --runtime runc runs it with runc instead.
Standard output and error are attached; standard input with -i; -t gives it a
terminal. lading's exit code is the process's; 125 means the container could
not run, 126 and 127 that the command could not be executed.

The container stays (see lading ps -a, diff, export, commit) unless --rm.`,
		Example: `  lading run --rm alpine:3.20 echo hello
  lading run -it --name box alpine:3.20 /bin/sh
  lading run -v "$PWD":/src:ro -w /src -e GOFLAGS=-mod=mod golang:1.26 go build ./...`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.run(cmd.Context(), &f, &rf, args)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false) // flags after IMAGE belong to the command
	fl.BoolVar(&rf.rm, "rm", false, "remove the container when it exits")
	fl.StringVar(&rf.name, "name", "", "name of the container (default: generated)")
	fl.StringArrayVarP(&rf.envs, "env", "e", nil, "set an environment variable KEY=VALUE (KEY alone: the value here)")
	fl.StringArrayVarP(&rf.volumes, "volume", "v", nil, "bind mount HOST:CTR[:ro] (HOST an absolute path)")
	fl.StringVarP(&rf.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&rf.user, "user", "u", "", "user to run as: name|uid[:group|gid]")
	fl.StringVar(&rf.network, "network", "none", "network: none (loopback only) or host")
	fl.StringVar(&rf.runtime, "runtime", "native", "runtime: native (lading's sandbox) or runc")
	fl.BoolVarP(&rf.interactive, "interactive", "i", false, "keep standard input attached")
	fl.BoolVarP(&rf.tty, "tty", "t", false, "allocate a pseudo-terminal")
	fl.StringVar(&rf.hostname, "hostname", "", "host name inside the container (default: the short ID)")
	fl.StringVar(&rf.entrypoint, "entrypoint", "", "replace the image's entrypoint (and drop its Cmd)")
	fl.StringVarP(&rf.memory, "memory", "m", "", "memory limit, such as 256m")
	fl.Int64Var(&rf.pids, "pids-limit", 0, "maximum number of processes")
	f.register(fl)
	return cmd
}

func (e *env) run(ctx context.Context, f *imageFlags, rf *runFlags, args []string) error {
	opts, err := rf.createOptions(args[1:])
	if err != nil {
		return err
	}
	ref, err := parseRef(args[0])
	if err != nil {
		return err
	}
	ss, err := e.begin(f, true)
	if err != nil {
		return err
	}
	defer ss.Close()
	img, err := ss.storedImage(ctx, ref)
	if err != nil {
		return err
	}
	opts.Image, opts.ImageRef = img, args[0]
	cs, err := e.openContainers()
	if err != nil {
		return err
	}
	c, err := cs.Create(ctx, opts)
	if err != nil {
		return err
	}
	if rf.rm {
		defer func() {
			if err := cs.Remove(context.WithoutCancel(ctx), c, true); err != nil {
				e.log.Warn("remove the container", "name", c.Name, "err", err)
			}
		}()
	}
	stdio, restore, err := e.containerStdio(rf)
	if err != nil {
		return err
	}
	code, err := c.Run(ctx, stdio)
	restore()
	var ee *sandbox.ExecError
	switch {
	case errors.As(err, &ee):
		return &exitCodeError{code: ee.Code, err: err}
	case err != nil:
		return &exitCodeError{code: 125, err: err}
	case code != 0:
		return &exitCodeError{code: code}
	}
	return nil
}

// createOptions turns the flags into container options; cmd is what
// follows IMAGE.
func (rf *runFlags) createOptions(cmd []string) (container.CreateOptions, error) {
	o := container.CreateOptions{
		Name: rf.name, User: rf.user, WorkingDir: rf.workdir, Hostname: rf.hostname,
		Network: rf.network, Runtime: rf.runtime, TTY: rf.tty, Stdin: rf.interactive,
	}
	bad := func(format string, a ...any) (container.CreateOptions, error) {
		return o, usageError{errdefs.InvalidArgument(fmt.Errorf(format, a...))}
	}
	if len(cmd) > 0 {
		o.Cmd = cmd
	}
	if rf.entrypoint != "" {
		o.Entrypoint = []string{rf.entrypoint}
	}
	switch rf.network {
	case "none", "host":
	default:
		return bad("--network %q: want none or host", rf.network)
	}
	switch rf.runtime {
	case "native", "runc":
	default:
		return bad("--runtime %q: want native or runc", rf.runtime)
	}
	if rf.workdir != "" && !strings.HasPrefix(rf.workdir, "/") {
		return bad("--workdir %q: want an absolute path", rf.workdir)
	}
	for _, kv := range rf.envs {
		k, _, ok := strings.Cut(kv, "=")
		if k == "" {
			return bad("--env %q: want KEY=VALUE or KEY", kv)
		}
		if !ok {
			v, set := os.LookupEnv(k)
			if !set {
				continue // as docker: a KEY not set here is left out
			}
			kv = k + "=" + v
		}
		o.Env = append(o.Env, kv)
	}
	for _, v := range rf.volumes {
		m, err := parseVolume(v)
		if err != nil {
			return o, err
		}
		o.Mounts = append(o.Mounts, m)
	}
	mem, err := parseBytes(rf.memory)
	if err != nil {
		return o, err
	}
	o.Limits = sandbox.Limits{Memory: mem, Pids: rf.pids}
	return o, nil
}

// parseVolume reads -v HOST:CTR[:ro|rw]. The host directory is made when
// missing, as docker does.
func parseVolume(v string) (sandbox.Mount, error) {
	parts := strings.Split(v, ":")
	bad := func(why string) (sandbox.Mount, error) {
		return sandbox.Mount{}, usageError{errdefs.InvalidArgument(fmt.Errorf("--volume %q: %s", v, why))}
	}
	if len(parts) < 2 || len(parts) > 3 {
		return bad("want HOST:CONTAINER[:ro]")
	}
	m := sandbox.Mount{Type: "bind", Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return bad("mode " + parts[2] + ": want ro or rw")
		}
	}
	if !filepath.IsAbs(m.Source) {
		return bad("named volumes are not supported: give an absolute host path")
	}
	if !strings.HasPrefix(m.Target, "/") || filepath.Clean(m.Target) == "/" {
		return bad("the container path must be absolute and not /")
	}
	if _, err := os.Stat(m.Source); os.IsNotExist(err) {
		if err := os.MkdirAll(m.Source, 0o755); err != nil {
			return bad(err.Error())
		}
	}
	return m, nil
}

// containerStdio connects the container to lading's streams: stdin with
// -i, a raw terminal with -t when stdin is one.
func (e *env) containerStdio(rf *runFlags) (container.Stdio, func(), error) {
	sio := container.Stdio{Out: e.stdout, Err: e.stderr}
	restore := func() {}
	if rf.interactive {
		sio.In = e.stdin
	}
	if !rf.tty {
		return sio, restore, nil
	}
	in, ok := e.stdin.(*os.File)
	if !ok || !isTerminal(in) {
		if out, ok := e.stdout.(*os.File); ok {
			if ws, ok := terminalSize(out); ok {
				sio.ConsoleSize = ws
			}
		}
		return sio, restore, nil
	}
	if ws, ok := terminalSize(in); ok {
		sio.ConsoleSize = ws
	}
	var stops []func()
	if rf.interactive {
		r, err := rawTerminal(in)
		if err != nil {
			return sio, restore, fmt.Errorf("terminal: %w", err)
		}
		stops = append(stops, r)
	}
	resize, stop := watchResize(in)
	sio.Resize = resize
	stops = append(stops, stop)
	return sio, func() {
		for _, s := range stops {
			s()
		}
	}, nil
}
