package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lading-dev/lading/internal/rootfs"
	"github.com/lading-dev/lading/internal/sandbox"
)

// Stdio is what a running container's streams are connected to.
type Stdio struct {
	In          io.Reader // nil: empty
	Out, Err    io.Writer
	ConsoleSize sandbox.WinSize
	Resize      <-chan sandbox.WinSize
}

// Runner returns the sandbox runtime a container runs with.
func (s *Store) Runner(runtime string) sandbox.Runner {
	if runtime == "runc" {
		return sandbox.Runc("", sandbox.WithStateDir(s.runcState()), sandbox.WithLogger(s.log))
	}
	return sandbox.Native(sandbox.WithLogger(s.log))
}

func (s *Store) runcState() string { return filepath.Join(s.dir, ".runc") }

func (c *Container) sandboxID() string { return "lading-" + c.ShortID() }

// runcDelete removes what runc may still hold of c after a process running
// it was killed.
func (s *Store) runcDelete(ctx context.Context, c *Container) {
	root := filepath.Join(s.runcState(), "runc")
	if _, err := os.Stat(root); err != nil {
		return
	}
	exec.CommandContext(ctx, "runc", "--root", root, "delete", "--force", c.sandboxID()).Run()
}

// Run runs the container in the foreground with its runtime, and returns
// the process's exit code (see sandbox.Runner). It holds the container's
// run lock while it runs: a second Run of the same container fails with a
// conflict.
func (c *Container) Run(ctx context.Context, stdio Stdio) (int, error) {
	done, err := c.use()
	if err != nil {
		return -1, err
	}
	defer done()
	runLock, err := c.lock("run.lock", syscall.LOCK_EX, "is already running")
	if err != nil {
		return -1, err
	}
	defer runLock.Close()
	// A mount left by a process that was killed while running it.
	if err := rootfs.Unmount(c.path("rootfs/merged")); err != nil {
		return -1, err
	}
	if c.Runtime == "runc" {
		c.s.runcDelete(ctx, c)
	}
	fsys, err := rootfs.Open(ctx, c.path("rootfs"), rootfs.WithCache(c.s.LayerCache()), rootfs.WithLogger(c.s.log))
	if err != nil {
		return -1, err
	}
	defer fsys.Close()
	st := State{Status: Running, Pid: os.Getpid(), Started: time.Now().UTC()}
	if err := c.setState(st); err != nil {
		return -1, err
	}
	spec := sandbox.Spec{
		ID:          c.sandboxID(),
		Root:        fsys.Dir(),
		Args:        c.Args,
		Env:         c.Config.Env,
		Dir:         c.Config.WorkingDir,
		User:        c.Config.User,
		Network:     c.Network,
		Mounts:      c.Mounts,
		Hostname:    c.Config.Hostname,
		Stdin:       stdio.In,
		Stdout:      stdio.Out,
		Stderr:      stdio.Err,
		TTY:         c.Config.Tty,
		ConsoleSize: stdio.ConsoleSize,
		Resize:      stdio.Resize,
		Limits:      c.Limits,
	}
	code, runErr := c.s.Runner(c.Runtime).Run(ctx, spec)
	st.Status, st.ExitCode, st.Finished, st.Pid = Exited, code, time.Now().UTC(), 0
	if runErr != nil {
		st.Error = runErr.Error()
		var ee *sandbox.ExecError
		if !errors.As(runErr, &ee) && code < 0 {
			st.ExitCode = 125 // as docker: the container could not run
		}
	}
	if err := c.setState(st); err != nil && runErr == nil {
		runErr = fmt.Errorf("container %s: record its state: %w", c.Name, err)
	}
	return code, runErr
}
