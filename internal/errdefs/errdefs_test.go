package errdefs

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestClasses(t *testing.T) {
	base := fmt.Errorf("open blob: %w", fs.ErrNotExist)
	tests := []struct {
		name  string
		err   error
		class error
	}{
		{"wrapped sentinel", fmt.Errorf("tag latest: %w", ErrNotFound), ErrNotFound},
		{"attached", NotFound(base), ErrNotFound},
		{"attached twice", NotFound(NotFound(base)), ErrNotFound},
		{"corrupt", Corrupt(errors.New("size 3, want 4")), ErrCorrupt},
		{"invalid", InvalidArgument(errors.New("bad ref")), ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.class) {
				t.Errorf("errors.Is(%v, %v) = false", tt.err, tt.class)
			}
		})
	}
	if e := NotFound(base); !errors.Is(e, fs.ErrNotExist) || e.Error() != base.Error() {
		t.Errorf("attaching a class changed the error: %v", e)
	}
	if NotFound(nil) != nil {
		t.Error("NotFound(nil) != nil")
	}
	if IsNotFound(InvalidArgument(base)) {
		t.Error("InvalidArgument error reported as NotFound")
	}
}
