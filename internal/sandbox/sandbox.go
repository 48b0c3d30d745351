// Package sandbox runs a process in an isolated Linux sandbox over an
// assembled root file system, the way a container runtime does: for RUN
// steps of a build and for `lading run`.
//
// Two [Runner]s run the same [Spec]; both first turn it into one OCI runtime
// configuration (the config.json of the runtime specification, with the
// namespaces, mounts, capabilities, rlimits and masked paths listed below),
// so that they isolate a process the same way:
//
//   - [Native] builds the sandbox here, in Go: it starts the running
//     program again (/proc/self/exe) as the sandbox's init in new mount,
//     PID, UTS, IPC and (unless Network is "host") network namespaces. The
//     init makes its mounts private, mounts /proc, a minimal /dev, /dev/pts,
//     /dev/shm, /dev/mqueue and /sys, masks the paths Docker masks, pivots
//     into the root (MS_MOVE and chroot where pivot_root cannot work, as on
//     an initramfs, or with [WithChroot]; the process then also loses
//     CAP_SYS_CHROOT), drops to Docker's default capability set with
//     no_new_privs, switches to the user and replaces itself with the
//     process (execve), which is then PID 1 of its namespace: when it exits,
//     the kernel kills everything else inside. A program using Native must
//     call [Init] when it is started with [InitArg] as its first argument
//     (cmd/lading through internal/cli; test binaries in TestMain through
//     [MaybeInit]).
//   - [Runc] writes the configuration into an OCI runtime bundle and runs a
//     real runc on it (`runc run`).
//
// Differences: runc keeps device nodes from being used through the devices
// cgroup; the native sandbox has none, so it mounts the root, bind mounts
// and /dev with nodev and bind mounts the host's own null, zero, full,
// random, urandom and tty nodes into /dev (device nodes a process makes with
// CAP_MKNOD cannot be opened).
//
// Both load one seccomp profile (in the configuration; the native sandbox
// compiles it to BPF itself): everything is allowed except what Docker's
// default profile refuses to a container without CAP_SYS_ADMIN that matters
// without it: the kernel keyring, BPF, perf events, userfaultfd, modules,
// kexec, file handles, new namespaces (unshare, setns, clone with namespace
// flags; clone3 is ENOSYS) and mounts, which a process could otherwise make
// in a user namespace of its own. 32-bit compat system calls are refused.
//
// Running as root is needed, or, for Native, unprivileged user namespaces:
// then the sandbox runs in a new user namespace that maps the caller to root
// (limits are not applied and only root exists inside). Without either, Run
// fails with an error saying what is missing.
//
// Limits are applied through a new cgroup below the caller's own: cgroup v2
// where its controllers are available, else cgroup v1's pids and memory
// hierarchies. A limit that no writable cgroup can enforce is an error.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Spec is what to run and how to isolate it.
type Spec struct {
	// ID names the sandbox: runc's container ID and the name of the cgroup
	// made for limits. Default: "lading-" and random hex digits. Letters,
	// digits, '_', '.' and '-' only.
	ID string
	// Root is the directory of the assembled root file system (such as
	// rootfs.FS.Dir). It is used in place: writes inside go to it.
	Root string
	// Args is the command; Args[0] is looked up in the PATH of Env inside
	// the root when it holds no slash.
	Args []string
	// Env is the process environment, KEY=VALUE. PATH is added when
	// missing (Docker's default), HOME from the user's passwd entry,
	// HOSTNAME from Hostname and TERM=xterm with TTY.
	Env []string
	// Dir is the working directory inside the root (default "/"); it is
	// created when missing, as Docker does.
	Dir string
	// User is "uid[:gid]", "name[:group]" or empty for root. Names are
	// looked up in the root's /etc/passwd and /etc/group; the user's
	// supplementary groups come from /etc/group.
	User string
	// Network is "none" (the default: a new network namespace with only
	// the loopback interface, up) or "host" (the host's network; the host's
	// /etc/resolv.conf and /etc/hosts are bind mounted read-only over the
	// root's, where the root has them).
	Network string
	// Mounts are bind mounts (cache mounts are bind mounts too) and
	// size-limited tmpfs mounts, in order. Targets are resolved inside the
	// root, symlinks included, and never leave it; missing targets are
	// created (directories, or an empty file for a file source).
	Mounts []Mount
	// Hostname is the sandbox's host name (default "lading").
	Hostname string
	// Stdin, Stdout and Stderr are the process's standard streams. A nil
	// Stdin reads as empty (/dev/null); nil writers discard.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// TTY gives the process a pseudo-terminal made inside the sandbox
	// (its /dev/pts) as stdin, stdout, stderr and controlling terminal;
	// Stdin is copied to it and its output to Stdout. Stderr is unused.
	TTY bool
	// ConsoleSize is the terminal's initial size with TTY (default 80x24);
	// each value received on Resize changes it.
	ConsoleSize WinSize
	Resize      <-chan WinSize
	// Limits are resource limits; zero values mean none.
	Limits Limits
}

// Mount is one mount of a [Spec].
type Mount struct {
	// Type is "bind" (the default) or "tmpfs".
	Type string
	// Source is the host path of a bind mount.
	Source string
	// Target is the absolute path inside the root.
	Target string
	// ReadOnly makes the mount read-only.
	ReadOnly bool
	// Size limits a tmpfs, in bytes (0: the kernel's default, half of RAM).
	Size int64
}

