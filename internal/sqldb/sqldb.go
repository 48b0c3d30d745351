// Package sqldb is lading's one metadata database: the registry's metadata
// and every service's tables (identities, projects, audit log, settings,
// sessions, keys) live in one SQL database, SQLite by default and
// PostgreSQL when several replicas share it.
//
// DB wraps a database/sql handle with what differs between the two
// (Dialect): placeholders, row locks, which errors deserve a retry, column
// types in schema statements. Queries are written once, with "?"
// placeholders, and rewritten for the dialect; each is prepared once per
// process.
//
// # Schema
//
// The schema is one ordered list of migrations (Migration), applied by
// Migrate and recorded in the table schema_migrations:
//
//	schema_migrations
//	  version  1, 2, 3...   position in the list, never reused
//	  owner    the package that owns the tables ("identity", "project")
//	  name     what the migration does
//	  applied  when (unix nanoseconds)
//
// Each package owns its tables and its SQL and exports its migrations; the
// wiring (internal/registry/server) concatenates them in one fixed order.
// A migration, once released, is never edited: a change is a new one
// appended at the end. A database whose recorded migrations differ from
// the list (another binary, a reordered list) is refused rather than
// guessed at.
//
// # Transactions
//
// Tx runs a function in a transaction and retries it when the database
// reports a conflict worth retrying (a deadlock, a serialization failure,
// a busy SQLite file). Work that must follow the commit and only the commit
// (forwarding an audit record, waking a queue) registers with
// Tx.AfterCommit.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Dialect is what differs between the SQL databases lading runs on.
type Dialect struct {
	// Name names the database for errors and logs ("sqlite", "postgres").
	Name string
	// Numbered placeholders ($1, $2...) instead of "?".
	Numbered bool
	// ForUpdate and ForShare are appended to a SELECT that locks rows in
	// a transaction ("" where the database locks more coarsely, as
	// SQLite's immediate transactions do).
	ForUpdate, ForShare string
	// Retryable reports a transaction error worth retrying (a deadlock,
	// a serialization failure, a busy database).
	Retryable func(error) bool
	// OneWriter serializes this process's write transactions on a mutex,
	// for databases that allow one writer at a time (SQLite): writers
	// then queue in order instead of polling the database's lock.
	OneWriter bool
	// ILike is the case-insensitive LIKE operator.
	ILike string
	// Types maps the type tokens of schema statements to the database's
	// types; see Expand.
	Types map[string]string
	// MigrationLock is run first in each migration's transaction to
	// serialize concurrent first starts ("" when the transaction itself
	// serializes, as in SQLite).
	MigrationLock string
}

// Expand replaces the type tokens of a schema statement by the dialect's
// types, so that one statement serves every database:
//
//	{{id}}     an auto-incremented 64-bit primary key
//	{{int}}    a 64-bit integer
//	{{text}}   text that compares and sorts byte by byte
//	{{bytes}}  binary data
//	{{bool}}   a boolean
func (d Dialect) Expand(stmt string) string {
	for tok, typ := range d.Types {
		stmt = strings.ReplaceAll(stmt, "{{"+tok+"}}", typ)
	}
	return stmt
}

// DB is the metadata database.
type DB struct {
	db      *sql.DB
	d       Dialect
	now     atomic.Pointer[func() time.Time] // nil: time.Now
	writeMu sync.Mutex                       // with Dialect.OneWriter

	stmtMu    sync.Mutex
	stmts     map[string]*sql.Stmt // by query text, before rewriting
	preparing map[string]bool
	closed    bool
	// bg counts the statements being prepared in the background: Close
	// waits for them, so that none opens a connection (with SQLite, the
	// database's files) once the caller believes the database closed.
	bg sync.WaitGroup
}

// New wraps db. The DB owns db and closes it in Close.
func New(db *sql.DB, d Dialect) *DB {
	return &DB{db: db, d: d}
}

// Dialect returns the database's dialect.
func (db *DB) Dialect() Dialect { return db.d }

// SQL returns the underlying handle.
func (db *DB) SQL() *sql.DB { return db.db }

// Close closes the prepared statements and the database, once the
// statements being prepared in the background are done.
func (db *DB) Close() error {
	db.stmtMu.Lock()
	db.closed = true
	db.stmtMu.Unlock()
	db.bg.Wait()
	db.stmtMu.Lock()
	for _, st := range db.stmts {
		st.Close()
	}
	db.stmts = nil
	db.stmtMu.Unlock()
	return db.db.Close()
}

