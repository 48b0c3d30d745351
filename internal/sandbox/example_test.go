package sandbox_test

import (
	"context"
	"fmt"
	"os"

	"github.com/lading-dev/lading/internal/sandbox"
)

// A RUN step: a shell command in a root file system (such as
// rootfs.FS.Dir), with a cache directory mounted and no network.
func ExampleNative() {
	r := sandbox.Native()
	code, err := r.Run(context.Background(), sandbox.Spec{
		Root:   "/var/lib/lading/rootfs/merged",
		Args:   []string{"/bin/sh", "-c", "apk add --no-cache curl"},
		Env:    []string{"LANG=C.UTF-8"},
		Dir:    "/src",
		User:   "root",
		Mounts: []sandbox.Mount{{Source: "/var/cache/lading/apk", Target: "/var/cache/apk"}},
		Stdout: os.Stdout, Stderr: os.Stderr,
		Limits: sandbox.Limits{Pids: 1024, Memory: 1 << 30},
	})
	switch {
	case err != nil:
		fmt.Println("the sandbox failed:", err)
	case code != 0:
		fmt.Println("the command exited with", code)
	}
}
