//go:build !linux

package cli

import (
	"errors"
	"os"

	"github.com/lading-dev/lading/internal/sandbox"
)

func rawTerminal(*os.File) (func(), error) { return nil, errors.New("raw terminals need Linux here") }

func terminalSize(*os.File) (sandbox.WinSize, bool) { return sandbox.WinSize{}, false }

func watchResize(*os.File) (<-chan sandbox.WinSize, func()) { return nil, func() {} }
