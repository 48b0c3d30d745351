//go:build linux

package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Runc returns the Runner that runs a Spec with runc: it writes an OCI
// runtime bundle (config.json, the root given by path) in the state
// directory and runs `runc run` on it in the foreground, with runc's state
// under <state>/runc. path is the runc binary ("" finds runc in PATH).
//
// The container's exit status is runc's. runc exits with 1 when it fails
// before the process starts; the pid file runc writes once the container
// exists tells the two apart, and runc's JSON log says what went wrong.
// If the calling process is killed, runc gets SIGKILL and the container
// may keep running; it is named lading-<id> in that runc state root.
func Runc(path string, opts ...Option) Runner {
	return &runcRunner{path: path, o: makeOptions(opts)}
}

type runcRunner struct {
	path string
	o    options
}

func (r *runcRunner) Run(ctx context.Context, s Spec) (int, error) {
	s, err := s.validate()
	if err != nil {
		return -1, err
	}
	if err := checkRoot(s.Root); err != nil {
		return -1, err
	}
	if os.Geteuid() != 0 {
		return -1, fmt.Errorf("sandbox: %w: runc needs root here (rootless runc is not set up by lading)", ErrUnsupported)
	}
	bin := r.path
	if bin == "" {
		if bin, err = exec.LookPath("runc"); err != nil {
			return -1, fmt.Errorf("sandbox: %w: runc not found in PATH (install the runc package)", ErrUnsupported)
		}
	}
	cred, err := LookupUser(s.User, rootOpener(s.Root))
	if err != nil {
		return -1, fmt.Errorf("sandbox: user %q: %w", s.User, err)
	}
	id := s.ID
	state := r.o.stateDir
	if state == "" {
		state = filepath.Join(os.TempDir(), "lading-runc")
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return -1, fmt.Errorf("sandbox: %w", err)
	}
	bundle, err := os.MkdirTemp(state, "bundle-")
	if err != nil {
		return -1, fmt.Errorf("sandbox: %w", err)
	}
	defer os.RemoveAll(bundle)
	cfg := runConfig(s, cred, false, r.o.cgroup+"/"+id, hostNetFiles(s))
	b, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return -1, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return -1, fmt.Errorf("sandbox: %w", err)
	}
	runcRoot := filepath.Join(state, "runc")
	logFile := filepath.Join(bundle, "log.json")
	pidFile := filepath.Join(bundle, "pid")
	global := []string{"--root", runcRoot, "--log", logFile, "--log-format", "json"}
	cmd := exec.Command(bin, append(global, "run", "--bundle", bundle, "--pid-file", pidFile, id)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	rio, err := r.stdio(cmd, s)
	if err != nil {
		return -1, err
	}
	defer rio.close()
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("sandbox: start runc: %w", err)
	}
	rio.started()
	defer exec.Command(bin, append(global, "delete", "--force", id)...).Run()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	select {
	case <-ctx.Done():
		exec.Command(bin, append(global, "kill", "--all", id, "KILL")...).Run()
		cmd.Process.Kill()
		<-done
		rio.finish()
		return -1, ctx.Err()
	case waitErr = <-done:
	}
	rio.finish()
	code, ok := exitCode(waitErr, cmd.ProcessState)
	if _, err := os.Stat(pidFile); errors.Is(err, fs.ErrNotExist) {
		return runcFailure(logFile, s.Args[0], code)
	}
	if !ok {
		return -1, fmt.Errorf("sandbox: runc: %w", waitErr)
	}
	return code, nil
}

// runcFailure turns runc's log of a failed start into an error.
func runcFailure(logFile, command string, code int) (int, error) {
	msg := ""
	if f, err := os.Open(logFile); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l struct{ Level, Msg string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && (l.Level == "error" || l.Level == "fatal") {
				msg = l.Msg
			}
		}
		f.Close()
	}
	if msg == "" {
		return -1, fmt.Errorf("sandbox: runc exited with %d before starting the container", code)
	}
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") && strings.Contains(msg, "exec:"):
		return 127, &ExecError{Command: command, Code: 127, Err: msg}
	case strings.Contains(msg, "permission denied") && strings.Contains(msg, "exec:"):
		return 126, &ExecError{Command: command, Code: 126, Err: msg}
	}
	return -1, fmt.Errorf("sandbox: runc: %s", msg)
}

// runcIO connects runc's stdio to a Spec's streams: directly, or through
// a pty on the host whose slave runc proxies to the container's console.
type runcIO struct {
	spec           Spec
	master, slave  *os.File
	stdinR, stdinW *os.File
	output         chan struct{}
}

func (r *runcRunner) stdio(cmd *exec.Cmd, s Spec) (*runcIO, error) {
	rio := &runcIO{spec: s}
	if !s.TTY {
		cmd.Stdout, cmd.Stderr = s.Stdout, s.Stderr
		switch in := s.Stdin.(type) {
		case nil:
		case *os.File:
			cmd.Stdin = in
		default:
			pr, pw, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			cmd.Stdin, rio.stdinR, rio.stdinW = pr, pr, pw
		}
		return rio, nil
	}
	m, sl, err := openPty()
	if err != nil {
		return nil, fmt.Errorf("sandbox: pty: %w", err)
	}
	rio.master, rio.slave = m, sl
	unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: s.ConsoleSize.Rows, Col: s.ConsoleSize.Cols})
	cmd.Stdin, cmd.Stdout, cmd.Stderr = sl, sl, sl
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0
	return rio, nil
}

func (rio *runcIO) started() {
	if rio.stdinW != nil {
		rio.stdinR.Close()
		w, in := rio.stdinW, rio.spec.Stdin
		go func() {
			io.Copy(w, in)
			w.Close()
		}()
	}
	if rio.master == nil {
		return
	}
	rio.slave.Close()
	rio.output = make(chan struct{})
	if in := rio.spec.Stdin; in != nil {
		go io.Copy(rio.master, in)
	}
	if rs := rio.spec.Resize; rs != nil {
		go resizeLoop(rio.master, rs)
	}
	go func() {
		defer close(rio.output)
		out := rio.spec.Stdout
		if out == nil {
			out = io.Discard
		}
		io.Copy(out, rio.master)
	}()
}

func (rio *runcIO) finish() {
	if rio.output != nil {
		<-rio.output
	}
}

func (rio *runcIO) close() {
	for _, f := range []*os.File{rio.master, rio.slave, rio.stdinR, rio.stdinW} {
		if f != nil {
			f.Close()
		}
	}
}

// openPty opens a new pseudo-terminal pair on the host.
func openPty() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, err
	}
	r1, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(m)
		return nil, nil, errno
	}
	return os.NewFile(uintptr(m), "pty master"), os.NewFile(r1, "pty slave"), nil
}
