//go:build linux

package sandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// syscallNumbers maps the names the profile uses to this architecture's
// numbers.
var syscallNumbers = map[string]uint32{
	"keyctl": unix.SYS_KEYCTL, "add_key": unix.SYS_ADD_KEY, "request_key": unix.SYS_REQUEST_KEY,
	"bpf": unix.SYS_BPF, "perf_event_open": unix.SYS_PERF_EVENT_OPEN, "userfaultfd": unix.SYS_USERFAULTFD,
	"kexec_load": unix.SYS_KEXEC_LOAD, "kexec_file_load": unix.SYS_KEXEC_FILE_LOAD,
	"init_module": unix.SYS_INIT_MODULE, "finit_module": unix.SYS_FINIT_MODULE, "delete_module": unix.SYS_DELETE_MODULE,
	"open_by_handle_at": unix.SYS_OPEN_BY_HANDLE_AT, "name_to_handle_at": unix.SYS_NAME_TO_HANDLE_AT,
	"unshare": unix.SYS_UNSHARE, "setns": unix.SYS_SETNS, "mount": unix.SYS_MOUNT, "umount2": unix.SYS_UMOUNT2,
	"pivot_root": unix.SYS_PIVOT_ROOT, "fsopen": unix.SYS_FSOPEN, "fsconfig": unix.SYS_FSCONFIG,
	"fsmount": unix.SYS_FSMOUNT, "move_mount": unix.SYS_MOVE_MOUNT, "open_tree": unix.SYS_OPEN_TREE,
	"fspick": unix.SYS_FSPICK, "mount_setattr": unix.SYS_MOUNT_SETATTR, "quotactl": unix.SYS_QUOTACTL,
	"acct": unix.SYS_ACCT, "swapon": unix.SYS_SWAPON, "swapoff": unix.SYS_SWAPOFF,
	"lookup_dcookie": unix.SYS_LOOKUP_DCOOKIE, "clone": unix.SYS_CLONE, "clone3": unix.SYS_CLONE3,
}

var auditArch = map[specs.Arch]uint32{specs.ArchX86_64: unix.AUDIT_ARCH_X86_64, specs.ArchAARCH64: unix.AUDIT_ARCH_AARCH64}

// seccomp_data offsets.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// compileSeccomp turns the OCI profile the sandbox makes (default allow;
// rules of names, errno actions and MASKED_EQ or EQ conditions on the low
// 32 bits of arguments) into a classic BPF program. System calls of any
// other architecture (the 32-bit compat entry points, x32) are refused
// with EPERM, so that they cannot go around the rules.
func compileSeccomp(p *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if p.DefaultAction != specs.ActAllow || len(p.Architectures) != 1 {
		return nil, fmt.Errorf("seccomp: only an allow-by-default profile for one architecture is supported")
	}
	arch, ok := auditArch[p.Architectures[0]]
	if !ok || (runtime.GOARCH == "amd64") != (arch == unix.AUDIT_ARCH_X86_64) {
		return nil, fmt.Errorf("seccomp: architecture %s is not this machine's", p.Architectures[0])
	}
	eperm := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	prog := []unix.SockFilter{
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch),
		jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, arch, 1, 0),
		stmt(unix.BPF_RET|unix.BPF_K, eperm),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr),
	}
	if arch == unix.AUDIT_ARCH_X86_64 {
		// x32 system calls have bit 30 set.
		prog = append(prog,
			jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, 0x40000000, 0, 1),
			stmt(unix.BPF_RET|unix.BPF_K, eperm))
	}
	for _, sc := range p.Syscalls {
		if sc.Action != specs.ActErrno || sc.ErrnoRet == nil {
			return nil, fmt.Errorf("seccomp: action %s is not supported", sc.Action)
		}
		ret := uint32(unix.SECCOMP_RET_ERRNO) | uint32(*sc.ErrnoRet&0xffff)
		for _, name := range sc.Names {
			nr, ok := syscallNumbers[name]
			if !ok {
				return nil, fmt.Errorf("seccomp: unknown system call %q", name)
			}
			// ld nr; jeq nr else next; [ld arg; and mask; jeq value else next]...; ret
			rest := uint8(1 + 3*len(sc.Args)) // instructions after the first jump, to the next block
			prog = append(prog,
				stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr),
				jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, nr, 0, rest))
			for i, a := range sc.Args {
				if a.Index > 5 || a.Value>>32 != 0 || a.ValueTwo>>32 != 0 {
					return nil, fmt.Errorf("seccomp: argument condition %+v is not supported", a)
				}
				mask, want := uint32(a.Value), uint32(a.ValueTwo)
				switch a.Op {
				case specs.OpMaskedEqual:
				case specs.OpEqualTo:
					mask, want = 0xffffffff, uint32(a.Value)
				default:
					return nil, fmt.Errorf("seccomp: operator %s is not supported", a.Op)
				}
				left := rest - uint8(3*(i+1)) // instructions after this condition's jump
				prog = append(prog,
					stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArgs+8*uint32(a.Index)),
					stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, mask),
					jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, want, 0, left))
			}
			prog = append(prog, stmt(unix.BPF_RET|unix.BPF_K, ret))
		}
	}
	prog = append(prog, stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW))
	if len(prog) > 4096 {
		return nil, fmt.Errorf("seccomp: program too long (%d instructions)", len(prog))
	}
	return prog, nil
}

// loadSeccomp installs the profile on the calling thread (the one that
// execs); no_new_privs must be set.
func loadSeccomp(p *specs.LinuxSeccomp) error {
	if p == nil {
		return nil
	}
	prog, err := compileSeccomp(p)
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	runtime.KeepAlive(prog)
	return nil
}
