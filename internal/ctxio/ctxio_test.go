package ctxio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

func TestLimitPassesEverything(t *testing.T) {
	data := bytes.Repeat([]byte("lading"), 10000)
	for _, rate := range []int64{0, -1, 1 << 30} {
		got, err := io.ReadAll(Limit(context.Background(), io.NopCloser(bytes.NewReader(data)), rate))
		if err != nil {
			t.Fatalf("rate %d: %v", rate, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("rate %d: read %d bytes, want the %d written", rate, len(got), len(data))
		}
	}
}

func TestLimitStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// One byte a second: the first read already owes a wait, which the
	// cancelled context ends at once.
	r := Limit(ctx, io.NopCloser(bytes.NewReader(make([]byte, 1<<20))), 1)
	n, err := r.Read(make([]byte, 4096))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("read %d bytes, then %v; want context.Canceled", n, err)
	}
	if n > 512 {
		t.Errorf("the read returned %d bytes, more than the 512 a slow rate allows at once", n)
	}
}
