// Package errdefs defines the classes of errors lading's packages return.
//
// A class is a sentinel error. Code that fails wraps the sentinel with the
// context a user needs (what was being done, on which image, layer or entry):
//
//	return fmt.Errorf("blob %s: %w", dgst, errdefs.ErrNotFound)
//
// or attaches a class to an error it received:
//
//	return errdefs.NotFound(fmt.Errorf("manifest %s: %w", ref, err))
//
// Callers test the class with errors.Is or the Is* helpers; the HTTP edge of
// the registry maps classes to OCI error codes and the CLI maps them to exit
// codes. Errors without a class are internal errors.
package errdefs

import (
	"errors"
)

// The error classes.
var (
	// ErrNotFound: the named object (image, blob, tag, file) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidArgument: the request or the input is malformed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrAlreadyExists: the object exists and may not be replaced.
	ErrAlreadyExists = errors.New("already exists")
	// ErrUnauthorized: credentials are missing or wrong.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrDenied: the credentials are valid but do not allow the action.
	ErrDenied = errors.New("denied")
	// ErrConflict: the action conflicts with the current state (for example
	// a store that another process holds for garbage collection).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: a service the action needs cannot be reached.
	ErrUnavailable = errors.New("unavailable")
	// ErrCorrupt: content does not match its digest or size, or a stream
	// ended early. Nothing built from such content becomes visible.
	ErrCorrupt = errors.New("content does not match its digest or size")
	// ErrUnsupported: a valid input that lading does not handle (an unknown
	// media type, a digest algorithm it cannot compute).
	ErrUnsupported = errors.New("unsupported")
	// ErrTooLarge: an input exceeds a size limit.
	ErrTooLarge = errors.New("too large")
	// ErrFailedPrecondition: the object is not in a state that allows the
	// action (a project that still holds repositories cannot be deleted).
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrThrottled: the caller must wait before trying again (too many
	// failed logins from one user or one address).
	ErrThrottled = errors.New("too many requests")
)

// classed attaches a class to an error while keeping the error's own text.
type classed struct {
	class error
	err   error
}

func (c *classed) Error() string   { return c.err.Error() }
func (c *classed) Unwrap() []error { return []error{c.err, c.class} }

func with(class, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, class) {
		return err
	}
	return &classed{class: class, err: err}
}

// NotFound returns err marked as ErrNotFound (nil stays nil).
func NotFound(err error) error { return with(ErrNotFound, err) }

// InvalidArgument returns err marked as ErrInvalidArgument.
func InvalidArgument(err error) error { return with(ErrInvalidArgument, err) }

// Unauthorized returns err marked as ErrUnauthorized.
func Unauthorized(err error) error { return with(ErrUnauthorized, err) }

// Denied returns err marked as ErrDenied.
func Denied(err error) error { return with(ErrDenied, err) }

// Conflict returns err marked as ErrConflict.
func Conflict(err error) error { return with(ErrConflict, err) }

// Unavailable returns err marked as ErrUnavailable.
func Unavailable(err error) error { return with(ErrUnavailable, err) }

// Corrupt returns err marked as ErrCorrupt.
func Corrupt(err error) error { return with(ErrCorrupt, err) }

// Unsupported returns err marked as ErrUnsupported.
func Unsupported(err error) error { return with(ErrUnsupported, err) }

// TooLarge returns err marked as ErrTooLarge.
func TooLarge(err error) error { return with(ErrTooLarge, err) }

// FailedPrecondition returns err marked as ErrFailedPrecondition.
func FailedPrecondition(err error) error { return with(ErrFailedPrecondition, err) }

// Throttled returns err marked as ErrThrottled.
func Throttled(err error) error { return with(ErrThrottled, err) }

// IsNotFound reports whether err is of class ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsInvalidArgument reports whether err is of class ErrInvalidArgument.
func IsInvalidArgument(err error) bool { return errors.Is(err, ErrInvalidArgument) }

// IsUnauthorized reports whether err is of class ErrUnauthorized.
func IsUnauthorized(err error) bool { return errors.Is(err, ErrUnauthorized) }

// IsCorrupt reports whether err is of class ErrCorrupt.
func IsCorrupt(err error) bool { return errors.Is(err, ErrCorrupt) }

// IsUnavailable reports whether err is of class ErrUnavailable.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }
