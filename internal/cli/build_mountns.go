package cli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"syscall"
)

// privateMountsEnv marks a `lading build` that runs in its own mount
// namespace already.
const privateMountsEnv = "LADING_BUILD_PRIVATE_MOUNTS"

// wantsPrivateMounts reports whether this `lading build` should run again
// in a private mount namespace: as root (overlayfs mounts for RUN steps are
// made in the caller's namespace), not yet in one, and started from lading's
// own command line (so it can run itself again).
func (e *env) wantsPrivateMounts() bool {
	return os.Geteuid() == 0 && os.Getenv(privateMountsEnv) == "" && len(e.args) > 0 && slices.Equal(e.args, os.Args[1:])
}

// inPrivateMounts runs this command again in a new, private mount namespace
// and returns its exit status. The namespace ends with the child, and the
// child ends with this process (SIGKILL when it dies): the overlay mounts
// of RUN steps go with them however the build ends, SIGKILL included, and
// never show in the caller's namespace. ok is false when the namespace
// cannot be made (then the caller builds here).
func (e *env) inPrivateMounts(ctx context.Context) (ok bool, err error) {
	exe, err := os.Executable()
	if err != nil {
		return false, nil
	}
	cmd := exec.Command(exe, e.args...)
	cmd.Env = append(os.Environ(), privateMountsEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	// Go makes the new namespace's mounts private (MS_REC|MS_PRIVATE on /).
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
			return false, nil
		}
		return true, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		cmd.Process.Signal(syscall.SIGTERM) // the child cleans up and exits
		err = <-done
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if code < 0 {
			code = exitError
		}
		return true, &exitCodeError{code: code}
	}
	return true, err
}
