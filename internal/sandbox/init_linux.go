//go:build linux

package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The init's descriptors: the socket to the parent (config in, reports
// out) and, with a terminal, the socket that carries the pty's master.
const (
	initSockFD    = 3
	consoleSockFD = 4
)

// initConfig is what the parent sends the init.
type initConfig struct {
	Spec     *specs.Spec `json:"spec"`
	Rootless bool        `json:"rootless,omitempty"`
	Chroot   bool        `json:"chroot,omitempty"` // no pivot_root
}

// initReport is what the init sends back: Exec just before execve, or the
// error that stopped it.
type initReport struct {
	Exec    bool   `json:"exec,omitempty"`
	Error   string `json:"error,omitempty"`
	Code    int    `json:"code,omitempty"` // 126, 127: the command could not be executed
	Command string `json:"command,omitempty"`
}

// MaybeInit runs [Init] when this process was started as a sandbox's init
// (os.Args[1] is [InitArg]); otherwise it returns at once. Test binaries
// whose tests use Native call it first in TestMain.
func MaybeInit() {
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		Init()
	}
}

// Init is the sandbox's init, in the new namespaces a Native runner made:
// it reads the configuration from its parent, builds the sandbox, and
// replaces itself with the process. It never returns: on failure it reports
// the error to the parent and exits.
func Init() {
	runtime.LockOSThread() // capabilities and no_new_privs are per thread: set them on the one that execs
	sock := os.NewFile(initSockFD, "init socket")
	report := func(r initReport) {
		json.NewEncoder(sock).Encode(r)
	}
	err := initSandbox(sock, report)
	var ee *ExecError
	if errors.As(err, &ee) {
		report(initReport{Error: ee.Err, Code: ee.Code, Command: ee.Command})
		os.Exit(ee.Code)
	}
	report(initReport{Error: err.Error()})
	os.Exit(1)
}

func initSandbox(sock *os.File, report func(initReport)) error {
	var cfg initConfig
	if err := json.NewDecoder(sock).Decode(&cfg); err != nil {
		return fmt.Errorf("read the configuration: %w", err)
	}
	unix.CloseOnExec(initSockFD)
	unix.CloseOnExec(consoleSockFD)
	s := cfg.Spec
	if s == nil || s.Process == nil || s.Root == nil || s.Linux == nil {
		return errors.New("incomplete configuration")
	}
	chrooted, err := setupRoot(s, cfg.Chroot)
	if err != nil {
		return err
	}
	if chrooted {
		dropCap(s.Process.Capabilities, "CAP_SYS_CHROOT")
	}
	if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if hasNamespace(s, specs.NetworkNamespace) {
		if err := loopbackUp(); err != nil {
			return fmt.Errorf("loopback: %w", err)
		}
	}
	p := s.Process
	unix.Umask(0o022) // as runc and Docker give processes
	for _, rl := range p.Rlimits {
		if err := setRlimit(rl); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(p.Cwd, 0o755); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	if err := os.Chdir(p.Cwd); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	if p.Terminal {
		if err := setupConsole(p); err != nil {
			return fmt.Errorf("console: %w", err)
		}
	}
	argv0, eerr := lookPath(p.Args[0], p.Env, func(name string) (bool, error) {
		fi, err := os.Stat(name)
		if err != nil {
			return false, err
		}
		return fi.Mode().IsRegular() && fi.Mode()&0o111 != 0, nil
	})
	if eerr != nil {
		return eerr
	}
	if err := dropPrivileges(p); err != nil {
		return err
	}
	if err := loadSeccomp(s.Linux.Seccomp); err != nil {
		return err
	}
	report(initReport{Exec: true})
	err = unix.Exec(argv0, p.Args, p.Env)
	code := 126
	if errors.Is(err, unix.ENOENT) {
		code = 127
	}
	return &ExecError{Command: p.Args[0], Code: code, Err: err.Error()}
}

// dropCap removes a capability from every set.
func dropCap(c *specs.LinuxCapabilities, name string) {
	for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted, &c.Inheritable, &c.Ambient} {
		out := (*set)[:0:0]
		for _, n := range *set {
			if n != name {
				out = append(out, n)
			}
		}
		*set = out
	}
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

func setRlimit(rl specs.POSIXRlimit) error {
	var res int
	switch rl.Type {
	case "RLIMIT_NOFILE":
		res = unix.RLIMIT_NOFILE
	case "RLIMIT_NPROC":
		res = unix.RLIMIT_NPROC
	case "RLIMIT_CORE":
		res = unix.RLIMIT_CORE
	default:
		return fmt.Errorf("rlimit %s: not supported", rl.Type)
	}
	lim := unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}
	err := unix.Setrlimit(res, &lim)
	if errors.Is(err, unix.EPERM) {
		// Without CAP_SYS_RESOURCE (a user namespace), stay below the
		// current hard limit.
		var cur unix.Rlimit
		if unix.Getrlimit(res, &cur) == nil {
			lim.Max = min(lim.Max, cur.Max)
			lim.Cur = min(lim.Cur, lim.Max)
			err = unix.Setrlimit(res, &lim)
		}
	}
	if err != nil {
		return fmt.Errorf("setrlimit %s: %w", rl.Type, err)
	}
	return nil
}

