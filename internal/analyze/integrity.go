package analyze

import (
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/verify"
)

// IntegrityError is what fails an analysis: a layer whose blob is missing
// or cannot be read, does not match its digest or size, or whose content
// does not match the diffID the image config gives it. Nothing is reported
// about an image whose layers are not what it says they are: a partial
// inventory would read as a verdict on the whole image.
//
// (A layer whose bytes are what the image says but whose entries the walker
// refuses, or a file an analyzer cannot parse, is a Warning instead.)
type IntegrityError struct {
	// Name is the layer as messages name it ("app.tar: layer 2/5").
	Name string
	// Index is the layer's index, base first.
	Index int
	// Digest is the digest of the layer blob; DiffID the diffID the image
	// config gives it ("" when it gives none).
	Digest, DiffID string
	Err            error
}

func (e *IntegrityError) Error() string {
	where := strings.TrimSpace(e.Name + " " + e.Digest)
	if where == "" {
		return e.Err.Error()
	}
	return where + ": " + e.Err.Error()
}

func (e *IntegrityError) Unwrap() error { return e.Err }

// diffIDMismatch is the error for a layer whose content hashes to got
// where the config says want.
func diffIDMismatch(want, got string) error {
	return errdefs.Corrupt(fmt.Errorf("the image config gives diffID %s, but the layer's content has diffID %s", want, got))
}

// diffIDReader hashes what is read through it: the uncompressed layer, so
// that its diffID is known when the stream ends.
type diffIDReader struct {
	r   io.Reader
	alg string
	h   hash.Hash
}

// newDiffIDReader hashes r with the algorithm of claim ("sha256:…"), or
// sha256 when there is no claim.
func newDiffIDReader(r io.Reader, claim string) (*diffIDReader, error) {
	alg := "sha256"
	if a, _, ok := strings.Cut(claim, ":"); ok {
		alg = a
	}
	h, err := verify.Hasher(alg)
	if err != nil {
		return nil, fmt.Errorf("diffID %s: %w", claim, err)
	}
	return &diffIDReader{r: r, alg: alg, h: h}, nil
}

func (d *diffIDReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	return n, err
}

// sum is the diffID of what was read.
func (d *diffIDReader) sum() string { return fmt.Sprintf("%s:%x", d.alg, d.h.Sum(nil)) }