// Rewrite rewrites a query written with "?" placeholders for the dialect.
// A "?" inside a quoted string literal is left alone.
func (d Dialect) Rewrite(query string) string {
	if !d.Numbered || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	n := 0
	quoted := false
	for i := 0; i < len(query); i++ {
		c := query[i]
		if c == '\'' {
			quoted = !quoted
		}
		if c == '?' && !quoted {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Wrap classifies a database error: classed errors and context errors pass
// through, anything else is ErrUnavailable with the operation named.
func (db *DB) Wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %s: %w", db.d.Name, what, err)
	}
	for _, class := range []error{errdefs.ErrNotFound, errdefs.ErrConflict, errdefs.ErrUnavailable, errdefs.ErrInvalidArgument,
		errdefs.ErrAlreadyExists, errdefs.ErrDenied, errdefs.ErrUnauthorized, errdefs.ErrFailedPrecondition, errdefs.ErrThrottled, errdefs.ErrTooLarge} {
		if errors.Is(err, class) {
			return err
		}
	}
	return errdefs.Unavailable(fmt.Errorf("%s: %s: %w", db.d.Name, what, err))
}

// stmt returns the prepared statement for a query, preparing it once:
// parsing SQL is a large part of a small query's cost. No lock is held
// while preparing, which may wait for a free connection.
func (db *DB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st := db.cached(query); st != nil {
		return st, nil
	}
	st, err := db.db.PrepareContext(ctx, db.d.Rewrite(query))
	if err != nil {
		return nil, err
	}
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	if db.closed {
		st.Close()
		return nil, errors.New("sql: database is closed")
	}
	if prev, ok := db.stmts[query]; ok {
		st.Close()
		return prev, nil
	}
	if db.stmts == nil {
		db.stmts = map[string]*sql.Stmt{}
	}
	// Queries built at run time (filters, sorts) are bounded in kind but
	// not in number; keep the cache from growing without end.
	if len(db.stmts) > 2000 {
		for k, s := range db.stmts {
			s.Close()
			delete(db.stmts, k)
		}
	}
	db.stmts[query] = st
	return st, nil
}

// cached returns the prepared statement of a query, or nil.
func (db *DB) cached(query string) *sql.Stmt {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	return db.stmts[query]
}

// inTx returns the prepared statement of a query for use in tx, or nil:
// a transaction never waits for the pool (every connection might be held
// by a transaction waiting for that very statement), so a query not yet
// prepared runs unprepared on the transaction's connection while it is
// prepared in the background for the next time.
func (db *DB) inTx(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	st := db.cached(query)
	if st == nil {
		db.stmtMu.Lock()
		if db.preparing == nil {
			db.preparing = map[string]bool{}
		}
		if !db.preparing[query] && !db.closed {
			db.preparing[query] = true
			db.bg.Add(1)
			go func() {
				defer db.bg.Done()
				db.stmt(context.Background(), query)
				db.stmtMu.Lock()
				delete(db.preparing, query)
				db.stmtMu.Unlock()
			}()
		}
		db.stmtMu.Unlock()
		return nil
	}
	return tx.StmtContext(ctx, st)
}

// Row is the result of QueryRow: Scan reports sql.ErrNoRows for no row.
type Row interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }

// Query runs a query outside a transaction.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := db.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRow runs a query expected to return at most one row.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) Row {
	st, err := db.stmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// Exec runs one writing statement outside a transaction.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := db.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if db.d.OneWriter {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	return st.ExecContext(ctx, args...)
}

// Tx is a transaction in progress.
type Tx struct {
	tx    *sql.Tx
	db    *DB
	ctx   context.Context
	after []func()
}

// Dialect returns the database's dialect.
func (tx *Tx) Dialect() Dialect { return tx.db.d }

// SQL returns the underlying transaction, for code that takes a *sql.Tx.
func (tx *Tx) SQL() *sql.Tx { return tx.tx }

// Query runs a query in the transaction.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := tx.db.inTx(ctx, tx.tx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.tx.QueryContext(ctx, tx.db.d.Rewrite(query), args...)
}

// QueryRow runs a query expected to return at most one row.
func (tx *Tx) QueryRow(ctx context.Context, query string, args ...any) Row {
	if st := tx.db.inTx(ctx, tx.tx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.tx.QueryRowContext(ctx, tx.db.d.Rewrite(query), args...)
}

// Exec runs a statement in the transaction.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := tx.db.inTx(ctx, tx.tx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.tx.ExecContext(ctx, tx.db.d.Rewrite(query), args...)
}

// ExecDirect runs a statement without preparing it (schema statements,
// statements run once).
func (tx *Tx) ExecDirect(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(ctx, tx.db.d.Rewrite(query), args...)
}

// AfterCommit registers fn to run after the transaction commits, in the
// order registered; it does not run when the transaction rolls back or is
// retried.
func (tx *Tx) AfterCommit(fn func()) { tx.after = append(tx.after, fn) }

// Tx runs fn in a transaction, retrying it (up to five times) when the
// database asks for that; fn must therefore be safe to run again. what
// names the work in errors.
func (db *DB) Tx(ctx context.Context, what string, fn func(tx *Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = db.tx1(ctx, fn)
		if err == nil || db.d.Retryable == nil || !db.d.Retryable(err) {
			break
		}
		select {
		case <-ctx.Done():
			return db.Wrap(what, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		}
	}
	return db.Wrap(what, err)
}

func (db *DB) tx1(ctx context.Context, fn func(tx *Tx) error) error {
	var after []func()
	err := func() error {
		if db.d.OneWriter {
			db.writeMu.Lock()
			defer db.writeMu.Unlock()
		}
		stx, err := db.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		tx := &Tx{tx: stx, db: db, ctx: ctx}
		if err := fn(tx); err != nil {
			stx.Rollback()
			return err
		}
		if err := stx.Commit(); err != nil {
			return err
		}
		after = tx.after
		return nil
	}()
	for _, f := range after {
		f()
	}
	return err
}

// Nanos is how times are stored: unix nanoseconds.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Time reads a stored time; 0 is the zero time.
func Time(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Now returns the database's clock (time.Now unless a test set another).
func (db *DB) Now() time.Time {
	if now := db.now.Load(); now != nil {
		return (*now)()
	}
	return time.Now()
}

// SetClock replaces the clock (tests of expiry and throttling); it may be
// called while the database is in use.
func (db *DB) SetClock(now func() time.Time) { db.now.Store(&now) }

// IsUniqueViolation reports whether err is a unique constraint violation,
// which services turn into ErrAlreadyExists.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "SQLSTATE 23505") || strings.Contains(s, "duplicate key value")
}
