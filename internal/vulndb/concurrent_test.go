package vulndb

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestConcurrentLookups reads one database from many goroutines while it
// is being closed: every lookup either returns exactly what a lookup
// returned before the goroutines started, or says the database is closed;
// after Close every lookup says so.
func TestConcurrentLookups(t *testing.T) {
	db, _ := buildSample(t, sample())
	ctx := context.Background()
	wantAdvs, err := db.Advisories(ctx, "Go", "github.com/gin-gonic/gin")
	if err != nil || len(wantAdvs) == 0 {
		t.Fatalf("Advisories = %v, %v; want some", wantAdvs, err)
	}
	var wantVulns []Vulnerability
	for _, a := range wantAdvs {
		v, err := db.Vulnerability(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		wantVulns = append(wantVulns, v)
	}
	var ok, closed atomic.Int64
	check := func(got any, want any, err error) bool {
		if errors.Is(err, errClosed) {
			closed.Add(1)
			return false
		}
		if err != nil {
			t.Errorf("lookup: %v, want a result or %v", err, errClosed)
			return false
		}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Advisory{})); diff != "" {
			t.Errorf("a concurrent lookup differs (-before +during):\n%s", diff)
			return false
		}
		ok.Add(1)
		return true
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			<-start
			for range 200 {
				advs, err := db.Advisories(ctx, "Go", "github.com/gin-gonic/gin")
				if !check(advs, wantAdvs, err) {
					return
				}
				for i, a := range advs {
					v, err := db.Vulnerability(ctx, a)
					if !check(v, wantVulns[i], err) {
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		<-start
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	close(start)
	wg.Wait()
	t.Logf("%d lookups answered, %d goroutines told the database was closed", ok.Load(), closed.Load())
	if _, err := db.Advisories(ctx, "Go", "github.com/gin-gonic/gin"); !errors.Is(err, errClosed) {
		t.Errorf("Advisories after Close = %v, want %v", err, errClosed)
	}
}
