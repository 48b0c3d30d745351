//go:build linux

package sandbox

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCompileSeccomp(t *testing.T) {
	p := seccompProfile()
	if p == nil {
		t.Skip("no seccomp profile for this architecture")
	}
	prog, err := compileSeccomp(p)
	if err != nil {
		t.Fatal(err)
	}
	// header, one block per name (clone blocks carry a condition), allow
	if want := 6 + 3*(len(seccompBlocked)+1) + 6*len(cloneNamespaceFlags) + 1; len(prog) != want {
		t.Errorf("%d instructions, want %d", len(prog), want)
	}
	eperm := uint(1)
	for _, bad := range []*specs.LinuxSeccomp{
		{DefaultAction: specs.ActErrno, Architectures: p.Architectures},
		{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchMIPS}},
		{DefaultAction: specs.ActAllow, Architectures: p.Architectures, Syscalls: []specs.LinuxSyscall{{Names: []string{"nosuchcall"}, Action: specs.ActErrno, ErrnoRet: &eperm}}},
		{DefaultAction: specs.ActAllow, Architectures: p.Architectures, Syscalls: []specs.LinuxSyscall{{Names: []string{"clone"}, Action: specs.ActKill}}},
		{DefaultAction: specs.ActAllow, Architectures: p.Architectures, Syscalls: []specs.LinuxSyscall{{Names: []string{"clone"}, Action: specs.ActErrno, ErrnoRet: &eperm,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1 << 40, Op: specs.OpMaskedEqual}}}}},
	} {
		if _, err := compileSeccomp(bad); err == nil {
			t.Errorf("%+v compiled", bad)
		}
	}
}
