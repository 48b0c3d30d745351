//go:build linux

package sandbox

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// rlimits are the process's resource limits: the open-files limit Docker
// gives (soft 1024, hard 524288, as systemd's default), kept below the
// caller's own hard limit; the others are inherited.
func rlimits() []specs.POSIXRlimit {
	hard := uint64(524288)
	var cur unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &cur) == nil && cur.Max < hard {
		hard = cur.Max
	}
	return []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: min(1024, hard), Hard: hard}}
}
