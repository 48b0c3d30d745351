//go:build linux

package cli

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/sandbox"
)

// rawTerminal puts the terminal f in raw mode (as cfmakeraw does) and
// returns how to restore it.
func rawTerminal(f *os.File) (func(), error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// terminalSize returns the size of the terminal f.
func terminalSize(f *os.File) (sandbox.WinSize, bool) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 {
		return sandbox.WinSize{}, false
	}
	return sandbox.WinSize{Rows: ws.Row, Cols: ws.Col}, true
}

// watchResize sends f's size on every SIGWINCH until stop is called.
func watchResize(f *os.File) (<-chan sandbox.WinSize, func()) {
	ch := make(chan sandbox.WinSize, 1)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		defer close(ch)
		for {
			select {
			case <-done:
				return
			case <-sig:
				if ws, ok := terminalSize(f); ok {
					select {
					case ch <- ws:
					default:
					}
				}
			}
		}
	}()
	return ch, func() { signal.Stop(sig); close(done) }
}
