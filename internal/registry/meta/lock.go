package meta

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"sync"
)

// A Lock is held by a running garbage collection. MarkDeleting records the
// collection's lock in every row it marks, and the lock dies with the
// collector: it is an OS file lock beside an SQLite database (released by
// the kernel when the process dies) or a PostgreSQL advisory lock (released
// when the collector's database session ends). A claim that meets a blob
// marked deleting by a collection whose lock is gone takes the blob over at
// once, instead of waiting for a timeout. One collection holds the lock of
// a database at a time; LockCollection waits for the one before to end.
type Lock struct {
	id      int64
	check   func(context.Context) error
	release func() error
	once    sync.Once
	err     error
}

// NewLock makes the Lock of collection id for a CollectionLocks
// implementation: check reports the lock lost, release releases it (either
// may be nil).
func NewLock(id int64, check func(context.Context) error, release func() error) *Lock {
	return &Lock{id: id, check: check, release: release}
}

// ID is the collection's identity, recorded in the rows it marks deleting;
// 0 for a lock that cannot tell (rows it marks are then taken over only
// after a timeout).
func (l *Lock) ID() int64 { return l.id }

// Check returns an error once the lock is lost (its database session
// ended): the collection must then stop before deleting anything more.
func (l *Lock) Check(ctx context.Context) error {
	if l.check == nil {
		return nil
	}
	return l.check(ctx)
}

// Release ends the collection. Rows it left deleting are taken over by
// the next claim.
func (l *Lock) Release() error {
	l.once.Do(func() {
		if l.release != nil {
			l.err = l.release()
		}
	})
	return l.err
}

// CollectionLocks are a database's collection locks, for SQL.
type CollectionLocks interface {
	// Lock waits until no other collection holds the database's lock,
	// and takes it for collection id.
	Lock(ctx context.Context, id int64) (*Lock, error)
	// Held reports whether collection id still holds its lock. It runs
	// inside tx, which holds the row lock of a blob that collection
	// marked deleting.
	Held(ctx context.Context, tx *sql.Tx, id int64) (bool, error)
}

// newCollectionID returns a random positive id.
func newCollectionID() int64 {
	for {
		var b [8]byte
		rand.Read(b[:])
		if id := int64(binary.BigEndian.Uint64(b[:]) >> 1); id != 0 {
			return id
		}
	}
}

// noLocks is for databases without collection locks: rows are marked with
// collection 0, which claims take over after deletingTimeout.
type noLocks struct{}

func (noLocks) Lock(context.Context, int64) (*Lock, error) { return NewLock(0, nil, nil), nil }

func (noLocks) Held(context.Context, *sql.Tx, int64) (bool, error) { return true, nil }
