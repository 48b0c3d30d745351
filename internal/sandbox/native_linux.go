//go:build linux

package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// Native returns the Runner that builds the sandbox in Go (see the package
// documentation).
func Native(opts ...Option) Runner { return &native{o: makeOptions(opts)} }

type native struct{ o options }

func (n *native) Run(ctx context.Context, s Spec) (int, error) {
	s, err := s.validate()
	if err != nil {
		return -1, err
	}
	if err := checkRoot(s.Root); err != nil {
		return -1, err
	}
	rootless := os.Geteuid() != 0
	if rootless && (s.Limits.Pids > 0 || s.Limits.Memory > 0) {
		return -1, fmt.Errorf("sandbox: %w: limits need root (cgroups are not delegated to this user)", ErrUnsupported)
	}
	cred, err := LookupUser(s.User, rootOpener(s.Root))
	if err != nil {
		return -1, fmt.Errorf("sandbox: user %q: %w", s.User, err)
	}
	if rootless && (cred.UID != 0 || cred.GID != 0) {
		return -1, fmt.Errorf("sandbox: %w: user %q: without root only root exists inside the sandbox (one mapped user)", ErrUnsupported, s.User)
	}
	cfg := runConfig(s, cred, rootless, n.o.cgroup+"/"+s.ID, hostNetFiles(s))

	r := &nativeRun{spec: s}
	defer r.closeAll()
	cmd, err := r.command(n.o, rootless)
	if err != nil {
		return -1, err
	}
	if err := cmd.Start(); err != nil {
		return -1, startError(err, rootless)
	}
	r.afterStart()
	killWait := func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	cg, err := newCgroup(cfg.Linux.CgroupsPath, s.Limits, cmd.Process.Pid)
	if err != nil {
		killWait()
		return -1, fmt.Errorf("sandbox: %w", err)
	}
	defer cg.remove()
	if err := json.NewEncoder(r.sock).Encode(initConfig{Spec: cfg, Rootless: rootless, Chroot: n.o.chroot}); err != nil {
		killWait()
		return -1, fmt.Errorf("sandbox: send the configuration to init: %w", err)
	}
	reports := r.readReports()
	if s.TTY {
		r.startConsole()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	select {
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		r.finishConsole()
		return -1, ctx.Err()
	case waitErr = <-done:
	}
	r.finishConsole()
	rep := <-reports
	if rep.Error != "" {
		if rep.Code == 126 || rep.Code == 127 {
			return rep.Code, &ExecError{Command: rep.Command, Code: rep.Code, Err: rep.Error}
		}
		return -1, fmt.Errorf("sandbox: %s", rep.Error)
	}
	code, ok := exitCode(waitErr, cmd.ProcessState)
	if !rep.Exec {
		return -1, fmt.Errorf("sandbox: init died before running the command (%v)", cmd.ProcessState)
	}
	if !ok {
		return -1, fmt.Errorf("sandbox: wait: %w", waitErr)
	}
	return code, nil
}

// checkRoot checks that root is a directory.
func checkRoot(root string) error {
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("sandbox: root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("sandbox: root %s is not a directory", root)
	}
	return nil
}

// nativeRun is one run's descriptors and I/O copying.
type nativeRun struct {
	spec                Spec
	sock, child         *os.File // init socket: ours, the init's
	consSock, consChild *os.File // console socket (TTY)
	stdinR, stdinW      *os.File // the init's stdin pipe, when we copy
	master              *os.File // the pty master (TTY)
	output              chan struct{}
	closers             []io.Closer
}

func (r *nativeRun) closeAll() {
	for _, c := range r.closers {
		c.Close()
	}
}

func socketPair(name string) (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), name), os.NewFile(uintptr(fds[1]), name), nil
}

