// Command lading handles container images, scans them for vulnerabilities
// and serves a registry. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/lading-dev/lading/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
