package layer

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Error is the error the functions of this package return for a problem with
// one layer or one entry of it. Its text reads
//
//	layer 2/5 sha256:abcd…: entry "../etc/passwd": path escapes the layer root
//
// where the layer part is the name given with [WithName] (or [Source.Name]
// for [Export]) and is left out when empty, and the entry part is the entry's
// name as stored in the archive, left out when the problem is not about one
// entry. Err carries an [errdefs] class: ErrInvalidArgument for a malformed or
// hostile archive, ErrCorrupt for a stream that ends early, ErrTooLarge for a
// size limit, or the class of the underlying I/O error.
type Error struct {
	Layer string // the layer's display name; may be empty
	Entry string // the entry's name as stored in the archive; may be empty
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Layer != "" {
		b.WriteString(e.Layer)
		b.WriteString(": ")
	}
	if e.Entry != "" {
		fmt.Fprintf(&b, "entry %q: ", truncName(e.Entry))
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// invalid returns an ErrInvalidArgument error for entry raw of layer.
func invalid(layer, raw, format string, args ...any) error {
	return &Error{Layer: layer, Entry: raw, Err: errdefs.InvalidArgument(fmt.Errorf(format, args...))}
}

// wrapErr attaches layer and entry context to err unless it already carries
// it. Truncation becomes ErrCorrupt, escapes from an os.Root become
// ErrInvalidArgument.
func wrapErr(layer, raw string, err error) error {
	if err == nil {
		return nil
	}
	var le *Error
	if errors.As(err, &le) {
		return err
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = errdefs.Corrupt(err)
	case isEscape(err):
		err = errdefs.InvalidArgument(err)
	}
	return &Error{Layer: layer, Entry: raw, Err: err}
}

// isEscape reports whether err is os.Root's refusal to leave its directory.
// The standard library does not export that error, so its text is matched.
func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}
