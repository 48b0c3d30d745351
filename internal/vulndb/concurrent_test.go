package vulndb

import (
	"context"
	"sync"
	"testing"
)

// TestConcurrentLookups reads one database from many goroutines while it
// is being closed: lookups either succeed or say it is closed.
func TestConcurrentLookups(t *testing.T) {
	db, _ := buildSample(t, sample())
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				advs, err := db.Advisories(ctx, "Go", "github.com/gin-gonic/gin")
				if err != nil {
					return
				}
				for _, a := range advs {
					if _, err := db.Vulnerability(ctx, a); err != nil {
						return
					}
				}
			}
		})
	}
	wg.Go(func() { db.Close() })
	wg.Wait()
}
