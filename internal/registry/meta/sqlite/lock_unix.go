//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/lading-dev/lading/internal/registry/meta"
)

// fileLocks are the collection locks of an SQLite database: flock(2) on a
// file beside it, which the kernel releases when the holding process dies
// however it dies. The holder writes its collection id into the file; a
// collection is alive while the file is locked and names it. Every process
// sharing an SQLite database runs on the machine that holds its file, so a
// local lock sees them all.
type fileLocks struct {
	path string // <database>.gc-lock
}

func newLocks(dbPath string) meta.CollectionLocks { return fileLocks{path: dbPath + ".gc-lock"} }

// Lock implements meta.CollectionLocks: it polls for the exclusive lock,
// which another collection (or, for a moment, a claim testing it) holds.
func (f fileLocks) Lock(ctx context.Context, id int64) (*meta.Lock, error) {
	// Readable by all: every process that may claim blobs tests it.
	file, err := os.OpenFile(f.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("collection lock: %w", err)
	}
	for {
		err := syscall.Flock(int(file.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			file.Close()
			return nil, fmt.Errorf("collection lock %s: %w", f.path, err)
		}
		select {
		case <-ctx.Done():
			file.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := file.Truncate(0); err == nil {
		_, err = file.WriteAt([]byte(strconv.FormatInt(id, 10)), 0)
	}
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("collection lock %s: %w", f.path, err)
	}
	check := func(context.Context) error {
		// The lock means nothing if someone replaced the file.
		held, err1 := file.Stat()
		named, err2 := os.Stat(f.path)
		if err1 != nil || err2 != nil || !os.SameFile(held, named) {
			return fmt.Errorf("collection lock %s was removed or replaced", f.path)
		}
		return nil
	}
	release := func() error {
		file.Truncate(0)
		return file.Close() // closing the last descriptor releases the flock
	}
	return meta.NewLock(id, check, release), nil
}

// Held implements meta.CollectionLocks: a shared lock that cannot be had
// means a collection holds the file; the id in it says which.
func (f fileLocks) Held(_ context.Context, _ *sql.Tx, id int64) (bool, error) {
	file, err := os.Open(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("collection lock: %w", err)
	}
	defer file.Close()
	err = syscall.Flock(int(file.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		return false, nil // nobody holds it; closing releases ours
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return false, fmt.Errorf("collection lock %s: %w", f.path, err)
	}
	b, err := io.ReadAll(io.LimitReader(file, 32))
	if err != nil {
		return false, fmt.Errorf("collection lock %s: %w", f.path, err)
	}
	holder, err := strconv.ParseInt(string(b), 10, 64)
	// An empty id is a new holder about to write its own: treated as
	// held, the claim asks again.
	return err != nil || holder == id, nil
}
