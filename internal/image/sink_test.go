package image

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// WriteFileAtomic replaces a regular file through a temp file and a rename,
// but writes into what is not a regular file (a FIFO, /dev/null, a
// terminal) in place: `lading sbom -o /dev/null` once renamed a regular
// file over /dev/null.
func TestWriteFileAtomicSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// The test holds the FIFO open for reading and writing (which does not
	// block) and reads what is in it without waiting.
	fd, err := unix.Open(fifo, unix.O_RDWR|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := WriteFileAtomic(fifo, func(w io.Writer) error {
		_, err := io.WriteString(w, "through the pipe")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, err := unix.Read(fd, buf)
	if n < 0 {
		n = 0
	}
	if string(buf[:n]) != "through the pipe" {
		t.Errorf("the FIFO holds %q (%v)", buf[:n], err)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v, %v", fi.Mode(), err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 1 {
		t.Errorf("left in the directory: %v", left)
	}

	// A regular file is replaced whole.
	reg := filepath.Join(dir, "file")
	os.WriteFile(reg, []byte("old content, longer than the new"), 0o644)
	if err := WriteFileAtomic(reg, func(w io.Writer) error {
		_, err := io.WriteString(w, "new")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(reg); string(b) != "new" {
		t.Errorf("file holds %q", b)
	}
}