// command prepares the init's process: new namespaces, the sockets, stdio.
func (r *nativeRun) command(o options, rootless bool) (*exec.Cmd, error) {
	var err error
	if r.sock, r.child, err = socketPair("init"); err != nil {
		return nil, err
	}
	r.closers = append(r.closers, r.sock, r.child)
	extra := []*os.File{r.child}
	if r.spec.TTY {
		if r.consSock, r.consChild, err = socketPair("console"); err != nil {
			return nil, err
		}
		r.closers = append(r.closers, r.consSock, r.consChild)
		extra = append(extra, r.consChild)
	}
	cmd := exec.Command(o.initPath, o.initArgs...)
	cmd.Env = []string{}
	cmd.ExtraFiles = extra
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if r.spec.Network != "host" {
		flags |= unix.CLONE_NEWNET
	}
	attr := &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL}
	if rootless {
		attr.Cloneflags |= unix.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr
	if r.spec.TTY {
		return cmd, nil // the init's stdio is the pty it makes; early errors come over the socket
	}
	cmd.Stdout, cmd.Stderr = r.spec.Stdout, r.spec.Stderr
	switch in := r.spec.Stdin.(type) {
	case nil:
	case *os.File:
		cmd.Stdin = in
	default:
		// Copy through our own pipe, so that Wait does not wait for a
		// reader that may never end.
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		r.closers = append(r.closers, pr, pw)
		cmd.Stdin = pr
		r.stdinR, r.stdinW = pr, pw
	}
	return cmd, nil
}

// afterStart closes the init's ends of the sockets and starts copying
// stdin.
func (r *nativeRun) afterStart() {
	r.child.Close()
	if r.consChild != nil {
		r.consChild.Close()
	}
	if r.stdinW != nil {
		r.stdinR.Close()
		w, in := r.stdinW, r.spec.Stdin
		go func() {
			io.Copy(w, in)
			w.Close()
		}()
	}
}

// readReports collects the init's reports until it execs or dies.
func (r *nativeRun) readReports() <-chan initReport {
	ch := make(chan initReport, 1)
	go func() {
		var last initReport
		dec := json.NewDecoder(r.sock)
		for {
			var rep initReport
			if err := dec.Decode(&rep); err != nil {
				break
			}
			if rep.Exec {
				last.Exec = true
			}
			if rep.Error != "" {
				last.Error, last.Code, last.Command = rep.Error, rep.Code, rep.Command
			}
		}
		ch <- last
	}()
	return ch
}

// startConsole receives the pty master from the init and copies between it
// and the spec's streams.
func (r *nativeRun) startConsole() {
	r.output = make(chan struct{})
	go func() {
		defer close(r.output)
		buf := make([]byte, 1)
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := unix.Recvmsg(int(r.consSock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil || oobn == 0 {
			return // the init failed before making the console
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return
		}
		r.master = os.NewFile(uintptr(fds[0]), "pty master")
		if in := r.spec.Stdin; in != nil {
			go io.Copy(r.master, in)
		}
		if rs := r.spec.Resize; rs != nil {
			go resizeLoop(r.master, rs)
		}
		out := r.spec.Stdout
		if out == nil {
			out = io.Discard
		}
		io.Copy(out, r.master) // ends with EIO when the last slave descriptor closes
	}()
}

func (r *nativeRun) finishConsole() {
	if r.output != nil {
		r.consSock.Close()
		<-r.output
		if r.master != nil {
			r.master.Close()
		}
	}
}

func resizeLoop(master *os.File, rs <-chan WinSize) {
	for ws := range rs {
		if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Rows, Col: ws.Cols}); err != nil {
			return
		}
	}
}

// exitCode is the shell's view of how a process ended: its exit status, or
// 128+n for signal n.
func exitCode(err error, ps *os.ProcessState) (int, bool) {
	if ps == nil {
		return -1, false
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Exited():
			return ws.ExitStatus(), true
		case ws.Signaled():
			return 128 + int(ws.Signal()), true
		}
	}
	var ee *exec.ExitError
	if err == nil || errors.As(err, &ee) {
		return ps.ExitCode(), true
	}
	return -1, false
}

// startError explains why the init could not be started.
func startError(err error, rootless bool) error {
	if rootless && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EACCES)) {
		return fmt.Errorf("sandbox: %w: not running as root, and this system does not let unprivileged users create user namespaces (%v); run as root, or allow them (sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1, kernel.apparmor_restrict_unprivileged_userns=0)", ErrUnsupported, err)
	}
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("sandbox: %w: cannot create namespaces (%v): CAP_SYS_ADMIN is missing (a container without privileges?)", ErrUnsupported, err)
	}
	return fmt.Errorf("sandbox: start init: %w", err)
}