// Limits are resource limits for everything the sandbox runs.
type Limits struct {
	// Pids is the maximum number of processes and threads (pids.max).
	Pids int64
	// Memory is the maximum memory in bytes (memory.max, or
	// memory.limit_in_bytes on cgroup v1).
	Memory int64
}

// WinSize is a terminal size.
type WinSize struct{ Rows, Cols uint16 }

// Runner runs a Spec.
type Runner interface {
	// Run runs s to completion and returns the process's exit code (128+n
	// when signal n ended it). A non-zero exit of the process is exitCode,
	// not err; err says that the sandbox could not be made or the process
	// could not be started (then exitCode is -1, or 126/127 with an
	// [*ExecError]). When ctx ends, everything in the sandbox is killed and
	// Run returns ctx.Err().
	Run(ctx context.Context, s Spec) (exitCode int, err error)
}

// ExecError says the command could not be executed inside the sandbox: not
// found (Code 127) or not executable (Code 126), as a shell reports it.
type ExecError struct {
	Command string
	Code    int
	Err     string
}

func (e *ExecError) Error() string {
	return fmt.Sprintf("exec %q: %s", e.Command, e.Err)
}

// Unwrap classifies the error: a missing command is errdefs.ErrNotFound.
func (e *ExecError) Unwrap() error {
	if e.Code == 127 {
		return errdefs.ErrNotFound
	}
	return errdefs.ErrInvalidArgument
}

// ErrUnsupported is wrapped by the error Run returns when this machine
// cannot make a sandbox (not root and no user namespaces, no runc, limits
// without a writable cgroup). It is errdefs.ErrUnsupported.
var ErrUnsupported = errdefs.ErrUnsupported

// Option configures a Runner.
type Option func(*options)

type options struct {
	log      *slog.Logger
	stateDir string
	initPath string
	initArgs []string
	cgroup   string
	chroot   bool
}

func makeOptions(opts []Option) options {
	o := options{initPath: "/proc/self/exe", initArgs: []string{InitArg}, cgroup: "lading"}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	return o
}

// WithLogger sets where warnings go (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithStateDir sets where a runner keeps state while it runs: runc's state
// root and bundles (default: a directory in os.TempDir()).
func WithStateDir(dir string) Option { return func(o *options) { o.stateDir = dir } }

// WithInit sets the program Native starts as the sandbox's init (default
// /proc/self/exe with [InitArg]); it must call [Init].
func WithInit(path string, args ...string) Option {
	return func(o *options) { o.initPath, o.initArgs = path, args }
}

// WithCgroupParent names the cgroup, below the caller's own, that holds the
// per-run cgroups made for limits (default "lading").
func WithCgroupParent(name string) Option { return func(o *options) { o.cgroup = name } }

// WithChroot makes Native move the root over / and chroot into it instead
// of using pivot_root: what it falls back to where pivot_root cannot work
// (a root on the initramfs). Either way, after a chroot the process loses
// CAP_SYS_CHROOT, with which it could climb out of a chroot.
func WithChroot() Option { return func(o *options) { o.chroot = true } }

// InitArg is the first argument a Native runner starts its init with.
const InitArg = "__lading-sandbox-init"

// validate checks what both runners need and fills defaults in a copy.
func (s Spec) validate() (Spec, error) {
	bad := func(format string, a ...any) (Spec, error) {
		return s, errdefs.InvalidArgument(fmt.Errorf("sandbox: "+format, a...))
	}
	if s.Root == "" || !path.IsAbs(s.Root) {
		return bad("root %q: want an absolute directory", s.Root)
	}
	if len(s.Args) == 0 || s.Args[0] == "" {
		return bad("no command to run")
	}
	switch s.Network {
	case "":
		s.Network = "none"
	case "none", "host":
	default:
		return bad("network %q: want none or host", s.Network)
	}
	if s.Dir == "" {
		s.Dir = "/"
	}
	if !path.IsAbs(s.Dir) {
		s.Dir = "/" + s.Dir
	}
	s.Dir = path.Clean(s.Dir)
	if s.Hostname == "" {
		s.Hostname = "lading"
	}
	if s.ID == "" {
		s.ID = "lading-" + newID()
	}
	if len(s.ID) > 128 || strings.TrimLeft(s.ID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" || s.ID[0] == '.' {
		return bad("id %q: want letters, digits, '_', '.' and '-'", s.ID)
	}
	s.Mounts = slices.Clone(s.Mounts)
	for i, m := range s.Mounts {
		switch m.Type {
		case "":
			s.Mounts[i].Type = "bind"
			fallthrough
		case "bind":
			if !path.IsAbs(m.Source) {
				return bad("mount %s: source %q is not an absolute path", m.Target, m.Source)
			}
		case "tmpfs":
		default:
			return bad("mount %s: type %q: want bind or tmpfs", m.Target, m.Type)
		}
		if !path.IsAbs(m.Target) || path.Clean(m.Target) == "/" {
			return bad("mount target %q: want an absolute path other than /", m.Target)
		}
	}
	if s.Limits.Pids < 0 || s.Limits.Memory < 0 {
		return bad("negative limits")
	}
	for _, e := range s.Env {
		if !strings.Contains(e, "=") || strings.IndexByte(e, 0) >= 0 {
			return bad("environment entry %q: want KEY=VALUE", e)
		}
	}
	if s.ConsoleSize.Rows == 0 || s.ConsoleSize.Cols == 0 {
		s.ConsoleSize = WinSize{Rows: 24, Cols: 80}
	}
	return s, nil
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
