package sandbox

import (
	"fmt"
	"path"
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultCapabilities is Docker's default capability set: what root inside
// the sandbox has (a non-root user has none unless a file grants them,
// which no_new_privs prevents).
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Docker's masked and read-only paths.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// seccompBlocked are the system calls the sandbox refuses with EPERM, as
// Docker's default seccomp profile refuses them to a container without
// CAP_SYS_ADMIN: the kernel keyring, BPF, perf events, userfaultfd,
// modules, kexec, handles to files by number, new namespaces and mounts
// (which a process could otherwise make in a user namespace of its own),
// swap, accounting and quotas.
var seccompBlocked = []string{
	"keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"open_by_handle_at", "name_to_handle_at", "unshare", "setns", "mount", "umount2", "pivot_root",
	"fsopen", "fsconfig", "fsmount", "move_mount", "open_tree", "fspick", "mount_setattr",
	"quotactl", "acct", "swapon", "swapoff", "lookup_dcookie",
}

// cloneNamespaceFlags are the clone flags that make namespaces (CLONE_NEWNS,
// NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET): clone with any of
// them is refused, as Docker's profile does.
var cloneNamespaceFlags = []uint64{0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000}

// seccompProfile is the sandbox's seccomp profile in OCI form: everything
// is allowed but seccompBlocked, clone with namespace flags, and clone3
// (ENOSYS, whose flags a filter cannot read; C libraries then use clone).
// nil on architectures the native sandbox has no numbers for.
func seccompProfile() *specs.LinuxSeccomp {
	arch, ok := map[string]specs.Arch{"amd64": specs.ArchX86_64, "arm64": specs.ArchAARCH64}[runtime.GOARCH]
	if !ok {
		return nil
	}
	eperm, enosys := uint(1), uint(38)
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{arch},
		Syscalls: []specs.LinuxSyscall{
			{Names: seccompBlocked, Action: specs.ActErrno, ErrnoRet: &eperm},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		},
	}
	for _, f := range cloneNamespaceFlags {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
			Names: []string{"clone"}, Action: specs.ActErrno, ErrnoRet: &eperm,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: f, ValueTwo: f, Op: specs.OpMaskedEqual}},
		})
	}
	return p
}

// DefaultPath is the PATH a process gets when its environment has none
// (Docker's).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// runConfig is the OCI runtime configuration for s, run as c. hostFiles
// lists the root's paths (/etc/resolv.conf, /etc/hosts) that exist as
// regular files, over which the host's are mounted with a host network.
func runConfig(s Spec, c Cred, rootless bool, cgroupsPath string, hostFiles []string) *specs.Spec {
	caps := append([]string(nil), DefaultCapabilities...)
	cfg := &specs.Spec{
		Version: "1.0.2",
		Process: &specs.Process{
			Terminal: s.TTY,
			User:     specs.User{UID: c.UID, GID: c.GID, AdditionalGids: c.Groups},
			Args:     s.Args,
			Env:      processEnv(s, c),
			Cwd:      s.Dir,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps,
				Effective: caps,
				Permitted: caps,
			},
			Rlimits:         rlimits(),
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: s.Root},
		Hostname: s.Hostname,
		Mounts:   defaultMounts(rootless),
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths:   maskedPaths,
			Seccomp:       seccompProfile(),
			ReadonlyPaths: readonlyPaths,
			CgroupsPath:   cgroupsPath,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
		},
	}
	if s.TTY {
		cfg.Process.ConsoleSize = &specs.Box{Height: uint(s.ConsoleSize.Rows), Width: uint(s.ConsoleSize.Cols)}
	}
	if rootless {
		cfg.Linux.Namespaces = append(cfg.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	}
	if s.Network != "host" {
		cfg.Linux.Namespaces = append(cfg.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	if s.Limits.Pids > 0 {
		cfg.Linux.Resources.Pids = &specs.LinuxPids{Limit: s.Limits.Pids}
	}
	if s.Limits.Memory > 0 {
		m := s.Limits.Memory
		cfg.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &m}
	}
	for _, f := range hostFiles {
		cfg.Mounts = append(cfg.Mounts, specs.Mount{Destination: f, Type: "bind", Source: f, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
	}
	for _, m := range s.Mounts {
		cfg.Mounts = append(cfg.Mounts, userMount(m))
	}
	return cfg
}

func defaultMounts(rootless bool) []specs.Mount {
	pts := []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
	if !rootless {
		pts = append(pts, "gid=5") // tty; not mapped in a rootless user namespace
	}
	sys := specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}}
	if rootless {
		sys = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: pts},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		sys,
	}
}

func userMount(m Mount) specs.Mount {
	target := path.Clean(m.Target)
	if m.Type == "tmpfs" {
		opts := []string{"nosuid", "nodev", "mode=755"}
		if m.Size > 0 {
			opts = append(opts, fmt.Sprintf("size=%d", m.Size))
		}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		return specs.Mount{Destination: target, Type: "tmpfs", Source: "tmpfs", Options: opts}
	}
	opts := []string{"rbind", "nodev"}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	return specs.Mount{Destination: target, Type: "bind", Source: m.Source, Options: opts}
}

// processEnv is s.Env with Docker's defaults added: PATH, HOSTNAME, HOME
// and, with a terminal, TERM.
func processEnv(s Spec, c Cred) []string {
	env := append([]string(nil), s.Env...)
	has := func(k string) bool {
		for _, e := range env {
			if strings.HasPrefix(e, k+"=") {
				return true
			}
		}
		return false
	}
	if !has("PATH") {
		env = append([]string{"PATH=" + DefaultPath}, env...)
	}
	if !has("HOSTNAME") {
		env = append(env, "HOSTNAME="+s.Hostname)
	}
	if s.TTY && !has("TERM") {
		env = append(env, "TERM=xterm")
	}
	if !has("HOME") {
		env = append(env, "HOME="+c.Home)
	}
	return env
}

// lookPath finds file in the directories of the PATH in env, inside the
// root as stat sees it (after pivot_root for Native); stat reports whether
// a name is an executable regular file.
func lookPath(file string, env []string, stat func(string) (exec bool, err error)) (string, *ExecError) {
	if strings.Contains(file, "/") {
		ok, err := stat(file)
		switch {
		case err != nil:
			return "", &ExecError{Command: file, Code: 127, Err: "no such file or directory"}
		case !ok:
			return "", &ExecError{Command: file, Code: 126, Err: "permission denied"}
		}
		return file, nil
	}
	p := DefaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			p = v
		}
	}
	denied := false
	for _, dir := range strings.Split(p, ":") {
		if dir == "" {
			dir = "."
		}
		name := path.Join(dir, file)
		ok, err := stat(name)
		if err == nil && ok {
			return name, nil
		}
		if err == nil {
			denied = true
		}
	}
	if denied {
		return "", &ExecError{Command: file, Code: 126, Err: "permission denied"}
	}
	return "", &ExecError{Command: file, Code: 127, Err: "executable file not found in $PATH"}
}