// loopbackUp brings up lo, as Docker's "none" network has it.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// setupConsole makes a pseudo-terminal in the sandbox's /dev/pts, sends
// its master to the parent, and makes the slave the controlling terminal
// and standard streams.
func setupConsole(p *specs.Process) error {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlockpt: %w", err)
	}
	if p.ConsoleSize != nil {
		ws := &unix.Winsize{Row: uint16(p.ConsoleSize.Height), Col: uint16(p.ConsoleSize.Width)}
		if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws); err != nil {
			return err
		}
	}
	r1, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY)
	if errno != 0 {
		return fmt.Errorf("open the pty's peer: %w", errno)
	}
	slave := int(r1)
	if err := unix.Fchown(slave, int(p.User.UID), int(p.User.GID)); err != nil {
		return err
	}
	if err := unix.Sendmsg(consoleSockFD, []byte{0}, unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("send the pty: %w", err)
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(slave, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("controlling terminal: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return err
		}
	}
	if slave > 2 {
		unix.Close(slave)
	}
	return nil
}

// dropPrivileges sets no_new_privs, reduces the bounding set to the
// configuration's, switches to the user and, for root, keeps exactly the
// configured capabilities. It runs on the thread that execs.
func dropPrivileges(p *specs.Process) error {
	keep, err := capBits(p.Capabilities.Bounding)
	if err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	last := lastCap()
	for c := 0; c <= last; c++ {
		if keep&(1<<uint(c)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	u := p.User
	groups := make([]int, len(u.AdditionalGids))
	for i, g := range u.AdditionalGids {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(int(u.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", u.GID, err)
	}
	if err := syscall.Setuid(int(u.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", u.UID, err)
	}
	// Changing credentials clears the parent-death signal: set it again so
	// that the sandbox dies with the process that runs it.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return err
	}
	if u.UID != 0 {
		return nil // setuid to non-root cleared the permitted and effective sets
	}
	eff, err := capBits(p.Capabilities.Effective)
	if err != nil {
		return err
	}
	perm, err := capBits(p.Capabilities.Permitted)
	if err != nil {
		return err
	}
	inh, err := capBits(p.Capabilities.Inheritable)
	if err != nil {
		return err
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
		{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 40 // CAP_CHECKPOINT_RESTORE; unknown ones fail with EINVAL
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 40
	}
	return n
}

// capNumbers maps capability names to their numbers.
var capNumbers = map[string]int{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
	"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP,
	"CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
	"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
	"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
	"CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
	"CAP_SYS_BOOT": unix.CAP_SYS_BOOT, "CAP_SYS_NICE": unix.CAP_SYS_NICE,
	"CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE, "CAP_SYS_TIME": unix.CAP_SYS_TIME,
	"CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG, "CAP_MKNOD": unix.CAP_MKNOD,
	"CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
	"CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL, "CAP_SETFCAP": unix.CAP_SETFCAP,
	"CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE, "CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN,
	"CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM,
	"CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ,
	"CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF, "CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

func capBits(names []string) (uint64, error) {
	var bits uint64
	for _, n := range names {
		c, ok := capNumbers[n]
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		bits |= 1 << uint(c)
	}
	return bits, nil
}
