// Package cli holds lading's commands, one file per command. A command turns
// flags into calls on the domain packages and writes its output to the
// writers it is given; it holds no logic of its own beyond that.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sandbox"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // bad flags or arguments
)

// env is what every command shares: the global flags, the streams and the
// logger.
type env struct {
	root     string // the lading root (store, cache)
	logLevel string
	quiet    bool
	progress string // auto, tty, plain, json, none

	stdin          io.Reader
	stdout, stderr io.Writer
	args           []string // the command line Run was given
	log            *slog.Logger
}

// Run executes lading with args and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == sandbox.InitArg {
		sandbox.Init() // lading started as a sandbox's init: never returns
	}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, args: args}
	cmd := newRootCommand(e)
	cmd.SetArgs(args)
	cmd.SetIn(stdin)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitCodeError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "lading: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "lading: %v\n", err)
	if errdefs.IsInvalidArgument(err) && isUsage(err) {
		return exitUsage
	}
	return exitError
}

// exitCodeError carries a specific exit code out of a command.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

func newRootCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:           "lading",
		Short:         "Container images: move them, inspect them, scan them, serve them",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return e.setup()
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError{errdefs.InvalidArgument(err)}
	})
	f := cmd.PersistentFlags()
	f.StringVar(&e.root, "root", "", "lading root directory (default $LADING_ROOT or $XDG_DATA_HOME/lading)")
	f.StringVar(&e.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	f.BoolVarP(&e.quiet, "quiet", "q", false, "print no progress")
	f.StringVar(&e.progress, "progress", "auto", "progress output: auto, tty, plain, json, none")

	cmd.AddCommand(
		newPullCommand(e),
		newPushCommand(e),
		newCopyCommand(e),
		newSaveCommand(e),
		newLoadCommand(e),
		newExportCommand(e),
		newImportCommand(e),
		newInspectCommand(e),
		newHistoryCommand(e),
		newLsCommand(e),
		newTagCommand(e),
		newRmiCommand(e),
		newPruneCommand(e),
		newInventoryCommand(e),
		newSBOMCommand(e),
		newCacheCommand(e),
		newLoginCommand(e),
		newLogoutCommand(e),
		newScanCommand(e),
		newBenchCommand(e),
		newDBCommand(e),
		newVersionCommand(e),
		newServeCommand(e),
		newBuildCommand(e),
		newRunCommand(e),
		newPsCommand(e),
		newRmCommand(e),
		newDiffCommand(e),
		newCommitCommand(e),
		newSignCommand(e),
		newVerifyCommand(e),
	)
	usageArgs(cmd)
	return cmd
}

// usageArgs makes every command's argument check fail as a usage error
// (exit code 2), like a bad flag.
func usageArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				var u usageError
				if errors.As(err, &u) {
					return err
				}
				return usageError{errdefs.InvalidArgument(err)}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}

// setup resolves the global flags once the command line is parsed.
func (e *env) setup() error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(e.logLevel)); err != nil {
		return usageError{errdefs.InvalidArgument(fmt.Errorf("--log-level %q: %w", e.logLevel, err))}
	}
	e.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lvl}))
	if e.root == "" {
		e.root = defaultRoot()
	}
	switch e.progress {
	case "auto", "tty", "plain", "json", "none":
	default:
		return usageError{errdefs.InvalidArgument(fmt.Errorf("--progress %q: want auto, tty, plain, json or none", e.progress))}
	}
	if e.quiet {
		e.progress = "none"
	}
	return nil
}

// defaultRoot is $LADING_ROOT, else $XDG_DATA_HOME/lading, else
// ~/.local/share/lading.
func defaultRoot() string {
	if r := os.Getenv("LADING_ROOT"); r != "" {
		return r
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "lading")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "lading")
	}
	return filepath.Join(os.TempDir(), "lading")
}
